/**
 * Parses the `--ice` flag's short URL forms into the `IceServer` objects WebRTC takes:
 * `stun:host[:port]` and `turn:user:pass@host[:port][?transport=udp|tcp]` (also `stuns:`
 * and `turns:`). Credentials in TURN URLs may be percent-encoded.
 */
import type { IceServer } from "../config.ts";

const hostPattern = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?)$/;

/**
 * Converts one `--ice` URL into an `IceServer`, or returns an error message.
 *
 * @example
 * ```ts
 * parseIceUrl("turn:alice:s3cret@turn.example.org:3478");
 * // { urls: "turn:turn.example.org:3478", username: "alice", credential: "s3cret" }
 * ```
 */
export function parseIceUrl(url: string): IceServer | { error: string } {
  const bad = (why: string) => ({ error: `Bad --ice URL "${redact(url)}": ${why}` });
  const m = /^(stuns?|turns?):(.*)$/i.exec(url.trim());
  if (!m) return bad("expected stun:host:port or turn:user:pass@host:port");
  const scheme = m[1].toLowerCase();
  let rest = m[2];
  let query = "";
  const q = rest.indexOf("?");
  if (q >= 0) {
    query = rest.slice(q);
    rest = rest.slice(0, q);
    if (!/^\?transport=(udp|tcp)$/i.test(query)) {
      return bad("the only query allowed is ?transport=udp or ?transport=tcp");
    }
    if (!scheme.startsWith("turn")) return bad("?transport is only for TURN URLs");
    query = query.toLowerCase();
  }
  let username: string | undefined;
  let credential: string | undefined;
  const at = rest.lastIndexOf("@");
  if (at >= 0) {
    if (!scheme.startsWith("turn")) return bad("STUN URLs take no credentials");
    const userinfo = rest.slice(0, at);
    rest = rest.slice(at + 1);
    const colon = userinfo.indexOf(":");
    if (colon <= 0) return bad("TURN credentials must be user:pass@");
    try {
      username = decodeURIComponent(userinfo.slice(0, colon));
      credential = decodeURIComponent(userinfo.slice(colon + 1));
    } catch {
      return bad("credentials are not valid percent-encoding");
    }
    if (username === "" || credential === "") return bad("TURN user and password must not be empty");
  } else if (scheme.startsWith("turn")) {
    return bad("TURN needs credentials: turn:user:pass@host:port");
  }
  const hp = /^(\[[^\]]*\]|[^:]*)(?::(\d+))?$/.exec(rest);
  if (!hp) return bad("expected host:port");
  const host = hp[1];
  if (!hostPattern.test(host)) return bad(`"${host}" is not a host name or address`);
  if (hp[2] !== undefined) {
    const port = Number(hp[2]);
    if (!(port >= 1 && port <= 65535)) return bad(`port ${hp[2]} is out of range 1–65535`);
  }
  const server: IceServer = { urls: `${scheme}:${rest}${query}` };
  if (username !== undefined) {
    server.username = username;
    server.credential = credential;
  }
  return server;
}

/** Hides the password of a TURN URL so it can appear in an error message. */
export function redact(url: string): string {
  return url.replace(/^(turns?:[^:@]*:)[^@]*@/i, "$1***@");
}
