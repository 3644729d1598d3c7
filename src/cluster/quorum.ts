/**
 * Split-brain protection (minimum cluster size) with leases: the gate every data operation
 * passes on this member, both where it is called (the invocation layer refuses before
 * sending) and where it is served (a primary refuses before reading or writing). See
 * lease.ts for the rules and why a lease is renewed only by replies to pings.
 *
 * Every `renewMs` this member sends `ClusterLeasePing` to each other data member of its
 * view; a member answers with `ClusterLeaseAck` only while the pinger is a live member of
 * its own view, and names the partition table it holds. When the gate refuses because the
 * lease ran out (after a pause, a cut link), it pings at once: re-confirm first, answer after.
 */
import type { Timer } from "../core/clock.ts";
import { ShoalError } from "../core/errors.ts";
import type { NodeId } from "../transport/transport.ts";
import { Kind } from "../wire/kinds.ts";
import { defineMessage, w } from "../wire/message.ts";
import { LeaseTracker, type QuorumRefusal, quorumRefusal, stampRenews, type TableStamp } from "./lease.ts";
import type { ServiceDeps } from "./service_deps.ts";

/** Member → each other data member: am I still one of yours? `n` numbers the ping. */
export const ClusterLeasePing = defineMessage(Kind.ClusterLeasePing, "ClusterLeasePing", { n: w.uint() });
/** The answer, sent only while the pinger is a live member of the sender's view; `tt`/`tv`: the sender's table. */
export const ClusterLeaseAck = defineMessage(Kind.ClusterLeaseAck, "ClusterLeaseAck", {
  n: w.uint(),
  tt: w.uint(),
  tv: w.uint(),
});

export interface QuorumConfig {
  /** Data members a member must see (and hold a lease with) to serve data; 0 = protection off. */
  minClusterSize: number;
  /**
   * The largest minimum cluster size any map asks for (per-map overrides, map_config.ts):
   * leases are kept while it or `minClusterSize` is above 1. @default 0
   */
  maxMinClusterSize?: number;
  /**
   * How long one round of answered pings keeps the lease. Must stay below the time the
   * others need to declare a silent member dead (membership's `suspectUnansweredMs`).
   * @default 1000
   */
  leaseMs?: number;
  /** Time between two lease pings. @default leaseMs / 4 */
  renewMs?: number;
}

export interface QuorumOptions extends Omit<ServiceDeps, "rng"> {
  config: QuorumConfig;
  /** The partition table this member holds (term, version); acks from peers on another table do not renew. */
  stamp: () => TableStamp;
}

/** What `GET /cluster` and metrics show of the gate. */
export interface QuorumState {
  minClusterSize: number;
  leaseMs: number;
  /** Whether data operations are served right now. */
  serving: boolean;
  /** Why not, when not. */
  refusal: QuorumRefusal | null;
  /** Milliseconds the lease still holds (negative: ran out that long ago; null: no lease needed or none yet). */
  leaseLeftMs: number | null;
  /** Lease pings sent and answered, answers not counted (the peer was on another table), refusals. */
  stats: Quorum["stats"];
}

export class Quorum {
  readonly minClusterSize: number;
  /** The largest minimum cluster size this member or any of its maps asks for. */
  readonly maxMinClusterSize: number;
  readonly leaseMs: number;
  readonly renewMs: number;
  readonly stats = {
    pingsSent: 0,
    acksSent: 0,
    acksCounted: 0,
    acksStale: 0,
    refused: 0,
    reconfirms: 0,
    fencesCleared: 0,
  };
  #o: QuorumOptions;
  #lease: LeaseTracker;
  #timer: Timer | null = null;
  #lastPingAt = -Infinity;
  #stopped = false;
  #wasServing = true;
  #unsubscribe: () => void;
  /** Table stamps new primaries wait on (see {@link fenceCleared}), bounded by MAX_FENCES. */
  #fences = new Map<string, Fence>();

  constructor(opts: QuorumOptions) {
    const c = opts.config;
    if (!Number.isInteger(c.minClusterSize) || c.minClusterSize < 0) {
      throw new RangeError(`Cannot use minClusterSize ${c.minClusterSize}: must be an integer ≥ 0`);
    }
    this.#o = opts;
    this.minClusterSize = c.minClusterSize;
    this.maxMinClusterSize = Math.max(c.minClusterSize, c.maxMinClusterSize ?? 0);
    this.leaseMs = c.leaseMs ?? 1000;
    this.renewMs = c.renewMs ?? this.leaseMs / 4;
    if (!(this.renewMs > 0 && this.renewMs < this.leaseMs)) {
      throw new RangeError(`Cannot renew every ${this.renewMs} ms: must be > 0 and below leaseMs ${this.leaseMs}`);
    }
    this.#lease = new LeaseTracker({ leaseMs: this.leaseMs });
    opts.router.on(ClusterLeasePing, (from, m) => this.#onPing(from, m.n));
    opts.router.on(ClusterLeaseAck, (from, m) => this.#onAck(from, m.n, { term: m.tt, version: m.tv }));
    this.#unsubscribe = opts.view.subscribe((e) => {
      if (e.type === "memberRemoved") this.#lease.forget(e.member.id);
    });
    if (this.active) this.#schedule(0);
  }

