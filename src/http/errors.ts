/**
 * How errors become HTTP answers: a JSON body `{"error": message, "code"?}` and a status
 * chosen from the error's code, so clients can tell "retry later" from "you sent garbage".
 */
import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { ShoalError, type ShoalErrorCode } from "../core/errors.ts";

const statusByCode: Record<ShoalErrorCode, ContentfulStatusCode> = {
  TIMEOUT: 504,
  INDETERMINATE: 504,
  WRONG_TARGET: 503,
  MIGRATING: 503,
  MEMBER_GONE: 503,
  STALE_EPOCH: 503,
  NOT_MASTER: 503,
  OVERLOADED: 503,
  SHUTDOWN: 503,
  UNREACHABLE: 503,
  QUORUM: 503,
  AUTH_FAILED: 401,
  REFUSED: 403,
  INVALID_ARGUMENT: 400,
  NOT_FOUND: 404,
  CONFLICT: 409,
  PROCESSOR_FAILED: 422,
  LOCKED: 423,
  INTERNAL: 500,
};

/**
 * The HTTP status for a `ShoalError` code (503 for transient cluster states, 504 when no
 * definite answer arrived in time).
 * @param code the error code
 * @returns the status
 */
export function statusForCode(code: ShoalErrorCode): ContentfulStatusCode {
  return statusByCode[code] ?? 500;
}

/**
 * Answers `{"error": message, "code"?}` with `status`.
 * @param c the hono context
 * @param status HTTP status
 * @param message what went wrong, one sentence
 * @param code optional machine-readable code
 */
export function jsonError(c: Context, status: ContentfulStatusCode, message: string, code?: string): Response {
  return c.json(code === undefined ? { error: message } : { error: message, code }, status);
}

/**
 * Turns a thrown value into an error response; `ShoalError`s keep their message and code,
 * a `RangeError` (bad argument) is a 400, anything else a 500 without internals.
 * @param c the hono context
 * @param err the thrown value
 */
export function errorResponse(c: Context, err: unknown): Response {
  if (err instanceof ShoalError) {
    const status = statusForCode(err.code);
    if (status === 503) c.header("Retry-After", "1");
    return jsonError(c, status, err.message, err.code);
  }
  if (err instanceof RangeError) return jsonError(c, 400, err.message, "INVALID_ARGUMENT");
  return jsonError(c, 500, "Internal error", "INTERNAL");
}
