/**
 * Requests a web page made the browser send. Without a token a member's API is open to
 * whatever can reach it, which for a member on loopback meant any web page its operator
 * visited (found by an internal review):
 * - **Cross-site requests.** A page on another origin can make the browser send a POST, PUT or
 *   DELETE ("simple" requests need no preflight, `mode: "no-cors"`): it cannot read the answer,
 *   but the write is done. A browser names the page's origin in `Origin` on such a request, so
 *   a write whose `Origin` is not this member's own (the `Host` it was sent to) gets 403. Clients
 *   that are not browsers send no `Origin` and are not affected; the dashboard is same-origin.
 * - **Cross-site sockets.** A WebSocket upgrade (`/signal`) from another origin is refused the
 *   same way: the page would hold the socket (members' own clients send no `Origin`).
 * - **DNS rebinding.** A page whose own host name is re-pointed at 127.0.0.1 is same-origin with
 *   the member as the browser sees it, and can read too. Such a request still names the page's
 *   host in `Host`: a member listening on loopback only answers requests whose `Host` is a
 *   loopback name or address.
 */
import type { MiddlewareHandler } from "hono";
import { jsonError } from "./errors.ts";
import { isLoopbackHost } from "./listen_address.ts";

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/** A host name as compared here: lower case, without the trailing dot of a fully qualified name. */
const hostKey = (name: string): string => name.toLowerCase().replace(/\.$/, "");

/** A `Host` header split into its lower-case name and port (absent: undefined), or undefined when malformed. */
export function splitHost(host: string): { name: string; port: number | undefined } | undefined {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]/@\s]+)(?::(\d{1,5}))?$/.exec(host);
  if (!m) return undefined;
  return { name: m[1].toLowerCase(), port: m[2] === undefined ? undefined : Number(m[2]) };
}

/** Whether a browser's `Origin` names the same host and port as the request's `Host`. */
export function sameOrigin(origin: string, host: string | undefined): boolean {
  if (host === undefined) return false;
  let u: URL;
  try {
    u = new URL(origin);
  } catch {
    return false; // "null" (a sandboxed frame, a file) and anything else malformed
  }
  const h = splitHost(host);
  if (!h || (u.protocol !== "http:" && u.protocol !== "https:")) return false;
  const defaultPort = u.protocol === "https:" ? 443 : 80;
  const originName = u.hostname.toLowerCase();
  return originName === h.name && Number(u.port || defaultPort) === (h.port ?? defaultPort);
}

/** Whether a browser's `Origin` names one of `names` (host names, any port). */
function originNamed(origin: string, names: ReadonlySet<string>): boolean {
  try {
    return names.has(hostKey(new URL(origin).hostname));
  } catch {
    return false;
  }
}

/**
 * Refuses (403 `FORBIDDEN`) a write or WebSocket sent from another web origin, and, with
 * `loopbackOnly` (the member listens on a loopback address), any request whose `Host` is not a
 * loopback name. `allowedHosts` (`--http-allowed-host`, a reverse proxy's public name) are
 * accepted in `Host` and as the origin of a write. A request without `Host` (HTTP/1.0) comes
 * from no browser and passes.
 */
export function originCheck(
  opts: { loopbackOnly?: boolean; allowedHosts?: readonly string[] } = {},
): MiddlewareHandler {
  const allowed = new Set((opts.allowedHosts ?? []).map(hostKey));
  return async (c, next) => {
    const host = c.req.header("host");
    if (opts.loopbackOnly && host !== undefined) {
      const h = splitHost(host);
      const name = h && hostKey(h.name);
      if (name === undefined || !(isLoopbackHost(name) || allowed.has(name))) {
        return jsonError(c, 403, "This member listens on loopback only: Host must name it so", "FORBIDDEN");
      }
    }
    // A WebSocket upgrade is a GET, but the page gets the socket: checked like a write (a page
    // on any site could open `/signal`, learn the members' ids and claim one of them).
    const upgrade = c.req.header("upgrade")?.toLowerCase() === "websocket";
    if (!SAFE_METHODS.has(c.req.method) || upgrade) {
      const origin = c.req.header("origin");
      if (origin !== undefined && !sameOrigin(origin, host) && !originNamed(origin, allowed)) {
        return jsonError(c, 403, "Writes and sockets from another web origin are refused", "FORBIDDEN");
      }
    }
    await next();
  };
}
