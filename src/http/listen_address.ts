/**
 * The `--http HOST:PORT` listen address: parsing, and whether it is loopback-only (a node
 * refuses to serve HTTP on any other address without a bearer token).
 */

/** A parsed listen address. `host` has no brackets; port 0 means any free port. */
export interface ListenAddress {
  host: string;
  port: number;
}

/**
 * Parses `HOST:PORT`, `[IPv6]:PORT` or `:PORT` (all interfaces), or returns an error.
 *
 * @example
 * ```ts
 * parseListenAddress("127.0.0.1:5701"); // { host: "127.0.0.1", port: 5701 }
 * parseListenAddress("[::1]:0");        // { host: "::1", port: 0 }
 * ```
 */
export function parseListenAddress(s: string): ListenAddress | { error: string } {
  const bad = (why: string) => ({ error: `Bad --http address "${s}": ${why}` });
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\[\]]*)):(\d{1,5})$/.exec(s.trim());
  if (!m) return bad("expected HOST:PORT, e.g. 127.0.0.1:5701 (port 0 = any free port)");
  const host = m[1] ?? (m[2] === "" ? "0.0.0.0" : m[2]);
  const port = Number(m[3]);
  if (port > 65535) return bad(`port ${port} is out of range 0–65535`);
  if (m[2] !== undefined && m[2] !== "" && !/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(host)) {
    return bad(`"${host}" is not a host name or address`);
  }
  return { host, port };
}

/** Whether `host` only accepts connections from this machine. */
export function isLoopbackHost(host: string): boolean {
  // A fully qualified name may end with a dot ("localhost."); an IPv4-mapped address may be in hex ("::ffff:7f00:1").
  const h = host.toLowerCase().replace(/^\[|\]$/g, "").replace(/\.$/, "");
  if (/^::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}$/.test(h)) return true;
  if (h === "localhost" || h.endsWith(".localhost") || h === "::1" || h === "0:0:0:0:0:0:0:1") return true;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || /^::ffff:127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** Formats an address as a base URL, bracketing IPv6 hosts. */
export function formatHttpUrl(addr: ListenAddress): string {
  const host = addr.host.includes(":") ? `[${addr.host}]` : addr.host;
  return `http://${host}:${addr.port}`;
}

/**
 * The warning to print when serving plain HTTP where others can reach it, or undefined on
 * loopback or with TLS.
 * @param address the `--http` value as given
 * @param host its parsed host
 * @param tls whether TLS is configured
 */
export function plainHttpWarning(address: string, host: string, tls: boolean): string | undefined {
  if (tls || isLoopbackHost(host)) return undefined;
  return `Serving plain HTTP on ${address}: the bearer token and all map data cross the network in clear text, ` +
    `so anyone on the path can read them and reuse the token. Pass --tls-cert and --tls-key to serve HTTPS.`;
}
