/** Reading the parts of an SDP that signaling authenticates. */

/**
 * The DTLS fingerprints (`a=fingerprint:` lines) of an SDP, normalised to
 * "algorithm HEX:HEX…" with the algorithm lowercase and the hex uppercase, in order.
 * @param sdp the session description
 * @returns the fingerprints (session- and media-level), at most 4
 * @example
 * ```ts
 * sdpFingerprints("a=fingerprint:SHA-256 ab:cd\r\n"); // ["sha-256 AB:CD"]
 * ```
 */
export function sdpFingerprints(sdp: string): string[] {
  const out: string[] = [];
  for (const line of sdp.split(/\r?\n/)) {
    if (!line.startsWith("a=fingerprint:")) continue;
    const [algo, hex] = line.slice("a=fingerprint:".length).trim().split(/\s+/);
    if (!algo || !hex) continue;
    out.push(`${algo.toLowerCase()} ${hex.toUpperCase()}`);
    if (out.length >= 4) break;
  }
  return out;
}
