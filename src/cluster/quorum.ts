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
  readonly leaseMs: number;
  readonly renewMs: number;
  readonly stats = { pingsSent: 0, acksSent: 0, acksCounted: 0, acksStale: 0, refused: 0, reconfirms: 0 };
  #o: QuorumOptions;
  #lease: LeaseTracker;
  #timer: Timer | null = null;
  #lastPingAt = -Infinity;
  #stopped = false;
  #wasServing = true;
  #unsubscribe: () => void;

  constructor(opts: QuorumOptions) {
    const c = opts.config;
    if (!Number.isInteger(c.minClusterSize) || c.minClusterSize < 0) {
      throw new RangeError(`Cannot use minClusterSize ${c.minClusterSize}: must be an integer ≥ 0`);
    }
    this.#o = opts;
    this.minClusterSize = c.minClusterSize;
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
    if (this.enabled) this.#schedule(0);
  }

  /** Whether split-brain protection is on. */
  get enabled(): boolean {
    return this.minClusterSize > 1;
  }

  /**
   * Null when this member may serve a data operation now, else the retryable `QUORUM`
   * error to answer with. A refusal for an expired lease starts a re-confirmation at once.
   */
  check(): ShoalError | null {
    if (!this.enabled) return null;
    const r = this.refusal();
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

  /** Why this member may not serve now, or null. */
  refusal(): QuorumRefusal | null {
    if (!this.enabled) return null;
    const { peers, selfIsData } = this.#dataPeers();
    const expires = this.#lease.expiresAt(peers, selfIsData, this.minClusterSize);
    return quorumRefusal(peers.length + (selfIsData ? 1 : 0), this.minClusterSize, expires, this.#o.clock.now());
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
    if (!stampRenews(peer, this.#o.stamp())) {
      this.stats.acksStale++;
      return;
    }
    if (this.#lease.answered(from, n)) this.stats.acksCounted++;
  }
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
  if (!q.enabled) return [];
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
