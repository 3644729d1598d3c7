/**
 * The lease of one member under split-brain protection (minimum cluster size): the pure
 * bookkeeping, with every time passed in. A member serves data only while
 *  1. its view holds at least `minClusterSize` data members, and
 *  2. its lease holds: enough data members (itself included, when it holds data) answered
 *     one of its lease pings sent within the last `leaseMs`.
 *
 * Why a reply to a ping and not the time a message arrived: a message read after a pause
 * (SIGSTOP, a blocked event loop) may have been sent long before the others took this
 * member for dead, so its arrival proves nothing. A reply to a ping sent at `t` proves the
 * peer still counted this member alive at some moment after `t`; the lease then runs
 * until `t + leaseMs`, measured on this member's monotonic clock (which keeps running while
 * the process is stopped). As long as `leaseMs` is shorter than the time the others need
 * to declare a silent member dead, a cut-off or paused member's lease runs out before any
 * other member can take its partitions over.
 */
import type { NodeId } from "../transport/transport.ts";
import { setNewest } from "../core/bounded.ts";

/** Why a member may not serve data right now. */
export type QuorumRefusal =
  | { reason: "members"; have: number; need: number }
  | { reason: "lease"; expiredForMs: number; need: number };

/**
 * Whether a member may serve data: null when it may, else why not.
 * @param dataMembers data members in its view (itself included when it holds data)
 * @param minClusterSize the minimum cluster size (0 or 1: always)
 * @param leaseExpiresAt when its lease runs out ({@link LeaseTracker.expiresAt})
 * @param now its monotonic clock
 * @example
 * ```ts
 * quorumRefusal(2, 3, Infinity, 0); // { reason: "members", have: 2, need: 3 }
 * quorumRefusal(3, 3, 1000, 1200); // { reason: "lease", expiredForMs: 200, need: 3 }
 * quorumRefusal(3, 3, 1000, 900); // null
 * ```
 */
export function quorumRefusal(
  dataMembers: number,
  minClusterSize: number,
  leaseExpiresAt: number,
  now: number,
): QuorumRefusal | null {
  if (minClusterSize <= 1) return null;
  if (dataMembers < minClusterSize) return { reason: "members", have: dataMembers, need: minClusterSize };
  if (now >= leaseExpiresAt) return { reason: "lease", expiredForMs: now - leaseExpiresAt, need: minClusterSize };
  return null;
}

/** The table identity a lease reply carries: only a peer holding the same table (or an older version of it) renews. */
export interface TableStamp {
  term: number;
  version: number;
}

/**
 * Whether a peer's reply may renew the lease given the tables both sides hold: same reign
 * (term) and the peer not ahead. A member that missed a table change (it was paused while
 * its partitions moved, or its side of a split lost the merge) must not count peers that
 * already follow a newer table: it would serve from a table that no longer makes it primary.
 */
export function stampRenews(peer: TableStamp, own: TableStamp): boolean {
  return peer.term === own.term && peer.version <= own.version;
}

export interface LeaseTrackerConfig {
  /** How long one answered ping keeps the lease. */
  leaseMs: number;
  /** Pings remembered while their replies are awaited (older ones no longer renew). @default 64 */
  maxOutstanding?: number;
}

/**
 * Ping send times and the newest answered send time per peer. Pings are numbered; a reply
 * names the ping it answers, so its renewal starts at that ping's send time.
 */
export class LeaseTracker {
  readonly leaseMs: number;
  readonly maxOutstanding: number;
  #seq = 0;
  /** Ping number → send time, in sending order (bounded). */
  #sent = new Map<number, number>();
  /** Peer → send time of the newest ping it answered. */
  #confirmed = new Map<NodeId, number>();

  constructor(config: LeaseTrackerConfig) {
    if (!(config.leaseMs > 0)) throw new RangeError(`Cannot use leaseMs ${config.leaseMs}: must be > 0`);
    this.leaseMs = config.leaseMs;
    this.maxOutstanding = config.maxOutstanding ?? 64;
  }

  /** Records a ping (to all peers at once) sent at `now`; returns its number. */
  ping(now: number): number {
    const n = ++this.#seq;
    setNewest(this.#sent, n, now, this.maxOutstanding);
    return n;
  }

  /**
   * A peer answered ping `n`. A reply to an unknown or forgotten ping changes nothing.
   * @returns whether it renewed that peer's confirmation
   */
  answered(peer: NodeId, n: number): boolean {
    const at = this.#sent.get(n);
    if (at === undefined) return false;
    const prev = this.#confirmed.get(peer);
    if (prev !== undefined && prev >= at) return false;
    this.#confirmed.set(peer, at);
    return true;
  }

  /** Forgets a peer (it left the view); bounded by the view's size otherwise. */
  forget(peer: NodeId): void {
    this.#confirmed.delete(peer);
  }

  /** The send time of the newest ping `peer` answered, if any. */
  confirmedAt(peer: NodeId): number | undefined {
    return this.#confirmed.get(peer);
  }

  /**
   * When the lease runs out: the `k`-th newest confirmation among `dataPeers` plus
   * `leaseMs`, where `k` is the number of peers needed besides this member.
   * @param dataPeers the other data members of the view
   * @param selfIsData whether this member holds data (counts towards the quorum itself)
   * @param minClusterSize the quorum
   * @returns Infinity when no peer is needed, -Infinity when too few ever answered
   */
  expiresAt(dataPeers: readonly NodeId[], selfIsData: boolean, minClusterSize: number): number {
    const k = minClusterSize - (selfIsData ? 1 : 0);
    if (k <= 0) return Infinity;
    const times: number[] = [];
    for (const p of dataPeers) {
      const t = this.#confirmed.get(p);
      if (t !== undefined) times.push(t);
    }
    if (times.length < k) return -Infinity;
    times.sort((a, b) => b - a);
    return times[k - 1] + this.leaseMs;
  }
}
