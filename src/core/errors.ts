/**
 * Typed errors for expected failures. Callers switch on `code`; `name` is the class name.
 */
export type ShoalErrorCode =
  | "TIMEOUT"
  | "INDETERMINATE"
  | "WRONG_TARGET"
  | "MIGRATING"
  | "MEMBER_GONE"
  | "STALE_EPOCH"
  | "NOT_MASTER"
  | "AUTH_FAILED"
  | "REFUSED"
  | "UNREACHABLE"
  | "OVERLOADED"
  | "INVALID_ARGUMENT"
  | "SHUTDOWN"
  | "NOT_FOUND"
  | "CONFLICT"
  | "PROCESSOR_FAILED"
  | "LOCKED"
  /** Split-brain protection: this member sees fewer data members than the minimum cluster size, or its lease ran out. Retryable. */
  | "QUORUM"
  | "INTERNAL";

export class ShoalError extends Error {
  override name = "ShoalError";
  constructor(readonly code: ShoalErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export class TimeoutError extends ShoalError {
  override name = "TimeoutError";
  constructor(message: string) {
    super("TIMEOUT", message);
  }
}

/** The operation may or may not have been applied; the caller must check. */
export class IndeterminateResultError extends ShoalError {
  override name = "IndeterminateResultError";
  constructor(message: string) {
    super("INDETERMINATE", message);
  }
}

/** Crash on a broken invariant: a bug, not an expected failure. */
export function assert(cond: unknown, message: string): asserts cond {
  if (!cond) throw new Error(`Assertion failed: ${message}`);
}
