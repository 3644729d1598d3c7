/**
 * Reading a JSON request body safely: size-limited (the app's body-limit middleware has
 * already refused oversized bodies with 413), strict UTF-8, a 400 with the parser's
 * message on bad JSON, and a 400 for a value that would not be stored as sent ({@link unstorable}).
 */
import type { Context } from "hono";
import { jsonError } from "./errors.ts";

/** A parsed body, or the error response to return. */
export type JsonBody = { ok: true; value: unknown } | { ok: false; response: Response };

/**
 * Parses the request body as one JSON value.
 * @param c the hono context
 * @returns the value, or a 400 response for an empty body, bad UTF-8 or bad JSON
 */
export async function readJsonBody(c: Context): Promise<JsonBody> {
  let text: string;
  try {
    const bytes = new Uint8Array(await c.req.arrayBuffer());
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return { ok: false, response: jsonError(c, 400, "Request body is not valid UTF-8", "INVALID_ARGUMENT") };
  }
  if (text.trim() === "") {
    return {
      ok: false,
      response: jsonError(c, 400, "Request body must be a JSON value, got an empty body", "INVALID_ARGUMENT"),
    };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return {
      ok: false,
      response: jsonError(c, 400, `Bad JSON in request body: ${(err as Error).message}`, "INVALID_ARGUMENT"),
    };
  }
  if (depthOf(value) > maxJsonDepth) {
    return {
      ok: false,
      response: jsonError(c, 400, `Request body nests deeper than ${maxJsonDepth} levels`, "INVALID_ARGUMENT"),
    };
  }
  const bad = unstorable(value);
  if (bad) return { ok: false, response: jsonError(c, 400, `Request body ${bad}`, "INVALID_ARGUMENT") };
  return { ok: true, value };
}

/** A lone UTF-16 surrogate: a string that cannot be encoded as UTF-8 as it is. */
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * Why a parsed JSON value would not be stored as it was sent, or undefined when it would: a
 * string (or key) with a lone surrogate (`"\ud800"`, stored as U+FFFD), a `__proto__` key (its
 * name changed by the encoding), or a number beyond float64 (`1e400` parses as Infinity and is
 * stored as null). Such bodies are refused, never stored changed. Call after {@link depthOf}
 * has bounded the nesting.
 */
export function unstorable(value: unknown): string | undefined {
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v === "string") {
      if (LONE_SURROGATE.test(v)) return "holds a string with a lone UTF-16 surrogate";
    } else if (typeof v === "number") {
      if (!Number.isFinite(v)) return "holds a number beyond the range of a float64";
    } else if (Array.isArray(v)) stack.push(...v);
    else if (v !== null && typeof v === "object") {
      for (const [k, child] of Object.entries(v)) {
        if (k === "__proto__") return "holds a __proto__ key";
        if (LONE_SURROGATE.test(k)) return "holds a key with a lone UTF-16 surrogate";
        stack.push(child);
      }
    }
  }
  return undefined;
}

/** Deepest nesting accepted in a body; deeper values could exhaust the stack when encoded. */
export const maxJsonDepth = 64;

/** Nesting depth of a parsed JSON value (scalars are 0), computed without recursion. */
export function depthOf(value: unknown): number {
  let max = 0;
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, d] = stack.pop()!;
    if (v === null || typeof v !== "object") continue;
    if (d + 1 > max) max = d + 1;
    if (max > maxJsonDepth) return max;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, d + 1]);
  }
  return max;
}
