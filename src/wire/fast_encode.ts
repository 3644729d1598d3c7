/**
 * The encode fast path: writes the same bytes as the project's cbor-x `Encoder` (`useRecords:
 * false`, `variableMapSize: true`, no other option) for the values messages, keys and values are
 * made of, without its per-value dispatch. It takes plain objects (constructor `Object`), arrays,
 * ASCII strings, numbers, booleans, null, undefined and byte arrays; on anything else (a
 * non-ASCII string, a bigint, a `Map`, a `Date`, another typed array, nesting deeper than
 * {@link MAX_DEPTH}) it gives the whole value to cbor-x. cbor-x's rules it follows:
 * - integers in [0, 2³²) as unsigned, in [−2³², 0) as negative integers, with the shortest head;
 *   any other number (fractions, larger integers, −0 aside: it is 0) as a float64;
 * - maps and arrays with the shortest head for their count, keys in `Object.keys` order;
 * - a `Uint8Array` under tag 64 when cbor-x tags it (it does when the runtime has a `Buffer`
 *   global: Bun, Deno 2), a `Buffer` (or another subclass) as a plain byte string;
 * - the result is a view of a shared `Buffer`, as cbor-x returns it.
 * test/fast_encode_test.ts compares the bytes with cbor-x's on generated values, under Bun and Deno.
 */
import { Buffer } from "node:buffer";

/** Nesting the fast path writes; deeper values go to cbor-x. */
const MAX_DEPTH = 64;
const CHUNK = 8192;

let target: Uint8Array = Buffer.allocUnsafeSlow(CHUNK);
let pos = 0;
let start = 0;
let busy = false;
let tagUint8Array = true;
const f64 = new Float64Array(1);
const f64Bytes = new Uint8Array(f64.buffer);
const bigEndianHost = new Uint8Array(new Uint16Array([1]).buffer)[0] === 0;
/** Whether to read an object's values with `Object.values` (V8) rather than key by key (JavaScriptCore). */
const valuesInBulk = !("Bun" in globalThis);

/** Makes room for `n` more bytes, moving the value written so far to a new chunk when needed. */
function room(n: number): void {
  if (pos + n <= target.length) return;
  const next = Buffer.allocUnsafeSlow(Math.max(CHUNK, (pos - start + n) * 2));
  next.set(target.subarray(start, pos));
  pos -= start;
  start = 0;
  target = next;
}

/** A head of major type `major` (already shifted) with argument `n` < 2³², in its shortest form. */
function head(major: number, n: number): void {
  if (n < 24) target[pos++] = major | n;
  else if (n < 0x100) {
    target[pos++] = major | 24;
    target[pos++] = n;
  } else if (n < 0x10000) {
    target[pos++] = major | 25;
    target[pos++] = n >> 8;
    target[pos++] = n & 0xff;
  } else {
    target[pos++] = major | 26;
    target[pos++] = n >>> 24;
    target[pos++] = (n >> 16) & 0xff;
    target[pos++] = (n >> 8) & 0xff;
    target[pos++] = n & 0xff;
  }
}

function writeNumber(v: number): void {
  room(9);
  if (v >>> 0 === v) head(0x00, v);
  else if (v >> 0 === v || (v < 0 && v >= -0x100000000 && Math.floor(v) === v)) head(0x20, -1 - v);
  else {
    f64[0] = v;
    target[pos++] = 0xfb;
    if (bigEndianHost) { for (let i = 0; i < 8; i++) target[pos++] = f64Bytes[i]; }
    else for (let i = 7; i >= 0; i--) target[pos++] = f64Bytes[i];
  }
}

/** Writes an ASCII string; false (nothing to keep) for any other character. */
function writeString(s: string): boolean {
  const n = s.length;
  room(n + 5);
  head(0x60, n);
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c > 0x7f) return false;
    target[pos++] = c;
  }
  return true;
}

/** Writes `v`; false when it holds something the fast path leaves to cbor-x. */
function write(v: unknown, depth: number): boolean {
  switch (typeof v) {
    case "string":
      return writeString(v);
    case "number":
      writeNumber(v);
      return true;
    case "boolean":
      room(1);
      target[pos++] = v ? 0xf5 : 0xf4;
      return true;
    case "undefined":
      room(1);
      target[pos++] = 0xf7;
      return true;
    case "object": {
      if (v === null) {
        room(1);
        target[pos++] = 0xf6;
        return true;
      }
      if (depth > MAX_DEPTH) return false;
      if (Array.isArray(v)) {
        if (v.constructor !== Array) return false;
        const n = v.length;
        room(5);
        head(0x80, n);
        for (let i = 0; i < n; i++) if (!write(v[i], depth + 1)) return false;
        return true;
      }
      if (v instanceof Uint8Array) {
        const n = v.byteLength;
        const c = v.constructor;
        if (c === Object || c === Array || c === Map) return false; // cbor-x goes by `constructor` first
        room(n + 7);
        if (c === Uint8Array && tagUint8Array) {
          target[pos++] = 0xd8;
          target[pos++] = 64;
        }
        head(0x40, n);
        target.set(v, pos);
        pos += n;
        return true;
      }
      // cbor-x writes an object as a map when its `constructor` is Object: here, an object whose prototype is
      // Object.prototype (a cheaper test than reading `constructor` through the prototype), with no own `constructor`.
      if (Object.getPrototypeOf(v) === Object.prototype) {
        // Keys in `Object.keys` order, as cbor-x. The values: read by key under JavaScriptCore (Bun), where that beat
        // `Object.values` on messages of mixed shapes (1.3 against 1.8–2.4 µs per message); in bulk under V8 (Deno),
        // where `Object.values` was the faster (1.1–2.0 against 2.2–2.6 µs).
        const keys = Object.keys(v);
        const vals = valuesInBulk ? Object.values(v) : keys;
        const n = keys.length;
        room(5);
        head(0xa0, n);
        for (let i = 0; i < n; i++) {
          const k = keys[i];
          const x = valuesInBulk ? vals[i] : (v as Record<string, unknown>)[k];
          if (k === "constructor" || !writeString(k) || !write(x, depth + 1)) return false;
        }
        return true;
      }
      return false;
    }
    default:
      return false;
  }
}

/**
 * Builds the fast encoder in front of a cbor-x encoder, which writes what the fast path leaves.
 * @param generic cbor-x's `encode` of the same options
 * @returns an encode function with cbor-x's output
 */
export function fastEncoder(generic: (value: unknown) => Uint8Array): (value: unknown) => Uint8Array {
  // Whether cbor-x tags a Uint8Array, as it decided when it loaded.
  tagUint8Array = generic(new Uint8Array(0))[0] === 0xd8;
  return (value) => {
    if (busy) return generic(value);
    busy = true;
    start = pos;
    try {
      if (write(value, 0)) return target.subarray(start, pos);
    } finally {
      busy = false;
    }
    pos = start;
    return generic(value);
  };
}