  /** Whether split-brain protection is on member-wide. */
  get enabled(): boolean {
    return this.minClusterSize > 1;
  }

  /** Whether leases are kept: protection is on member-wide or for some map. */
  get active(): boolean {
    return this.maxMinClusterSize > 1;
  }

  /**
   * Null when this member may serve a data operation now, else the retryable `QUORUM`
   * error to answer with. A refusal for an expired lease starts a re-confirmation at once.
   * @param minClusterSize the size the operation needs (a map's override); @default the member-wide one
   */
  check(minClusterSize: number = this.minClusterSize): ShoalError | null {
    if (minClusterSize <= 1 || !this.active) return null;
    const r = this.refusal(minClusterSize);
    if (!r) {
      if (!this.#wasServing) {
        this.#wasServing = true;
        this.#o.log.info("cluster.quorum.serving", { minClusterSize: this.minClusterSize });
      }
      return null;
    }
    this.stats.refused++;
    if (this.#wasServing) {
      this.#wasServing = false;
      this.#o.log.warn("cluster.quorum.refusing", { ...r });
    }
    if (r.reason === "lease") this.#reconfirm();
    return new ShoalError("QUORUM", describe(r));
  }

  /** Why this member may not serve now (operations needing `minClusterSize`), or null. */
  refusal(minClusterSize: number = this.minClusterSize): QuorumRefusal | null {
    if (minClusterSize <= 1 || !this.active) return null;
    const { peers, selfIsData } = this.#dataPeers();
    const expires = this.#lease.expiresAt(peers, selfIsData, minClusterSize);
    return quorumRefusal(peers.length + (selfIsData ? 1 : 0), minClusterSize, expires, this.#o.clock.now());
  }

  /**
   * Whether a primary appointed by table `stamp` without a handoff from its predecessor
   * (who may have been removed while still holding its lease) may serve operations that
   * need `minClusterSize`: once `minClusterSize - 1` other data members answered a lease
   * ping naming a table at least as new as `stamp` (same term), then `leaseMs` plus a
   * margin. Why that suffices (with `minClusterSize` a majority): any quorum the old primary
   * renews its lease with afterwards includes one of those members, whose answer names the
   * newer table and so does not renew (stampRenews); its lease rests on pings sent before,
   * and runs out within `leaseMs` of them. Asks for answers at once when the stamp is new.
   */
  fenceCleared(stamp: TableStamp, minClusterSize: number): boolean {
    if (minClusterSize <= 1 || !this.active) return true;
    const key = `${stamp.term}:${stamp.version}:${minClusterSize}`;
    let f = this.#fences.get(key);
    const now = this.#o.clock.now();
    if (!f) {
      if (this.#fences.size >= MAX_FENCES) this.#fences.delete(this.#evictable());
      f = { stamp, need: minClusterSize, peers: new Set(), quorumAt: null, cleared: false };
      this.#fences.set(key, f);
      this.#reconfirm();
    }
    if (f.quorumAt === null) return false;
    if (now < f.quorumAt + this.leaseMs + this.fenceMarginMs) return false;
    // The record stays (until MAX_FENCES pushes it out): every primary the same table appointed
    // asks with the same stamp, and that wait is over for all of them. Dropping it here made each
    // of the others start a wait of its own, a lease after the one before
    // (test/map_quorum_fence_test.ts).
    if (!f.cleared) {
      f.cleared = true;
      this.stats.fencesCleared++;
    }
    return true;
  }

  /** The oldest fence whose wait is over, else the oldest of all (asked again, it waits again). */
  #evictable(): string {
    for (const [key, f] of this.#fences) if (f.cleared) return key;
    return this.#fences.keys().next().value!;
  }

  /** Added to `leaseMs` when a new primary waits out its predecessor's lease (clock rates, scheduling). */
  get fenceMarginMs(): number {
    return Math.max(10, this.leaseMs / 10);
  }

  state(): QuorumState {
    const refusal = this.refusal();
    let leaseLeftMs: number | null = null;
    if (this.enabled) {
      const { peers, selfIsData } = this.#dataPeers();
      const expires = this.#lease.expiresAt(peers, selfIsData, this.minClusterSize);
      if (Number.isFinite(expires)) leaseLeftMs = Math.round(expires - this.#o.clock.now());
    }
    return {
      minClusterSize: this.minClusterSize,
      leaseMs: this.leaseMs,
      serving: refusal === null,
      refusal,
      leaseLeftMs,
      stats: { ...this.stats },
    };
  }

  stop(): void {
    this.#stopped = true;
    this.#timer?.cancel();
    this.#timer = null;
    this.#unsubscribe();
  }

  #dataPeers(): { peers: NodeId[]; selfIsData: boolean } {
    const peers: NodeId[] = [];
    let selfIsData = false;
    for (const m of this.#o.view.members()) {
      if (m.lite) continue;
      if (m.id === this.#o.self) selfIsData = true;
      else peers.push(m.id);
    }
    return { peers, selfIsData };
  }

  #schedule(ms: number): void {
    this.#timer?.cancel();
    this.#timer = this.#o.clock.setTimer(ms, () => {
      this.#timer = null;
      if (this.#stopped) return;
      this.#pingAll();
      this.#schedule(this.renewMs);
    });
  }

  /** Pings now unless a ping went out very recently (a burst of refused calls sends one round). */
  #reconfirm(): void {
    if (this.#o.clock.now() - this.#lastPingAt < this.renewMs / 4) return;
    this.stats.reconfirms++;
    this.#pingAll();
    this.#schedule(this.renewMs);
  }

  #pingAll(): void {
    if (!this.#o.view.joined) return;
    const now = this.#o.clock.now();
    this.#lastPingAt = now;
    const n = this.#lease.ping(now);
    for (const id of this.#dataPeers().peers) {
      if (this.#o.transport.send(id, { t: Kind.ClusterLeasePing, n })) this.stats.pingsSent++;
    }
  }

  #onPing(from: NodeId, n: number): void {
    if (this.#stopped || !this.#o.view.member(from)) return;
    const s = this.#o.stamp();
    if (this.#o.transport.send(from, { t: Kind.ClusterLeaseAck, n, tt: s.term, tv: s.version })) this.stats.acksSent++;
  }

  #onAck(from: NodeId, n: number, peer: TableStamp): void {
    if (this.#stopped) return;
    const m = this.#o.view.member(from);
    if (!m || m.lite) return;
    for (const f of this.#fences.values()) {
      if (f.quorumAt !== null || peer.term !== f.stamp.term || peer.version < f.stamp.version) continue;
      f.peers.add(from);
      if (f.peers.size >= f.need - 1) f.quorumAt = this.#o.clock.now();
    }
    if (!stampRenews(peer, this.#o.stamp())) {
      this.stats.acksStale++;
      return;
    }
    if (this.#lease.answered(from, n)) this.stats.acksCounted++;
  }
}

/** Most table stamps new primaries wait on at once (one per table that appointed them). */
const MAX_FENCES = 64;

/** Members that answered naming a table at least as new as `stamp`, and when they were enough. */
interface Fence {
  stamp: TableStamp;
  need: number;
  peers: Set<NodeId>;
  quorumAt: number | null;
  /** The wait is over (counted once in stats.fencesCleared). */
  cleared: boolean;
}

/**
 * Prometheus families of the gate (shapes as in src/http/prometheus.ts): whether this member
 * serves data, its lease, and what it refused.
 */
export function quorumMetricFamilies(q: Quorum): Array<{
  name: string;
  help: string;
  type: "counter" | "gauge";
  samples: { labels?: Record<string, string>; value: number }[];
}> {
  if (!q.active) return [];
  const st = q.state();
  return [
    {
      name: "shoal_quorum_serving",
      help: "1 while split-brain protection lets this member serve data operations, else 0.",
      type: "gauge",
      samples: [{ value: st.serving ? 1 : 0 }],
    },
    {
      name: "shoal_quorum_lease_left_ms",
      help: "Milliseconds this member's lease still holds (negative: ran out that long ago).",
      type: "gauge",
      samples: st.leaseLeftMs === null ? [] : [{ value: st.leaseLeftMs }],
    },
    {
      name: "shoal_quorum_refused_total",
      help: "Data operations this member refused with QUORUM (as caller or as primary).",
      type: "counter",
      samples: [{ value: q.stats.refused }],
    },
  ];
}

function describe(r: QuorumRefusal): string {
  return r.reason === "members"
    ? `This member sees ${r.have} data members, fewer than the minimum cluster size ${r.need}; retry later or on another member`
    : `This member's lease with a quorum of ${r.need} data members ran out ${
      Math.round(r.expiredForMs)
    } ms ago; it re-confirms before it serves again`;
}
