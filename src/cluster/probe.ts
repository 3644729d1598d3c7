/**
 * SWIM probing (the failure detector of memberlist's state.go): every probe interval a
 * member pings the next member of a shuffled round; without an ack within the probe timeout
 * `indirectChecks` members ping it for us (ping-req), and without any answer by the end of
 * the interval the target is suspected. Lifeguard: missed acks and missing nacks raise this
 * member's own health score, which stretches its timeouts (awareness.ts).
 */
import type { NodeId } from "../transport/transport.ts";
import { Kind } from "../wire/kinds.ts";
import type { Awareness } from "./awareness.ts";
import type { MembershipPart } from "./part.ts";
import { type Ack, type GossipItem, type Nack, type Ping, type PingReq, Status } from "./messages.ts";

/** A probe of this member in flight. */
export interface ProbeRequest {
  kind: "probe";
  target: NodeId;
  acked: boolean;
  nacks: number;
  unreachable: number;
  expectedNacks: number;
}

/** A ping this member sends on another member's behalf (ping-req). */
export interface RelayRequest {
  kind: "relay";
  origin: NodeId;
  originSeq: number;
  target: NodeId;
  done: boolean;
}

/** What probing needs from the membership of its node. */
export interface ProbeHost extends MembershipPart {
  readonly health: Awareness;
  readonly stats: { probes: number; probeFailures: number; probesVoided: number; silentLinkResets: number };
  /** Requests in flight by sequence number (shared with route queries, hence `kind`). */
  readonly pending: Map<number, ProbeRequest | RelayRequest | { kind: "route" }>;
  nextSeq(): number;
  reachable(id: NodeId): boolean;
  rejoining(): boolean;
  /** Whether this member's own event loop stalled lately (its backlog may hold the answers). */
  stalledRecently(): boolean;
  graceMs(): number;
  randomMembers(k: number, ok: (id: NodeId) => boolean): NodeId[];
  piggyback(): GossipItem[];
  /** Gossip piggybacked on a ping, ack or ping-req, from a member following master `ms`. */
  applyItems(items: readonly GossipItem[], from: NodeId, ms: string): void;
  antiEntropy(from: NodeId, lv: number, ms: string): void;
  checkPeerMaster(from: NodeId, ms: string): void;
  /** @returns whether the suspicion is new (or newly confirmed) */
  suspect(id: NodeId, inc: number, by: NodeId): boolean;
  broadcast(item: GossipItem): void;
}

export class Prober {
  #order: NodeId[] = [];
  #idx = 0;

  constructor(readonly host: ProbeHost) {}

  /** Probes the next member of the round. */
  tick(): void {
    const target = this.#nextTarget();
    if (target) this.probe(target);
  }

  /**
   * The next member to probe, round robin in random order. Members this node has neither
   * a link nor a route to are skipped while their links are still forming, but probed
   * after `linkFallbackMs` (through others, by ping-req), so a member that nobody can
   * reach is still found dead.
   */
  #nextTarget(): NodeId | undefined {
    const h = this.host;
    const now = h.clock.now();
    for (let tries = 0; tries <= this.#order.length + 1; tries++) {
      if (this.#idx >= this.#order.length) {
        this.#order = h.rng.shuffle(h.members().filter((m) => m.id !== h.self).map((m) => m.id));
        this.#idx = 0;
        if (this.#order.length === 0) return undefined;
      }
      const id = this.#order[this.#idx++];
      const st = h.list.states.get(id);
      if (
        st && st.status <= Status.suspect &&
        (h.reachable(id) || now - st.link.since > h.config.linkFallbackMs)
      ) return id;
    }
    return undefined;
  }

