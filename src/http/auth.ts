/**
 * Bearer-token check for writes: when a token is configured, every request whose method
 * can change state (anything but GET, HEAD, OPTIONS) needs `Authorization: Bearer <token>`.
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

/**
 * Middleware that answers 401 to unsafe requests without the right bearer token.
 * @param token the configured token; `undefined` lets every request through
 * @returns the middleware
 */
export function requireTokenForWrites(token: string | undefined): MiddlewareHandler {
  return async (c, next) => {
    if (token === undefined || safeMethods.has(c.req.method)) return await next();
    const header = c.req.header("authorization") ?? "";
    const m = /^Bearer\s+(.+)$/i.exec(header.trim());
    if (!m || !constantTimeEqual(m[1], token)) {
      c.header("WWW-Authenticate", 'Bearer realm="shoal"');
      return jsonError(
        c,
        401,
        m ? "Invalid bearer token" : "This write needs an Authorization: Bearer <token> header",
        "AUTH_FAILED",
      );
    }
    return next();
  };
}
