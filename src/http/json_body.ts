/**
 * Reading a JSON request body safely: size-limited (the app's body-limit middleware has
 * already refused oversized bodies with 413), strict UTF-8, a 400 with the parser's
 * message on bad JSON, and a 400 for a value that would not be stored as sent ({@link unstorable}).
 */
import type { Context } from "hono";
import { jsonError } from "./errors.ts";
import { depthOf, maxJsonDepth, unstorable } from "../core/json_value.ts";

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
