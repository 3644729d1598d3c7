/**
 * Query parameters read strictly: a parameter given twice is refused rather than one of its
 * values picked, and a whole number is decimal digits only (no sign, blanks, exponent, hex or
 * fraction, which `Number` would accept), within the route's bounds.
 */
import type { Context } from "hono";
import { jsonError } from "./errors.ts";

/** Longest run of digits read (beyond it no bound a route uses is met). */
const MAX_DIGITS = 16;

/** Reads `raw` as a whole number from `min` to `max`. @returns null when it is not one */
export function wholeNumber(raw: string, min: number, max: number): number | null {
  if (raw.length === 0 || raw.length > MAX_DIGITS || !/^[0-9]+$/.test(raw)) return null;
  const n = Number(raw);
  return Number.isSafeInteger(n) && n >= min && n <= max ? n : null;
}

/** The one value of query parameter `name` (undefined when absent), or a 400 answer when it is given more than once. */
export function queryOnce(c: Context, name: string): string | undefined | Response {
  const all = c.req.queries(name);
  if (all === undefined || all.length === 0) return undefined;
  if (all.length > 1) return jsonError(c, 400, `${name} is given more than once`, "INVALID_ARGUMENT");
  return all[0];
}

/**
 * Query parameter `name` as a whole number from `min` to `max`: undefined when absent or empty,
 * a 400 answer when malformed, out of bounds or repeated.
 */
export function wholeNumberParam(c: Context, name: string, min: number, max: number): number | undefined | Response {
  const raw = queryOnce(c, name);
  if (raw === undefined || raw instanceof Response || raw === "") return raw === "" ? undefined : raw;
  return wholeNumber(raw, min, max) ??
    jsonError(c, 400, `${name} must be a whole number from ${min} to ${max}`, "INVALID_ARGUMENT");
}
