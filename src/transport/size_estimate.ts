/**
 * A cheap estimate of a message's CBOR size, so the send queue can cut frames and enforce
 * its byte limit without encoding each message on its own (encoding a whole batch in one
 * call is much cheaper). Exact for ASCII strings, byte strings and small integers; a
 * string with non-ASCII characters can encode up to 3× its estimate, which the frame
 * builder catches by checking the encoded frame.
 */

const MAX_DEPTH = 32;

/**
 * Estimates the CBOR-encoded size of `value` in bytes.
 * @param value a message or any part of one
 * @returns the estimate (never below 1)
 * @example
 * ```ts
 * estimateSize({ t: 201, seq: 1, data: new Uint8Array(100) }); // ≈ 115
 * ```
 */
export function estimateSize(value: unknown, depth = 0): number {
  switch (typeof value) {
    case "number":
      return Number.isInteger(value) && value >= -24 && value < 24 ? 1 : 9;
    case "string":
      return value.length + (value.length < 24 ? 1 : value.length < 256 ? 2 : 5);
    case "boolean":
    case "undefined":
      return 1;
    case "bigint":
      return 9;
    case "object": {
      if (value === null) return 1;
      if (value instanceof Uint8Array) return value.byteLength + 5;
      if (depth > MAX_DEPTH) return 16;
      let n = 5;
      if (Array.isArray(value)) {
        for (const v of value) n += estimateSize(v, depth + 1);
        return n;
      }
      if (ArrayBuffer.isView(value)) return value.byteLength + 8;
      if (value instanceof Date) return 10;
      if (value instanceof Map) {
        for (const [k, v] of value) n += estimateSize(k, depth + 1) + estimateSize(v, depth + 1);
        return n;
      }
      if (value instanceof Set) {
        for (const v of value) n += estimateSize(v, depth + 1);
        return n + 3;
      }
      for (const k in value) n += estimateSize(k) + estimateSize((value as Record<string, unknown>)[k], depth + 1);
      return n;
    }
    default:
      return 9;
  }
}
