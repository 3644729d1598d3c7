/**
 * Writing stored values as JSON. A value stored through the IMap, queue or topic API may hold
 * what JSON cannot express (a BigInt: CBOR keeps it), and `JSON.stringify` throws on it. A read
 * that changed nothing answers 422 `UNREPRESENTABLE` (map_routes.ts); a write that already
 * happened, or a stream, must not fail for it: they answered 500 after the write was applied,
 * lost a polled queue item, or ended an event stream for good at that event (found by an
 * internal review). These helpers leave such a field out and name it instead.
 */
import type { Context } from "hono";

/** `JSON.stringify(value)`, or undefined when JSON cannot express it (or `value` is undefined). */
export function jsonText(value: unknown): string | undefined {
  try {
    return JSON.stringify(value);
  } catch {
    return undefined;
  }
}

/**
 * `fields` as one JSON object, each field JSON cannot express left out and named in
 * `unrepresentable` (absent when every field could be written).
 */
export function jsonFields(fields: Record<string, unknown>): string {
  const out: Record<string, unknown> = {};
  const bad: string[] = [];
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue; // absent, as JSON.stringify leaves it
    if (jsonText(v) === undefined) bad.push(k);
    else out[k] = v;
  }
  if (bad.length > 0) out.unrepresentable = bad;
  return JSON.stringify(out);
}

/** The answer of an operation that happened: {@link jsonFields} with `status`. */
export function writeAnswer(c: Context, fields: Record<string, unknown>, status: 200 | 201 = 200): Response {
  return c.body(jsonFields(fields), status, { "Content-Type": "application/json" });
}