  /** Pings `target`; without an ack in time others ping it for us; without any, a suspicion. */
  probe(target: NodeId): void {
    const h = this.host;
    if (h.pending.size >= h.config.maxPending) return;
    const startedAt = h.clock.now();
    const seq = h.nextSeq();
    const p: ProbeRequest = {
      kind: "probe",
      target,
      acked: false,
      nacks: 0,
      unreachable: 0,
      expectedNacks: 0,
    };
    h.pending.set(seq, p);
    h.stats.probes++;
    const direct = h.send(
      target,
      {
        t: Kind.ClusterPing,
        seq,
        target,
        lv: h.list.version,
        ms: h.master() ?? "",
        g: h.piggyback(),
      } satisfies Ping,
    );
    const tst = h.list.states.get(target);
    if (direct && tst && tst.unansweredSince === undefined) tst.unansweredSince = startedAt;
    h.after(h.health.scaleTimeout(h.config.probeTimeoutMs), () => {
      if (p.acked) return;
      // No ack over an open link, and nothing else from the target for a probe interval:
      // the path may be dead in the network (a NAT that rebound its ports) while the member
      // is alive, which indirect probes would hide. The transport negotiates a replacement
      // connection and keeps the old one until it opens.
      const ts = h.list.states.get(target);
      const silentMs = ts ? h.clock.now() - ts.heardAt : 0;
      // Counted from when the link came up too: a link made again (after a reset at either end)
      // gets the same time to prove itself, so one lost ack over it does not reset it at once.
      const quietMs = ts ? h.clock.now() - Math.max(ts.heardAt, ts.link.upAt ?? -Infinity) : 0;
      if (direct && h.t.isLinked(target) && ts?.status === Status.alive && quietMs >= h.config.linkSilentResetMs) {
        // Silent far longer than a busy member would be while the others vouch for it: the link
        // itself is wedged. Closed at once (no goodbye could cross it); links.ts makes it again
        // from this end right away, and the peer's end does the same or takes the new offer.
        h.stats.silentLinkResets++;
        h.log.info("cluster.link.silent_reset", { peer: target, silentMs: Math.round(silentMs) });
        if (h.t.reset) h.t.reset(target);
        else h.t.disconnect(target);
      } else if (direct && h.t.isLinked(target) && silentMs >= h.config.probeIntervalMs) h.t.relink?.(target);
      const helpers = h.randomMembers(h.config.indirectChecks, (id) => id !== target && h.t.isLinked(id));
      p.expectedNacks = helpers.length;
      for (const x of helpers) {
        h.send(
          x,
          { t: Kind.ClusterPingReq, seq, target, ms: h.master() ?? "", g: h.piggyback() } satisfies PingReq,
        );
      }
    });
    const verdict = (deferrals: number) => {
      if (!p.acked && deferrals < 2 && h.stalledRecently()) {
        // This member's own loop was just stalled: the ack, or the helpers' answers, may be
        // sitting unread behind the overdue timers. Read them first.
        h.after(h.graceMs(), () => verdict(deferrals + 1));
        return;
      }
      h.pending.delete(seq);
      if (p.acked) {
        h.health.applyDelta(-1);
        return;
      }
      const st = h.list.states.get(target);
      if (!st || st.status > Status.suspect || h.rejoining()) return;
      // The target talked to this member meanwhile: it is alive, whatever became of the ping.
      if (st.heardAt >= startedAt) {
        h.stats.probesVoided++;
        return;
      }
      // Nobody had a path to it (no link here, and every helper said so): that says
      // nothing about a member whose links are still being formed.
      const inconclusive = !direct && p.unreachable === p.expectedNacks;
      if (inconclusive && !st.link.established && h.clock.now() - st.link.since <= h.config.linkFallbackMs) {
        return;
      }
      const delta = p.expectedNacks > 0 ? Math.max(0, p.expectedNacks - p.nacks) : 1;
      h.health.applyDelta(delta);
      h.stats.probeFailures++;
      h.log.info("cluster.probe.failed", {
        member: target,
        direct,
        indirect: p.expectedNacks,
        nacks: p.nacks,
        awareness: h.health.score,
        silentMs: Math.round(h.clock.now() - st.heardAt),
        unansweredMs: st.unansweredSince === undefined ? 0 : Math.round(h.clock.now() - st.unansweredSince),
        linkAgeMs: Math.round(h.clock.now() - st.link.since),
      });
      st.accused = true;
      if (h.suspect(target, st.inc, h.self)) {
        h.broadcast({ s: Status.suspect, id: target, inc: st.inc, by: h.self });
      }
    };
    h.after(h.health.scaleTimeout(h.config.probeIntervalMs), () => verdict(0));
  }

  onPing(from: NodeId, m: Ping): void {
    const h = this.host;
    h.applyItems(m.g, from, m.ms);
    if (m.target !== h.self) return;
    h.send(
      from,
      {
        t: Kind.ClusterAck,
        seq: m.seq,
        lv: h.list.version,
        ms: h.master() ?? "",
        g: h.piggyback(),
      } satisfies Ack,
    );
    h.antiEntropy(from, m.lv, m.ms);
    if (m.ms !== h.master()) h.checkPeerMaster(from, m.ms);
  }

  onAck(from: NodeId, m: Ack): void {
    const h = this.host;
    h.applyItems(m.g, from, m.ms);
    const p = h.pending.get(m.seq);
    if (p?.kind === "probe") p.acked = true;
    else if (p?.kind === "relay" && !p.done) {
      p.done = true;
      h.send(
        p.origin,
        { t: Kind.ClusterAck, seq: p.originSeq, lv: h.list.version, ms: h.master() ?? "", g: [] } satisfies Ack,
      );
    }
    h.antiEntropy(from, m.lv, m.ms);
    if (m.ms !== h.master() && m.ms !== "") h.checkPeerMaster(from, m.ms);
  }

  onPingReq(from: NodeId, m: PingReq): void {
    const h = this.host;
    h.applyItems(m.g, from, m.ms);
    if (h.pending.size >= h.config.maxPending || !h.reachable(m.target)) {
      h.send(from, { t: Kind.ClusterNack, seq: m.seq, unreachable: true } satisfies Nack);
      return;
    }
    const seq = h.nextSeq();
    const rec: RelayRequest = { kind: "relay", origin: from, originSeq: m.seq, target: m.target, done: false };
    h.pending.set(seq, rec);
    h.send(
      m.target,
      {
        t: Kind.ClusterPing,
        seq,
        target: m.target,
        lv: h.list.version,
        ms: h.master() ?? "",
        g: [],
      } satisfies Ping,
    );
    h.after(h.config.probeTimeoutMs, () => {
      h.pending.delete(seq);
      if (!rec.done) h.send(from, { t: Kind.ClusterNack, seq: m.seq } satisfies Nack);
    });
  }

  /** A helper could not reach the target for us (or did not in time). */
  onNack(m: Nack): void {
    const p = this.host.pending.get(m.seq);
    if (p?.kind === "probe") {
      p.nacks++;
      if (m.unreachable) p.unreachable++;
    }
  }
}
