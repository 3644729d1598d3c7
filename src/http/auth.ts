/**
 * Bearer-token access control for the HTTP app. With a token configured, every route needs
 * `Authorization: Bearer <token>` except the open ones: `GET /health`, the dashboard page
 * `GET /` (a static page without data; it asks for the token itself), the `/signal`
 * WebSocket (signaling is authenticated by the cluster secret, see SECURITY.md) and, when
 * asked for, `GET /metrics`. A read token, when configured, grants the safe methods (GET,
 * HEAD, OPTIONS) only; a write with it gets 403.
 */
import type { MiddlewareHandler } from "hono";
import { jsonError } from "./errors.ts";

const safeMethods = new Set(["GET", "HEAD", "OPTIONS"]);

/** Compares two strings in time that depends only on their lengths. */
export function constantTimeEqual(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  let diff = x.length ^ y.length;
  const n = Math.max(x.length, y.length);
  for (let i = 0; i < n; i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}

/** Who may do what over HTTP. */
export interface AccessPolicy {
  /** Full-access token (reads and writes). `undefined` leaves every route open. */
  token?: string;
  /** Read-only token: safe methods only. Needs `token`. */
  readToken?: string;
  /** Serve `GET /metrics` without a token (for scrapers on a trusted network). @default false */
  openMetrics?: boolean;
}

/** What a request may do, from its bearer token. */
export type Grant = "none" | "read" | "write";

/**
 * The grant of an `Authorization` header value under `policy`.
 * @param header the header value, or undefined when absent
 * @param policy the configured tokens
 * @returns "write" for the full token, "read" for the read token, else "none"
 */
export function grantOf(header: string | undefined, policy: AccessPolicy): Grant {
  const m = /^Bearer\s+(.+)$/i.exec((header ?? "").trim());
  if (!m) return "none";
  // Compare against both so the answer time does not tell which one was close.
  const full = policy.token !== undefined && constantTimeEqual(m[1], policy.token);
  const read = policy.readToken !== undefined && constantTimeEqual(m[1], policy.readToken);
  return full ? "write" : read ? "read" : "none";
}

/** Whether `method path` is served without a token under `policy`. */
export function isOpenRoute(method: string, path: string, policy: AccessPolicy): boolean {
  if (method !== "GET" && method !== "HEAD") return false;
  if (path === "/health" || path === "/" || path === "/signal") return true;
  return path === "/metrics" && policy.openMetrics === true;
}

/**
 * Middleware that answers 401 to requests for a protected route without a valid bearer
 * token, and 403 to writes made with the read token.
 * @param policy the configured tokens; without `token` every request is let through
 * @returns the middleware
 * @throws TypeError when a read token is given without a full token (writes would be open)
 */
export function requireToken(policy: AccessPolicy): MiddlewareHandler {
  if (policy.token === undefined) {
    if (policy.readToken !== undefined) {
      throw new TypeError("Cannot use a read token without a token: writes would be open to anyone");
    }
    return (_c, next) => next();
  }
  if (policy.readToken !== undefined && policy.readToken === policy.token) {
    throw new TypeError("The read token must differ from the token");
  }
  return async (c, next) => {
    if (isOpenRoute(c.req.method, c.req.path, policy)) return await next();
    const header = c.req.header("authorization");
    const grant = grantOf(header, policy);
    const write = !safeMethods.has(c.req.method);
    if (grant === "write" || (grant === "read" && !write)) return await next();
    if (grant === "read") {
      return jsonError(c, 403, "The read-only token cannot change anything; use the full token", "REFUSED");
    }
    c.header("WWW-Authenticate", 'Bearer realm="shoal"');
    return jsonError(
      c,
      401,
      header ? "Invalid bearer token" : "This route needs an Authorization: Bearer <token> header",
      "AUTH_FAILED",
    );
  };
}
