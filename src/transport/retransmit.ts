/**
 * Shoal's SCTP retransmission bounds, and the schedule they give a lost packet. The WebRTC
 * transport applies the bounds to werift's associations (webrtc_peer.ts); the memory
 * transport uses the schedule to model what a lost packet costs on a data channel: the
 * message arrives late, and everything sent after it on that link waits with it. No werift
 * import here, so the simulator can use it.
 */

/** Longest a SACK for a lone packet waits for a second packet to share it. */
export const delayedSackMs = 2;

/**
 * Retransmission bounds. werift 0.24 keeps RFC 9260's defaults (RTO.Min 1 s, RTO.Initial
 * 3 s, RTO.Max 60 s) and has no early retransmission of a lone message: fast retransmit
 * needs three SACKs reporting the gap, which a request/response link never sends. One lost
 * packet then stalls the channel, and everything ordered behind it, for a second or more.
 */
export const retransmitTuning = {
  /** RTO before the first RTT sample (werift: 3 s). */
  rtoInitialMs: 1_000,
  /**
   * Lower bound of the RTO computed from the measured RTT (werift: 1 s). The probes are the
   * fast path; an expiry also shrinks the congestion window to one packet, so a stalled
   * event loop must not cause one. With a 100 ms floor, test/transport_sack_policy_test.ts
   * once stalled for 60 s in a full run on a loaded 2-core machine (it passes alone);
   * spurious expiries holding the window at one packet are the likely cause, not a proven
   * one. 400 ms leaves lost packets to the probes and the RTO to real silences.
   */
  rtoMinMs: 400,
  /** Upper bound, also after backing off (werift: 60 s). */
  rtoMaxMs: 1_000,
  /** Shortest wait before a probe retransmission. */
  probeMinMs: 4,
  /** Probe wait before the first RTT sample. */
  probeInitialMs: 30,
  /** Probes per silence; after them only the (backed-off) RTO timer retransmits. */
  maxProbes: 2,
  /** DATA chunks a probe retransmits at most (the earliest unacknowledged ones). */
  probeChunks: 4,
  /** How long a probe the peer reported as a duplicate keeps the probe wait doubled. */
  spuriousHoldMs: 5_000,
  /**
   * Most the probe wait is multiplied by after duplicates. A duplicate is reported just the
   * same when the original's SACK was lost, not late (with 5 % loss about one probe in three),
   * so a high cap turned probes into RTO-length waits exactly when loss made them needed
   * (`bench/lossy.ts`: at 64, a fifth of the probes waited 8–16× the base).
   */
  maxSlowdown: 4,
} as const;

/** RTO = SRTT + 4·RTTVAR (RFC 9260 §6.3.1), within Shoal's bounds; all in ms. */
export function rtoMs(srttMs: number, rttvarMs: number): number {
  return Math.max(retransmitTuning.rtoMinMs, Math.min(srttMs + 4 * rttvarMs, retransmitTuning.rtoMaxMs));
}

/** The wait before probe number `probesSent` (0-based): 2·SRTT + delayed SACK, doubling, at most the RTO. */
export function probeWaitMs(srttMs: number | undefined, probesSent: number, rto: number): number {
  const base = srttMs === undefined
    ? retransmitTuning.probeInitialMs
    : Math.max(retransmitTuning.probeMinMs, 2 * srttMs + delayedSackMs);
  return Math.min(base * 2 ** probesSent, rto);
}

/**
 * When a packet that keeps being lost is sent again, in ms after its first sending: the
 * probes (each wait measured from the previous one) merged with the T3-rtx expiries (RTO,
 * doubled after each, at most rtoMaxMs). `srttMs` as the association measures it (one
 * round trip plus the delayed SACK). At most `n` entries.
 */
export function retransmitScheduleMs(srttMs: number, rttvarMs: number, n = 12): number[] {
  const rto = rtoMs(srttMs, rttvarMs);
  const times: number[] = [];
  let at = 0;
  for (let k = 0; k < retransmitTuning.maxProbes; k++) times.push(at += probeWaitMs(srttMs, k, rto));
  let expiry = 0, next = rto;
  while (times.length < n + retransmitTuning.maxProbes) {
    times.push(expiry += next);
    next = Math.min(next * 2, retransmitTuning.rtoMaxMs);
  }
  return [...new Set(times.sort((a, b) => a - b))].slice(0, n);
}
