/**
 * The SWIM state of each listed member (memberlist's aliveNode / suspectNode / deadNode):
 * how gossip, push-pull state and this member's own probes move a member between alive,
 * suspect (a Lifeguard suspicion that independent confirmations shorten), dead and left,
 * and how this member refutes accusations about itself with a higher incarnation.
 * Incarnations only rise (guards drop stale news first; `raiseIncarnation` asserts).
 */
import { assert } from "../core/errors.ts";
import type { NodeId } from "../transport/transport.ts";
import { Kind } from "../wire/kinds.ts";
import type { Awareness } from "./awareness.ts";
import { listFarAhead, MAX_INCARNATION, type MembershipPart } from "./part.ts";
import type { GossipQueue } from "./gossip_queue.ts";
import { isNewerList, markAlive, type MemberState, raiseIncarnation } from "./member_list.ts";
import {
  type Gossip,
  type GossipItem,
  type ListBody,
  type ListRequest,
  type MemberListM,
  type Ping,
  type PushPull,
  Status,
  type StatusCode,
} from "./messages.ts";
import { Suspicion, suspicionBounds } from "./suspicion.ts";
import type { ClusterEvent } from "./view.ts";

/** What the member-state transitions need from the membership of their node. */
export interface MemberStateHost extends MembershipPart {
  readonly health: Awareness;
  readonly gossip: GossipQueue;
  readonly stats: {
    suspicions: number;
    deadVerdicts: number;
    refutations: number;
    verdictsPostponed: number;
    crossConfirmations: number;
    listsIgnored: number;
  };
  /** The master epoch this member follows. */
  epoch(): number;
  /** This member's own incarnation, and raising it. */
  selfInc(): number;
  raiseSelfInc(inc: number): void;
  leaving(): boolean;
  stopped(): boolean;
  isMaster(): boolean;
  /** Whether this new master still collects views (it drops members only after). */
  collecting(): boolean;
  /** Master: drops a gone member from the list. */
  drop(id: NodeId, item: GossipItem): void;
  recomputeMaster(): void;
  /** The number of live members (at least 1). */
  n(): number;
  stalledRecently(): boolean;
  graceMs(): number;
  rateOk(key: string): boolean;
  /** Sends an update straight to every reachable member. */
  broadcast(item: GossipItem): void;
  emit(e: ClusterEvent): void;
  /** A member is live again here (links, split-brain candidates). */
  appeared(id: NodeId): void;
  reachable(id: NodeId): boolean;
  randomMembers(k: number, ok: (id: NodeId) => boolean): NodeId[];
  /** Updates to piggyback on the next message. */
  piggyback(): GossipItem[];
  rejoining(): boolean;
  installList(body: ListBody, delta: { removed: NodeId[] } | null): void;
  /** Follows our master into the cluster it merged into. */
  adoptMerged(body: ListBody, via: NodeId): void;
  /** A member is gone here. */
  addLost(id: NodeId): void;
  gone(id: NodeId): void;
  /** A member became suspect here: links being signalled through it will not complete. */
  suspected(id: NodeId): void;
}

/**
 * A notice (alive, suspect, dead or left) from any member but the master may name an
 * incarnation at most this much above the one known here: each refutation raises it
 * by one, so a larger jump is a forgery (a member that missed that many refutations learns
 * them from the master's list instead). Without the bound a member holding the secret could
 * accuse a member at an incarnation near 2^53: its refutation would then overflow what the
 * wire carries, and every list naming it would be dropped as invalid.
 */
export const MAX_RELAYED_INCARNATION_JUMP = 1024;

export class MemberStates {
  #listRequestAt = -Infinity;
  /** The member this node last asked for its list (its answer is accepted once). */
  #listAsked: NodeId | undefined;

  constructor(readonly host: MemberStateHost) {}

  /** A member follows a newer member-list version of our master: ask it for the list (rate-limited). */
  antiEntropy(from: NodeId, lv: number, ms: string): void {
    const h = this.host;
    if (!isNewerList(h.list.version, lv) || h.rejoining()) return;
    const master = h.master();
    // The master publishes every list naming it: a member claiming a newer one is stale or lying.
    if (master === h.self || (ms !== master && from !== master)) return;
    const now = h.clock.now();
    if (now - this.#listRequestAt < h.config.probeIntervalMs) return;
    this.#listRequestAt = now;
    // The list comes from the master itself when it can: `lv` is only a claim of `from`.
    const ask = master && master !== h.self && h.reachable(master) ? master : from;
    this.#listAsked = ask;
    h.send(ask, { t: Kind.ClusterListRequest, have: h.list.version } satisfies ListRequest);
  }

  /** The master published a list version (full or delta), with notices about gone members. */
  onMemberList(from: NodeId, m: MemberListM): void {
    const h = this.host;
    const body = m.list;
    // Lists come from our master, or answer this node's own request (see antiEntropy), or
    // are the first publication of a new master whose notices (the old master left or
    // died) make it ours: those notices count as any member's, never as a master's own.
    // A member that became master after asking takes no answer: no list in its name comes from another.
    const asked = from !== h.master() && from === this.#listAsked && h.master() !== h.self;
    if (asked) this.#listAsked = undefined;
    else if (from === h.master()) this.applyItems(m.g, from, null);
    else if (body.master === from && m.base === 0) this.applyItems(m.g, from, h.master() ?? "");
    if (from !== h.master() && !asked) return h.reject("list_not_from_master", from);
    if (!isNewerList(h.list.version, body.version)) return;
    if (asked && listFarAhead(body, { epoch: h.epoch(), version: h.list.version, nextJoin: h.list.nextJoin })) {
      return h.reject("far_future", from);
    }
    const master = h.master();
    if (body.master !== master) {
      // Our master vouches for the list of another master: it merged into that cluster.
      if (from === master && m.base === 0 && body.master !== h.self) return h.adoptMerged(body, from);
      h.stats.listsIgnored++;
      h.reject("list_foreign_master", from);
      return;
    }
    if (m.base !== 0 && m.base !== h.list.version) {
      this.#listRequestAt = -Infinity;
      this.antiEntropy(from, body.version, body.master);
      return;
    }
    h.installList(body, m.base !== 0 ? { removed: m.removed } : null);
  }

  /**
   * A listed member this node holds for dead is talking to us: it may not know. Tell it
   * directly (accusations about oneself are always heard), so it refutes with a higher
   * incarnation if it is alive; a wrong verdict is healed instead of splitting views.
   */
  tellIfDead(from: NodeId): void {
    const h = this.host;
    const st = h.list.states.get(from);
    if (!st || st.status !== Status.dead || !h.rateOk(`dead:${from}`)) return;
    h.send(
      from,
      {
        t: Kind.ClusterGossip,
        ms: h.master() ?? "",
        g: [{ s: Status.dead, id: from, inc: st.inc }],
      } satisfies Gossip,
    );
  }

  /**
   * Applies gossip. Accusations (suspect, dead) are heard only from live members that
   * follow the same master: after a split heals, members that have not yet followed their
   * master into the merged cluster still carry the split's verdicts ("dead", at the same
   * incarnation) about the members they are about to meet. Accusations about this node
   * itself are always heard (so it refutes), and so are alive and left notices.
   * @param senderMaster the master the sender follows; null when the message is the
   *   master's own publication (always heard: it may announce that very change)
   */
  applyItems(items: readonly GossipItem[], from: NodeId, senderMaster: string | null): void {
    const h = this.host;
    const st = h.list.states.get(from);
    if (!st) return;
    const master = h.master();
    // A live member that follows another master no longer counts ours as alive: that
    // confirms a suspicion of our master held here (say this member joined through the
    // master just before it died, and its only link was to the master).
    if (senderMaster && master && senderMaster !== master && master !== h.self && st.status <= Status.suspect) {
      const ms = h.list.states.get(master);
      if (ms) this.#confirmHeld(master, ms.inc, from);
    }
    if (items.length === 0) return;
    const heard = st.status <= Status.suspect && (senderMaster === null || senderMaster === master);
    for (const it of items) {
      if (this.#implausible(it, from)) continue;
      if (!heard && it.s !== Status.alive && it.s !== Status.left && it.id !== h.self) {
        // An accusation from a live member that follows another master still confirms a
        // suspicion this member holds already (it never starts one, nor is it a verdict). A
        // member that joined through the master just before the master died may suspect it
        // alone, with its local health low (its only link was to the master): the others
        // have declared the master dead and follow a new one, and without their confirmation
        // its own suspicion runs to its stretched maximum, keeping it apart for ~10 s.
        if ((it.s === Status.suspect || it.s === Status.dead) && st.status <= Status.suspect) {
          this.#confirmHeld(it.id, it.inc, from);
        }
        continue;
      }
      // Another member's dead verdict about a member that talked to this one lately: that
      // member is alive as far as this one can tell (the accuser may be the one cut off or
      // stalled), so it counts as a suspicion here, which the suspect can still refute. The
      // master's own publication is followed as it is.
      if (it.s === Status.dead && senderMaster !== null && it.id !== h.self && this.#heardLately(it.id)) {
        if (this.suspect(it.id, it.inc, from)) h.stats.verdictsPostponed++;
        continue;
      }
      // A member announces its own leave to every member directly, and the master's list
      // drops it; anyone else's leave notice about a member linked to this one (so its own
      // notice would come straight here) counts as a suspicion only: a live member refutes
      // it, one that left stays silent and is found dead.
      if (it.s === Status.left && senderMaster !== null && it.id !== from && it.id !== h.self && this.#inTouch(it.id)) {
        h.reject("leave_for_other", from);
        this.suspect(it.id, it.inc, from);
        continue;
      }
      this.applyItem(it, from);
    }
  }

  /**
   * Whether a notice relayed by `from` names an incarnation implausibly far above the one known
   * here (see {@link MAX_RELAYED_INCARNATION_JUMP}): refused and counted. That holds for the
   * member's own notices too: a leave announced near 2^53 could never be taken back by a
   * refutation, and an accusation of itself would come back to it through the master. Only the
   * master (whose list carries what it has heard) is believed.
   */
  #implausible(it: GossipItem, from: NodeId): boolean {
    const h = this.host;
    if (from === h.master()) return false;
    const known = it.id === h.self ? h.selfInc() : h.list.states.get(it.id)?.inc;
    if (known === undefined || it.inc - known <= MAX_RELAYED_INCARNATION_JUMP) return false;
    h.reject("incarnation_jump", from);
    return true;
  }

  /** Counts `by`'s accusation as a confirmation of a suspicion of `id` running here at `inc`. */
  #confirmHeld(id: NodeId, inc: number, by: NodeId): void {
    const st = this.host.list.states.get(id);
    if (st?.status === Status.suspect && st.inc === inc && st.suspicion?.confirm(by)) {
      this.host.stats.crossConfirmations++;
      this.host.log.debug("cluster.member.suspect_confirmed", { member: id, by });
    }
  }

  /** Whether a member is linked to this node: its own leave notice comes straight here. */
  #inTouch(id: NodeId): boolean {
    return this.host.t.isLinked(id);
  }

  /** Whether a live member sent this node anything within half of `suspectUnansweredMs`. */
  #heardLately(id: NodeId): boolean {
    const h = this.host;
    const st = h.list.states.get(id);
    return !!st && st.status <= Status.suspect && h.clock.now() - st.heardAt < h.config.suspectUnansweredMs / 2;
  }

  applyItem(it: GossipItem, from: NodeId): void {
    const h = this.host;
    if (it.id === h.self) return this.#aboutMe(it, from);
    const st = h.list.states.get(it.id);
    if (!st) return;
    switch (it.s) {
      case Status.alive: {
        if (it.inc <= st.inc) return;
        // A member that leaves never raises its incarnation after its leave notice, so a
        // higher one, from the member itself or the master, means the notice came to some
        // members only (a lie): the master, linked to the member, took it as a suspicion that
        // the member refuted. Kept "left", this member would never agree with the master's list.
        if (st.status === Status.left && from !== it.id && from !== h.master()) return;
        raiseIncarnation(st, it.inc, it.id);
        const revived = markAlive(st, h.clock.now());
        h.gossip.push(it);
        if (revived) {
          h.list.invalidate();
          h.appeared(it.id);
          h.emit({ type: "memberAdded", member: h.list.member(it.id)! });
          h.recomputeMaster();
        }
        return;
      }
      case Status.suspect:
        this.suspect(it.id, it.inc, it.by ?? from);
        return;
      default:
        this.markDown(it.id, it.inc, it.s, false);
    }
  }

  /** Someone says this node is suspect or dead: refute with a higher incarnation. */
  #aboutMe(it: GossipItem, from: NodeId): void {
    const h = this.host;
    if (it.s === Status.alive || h.leaving()) return;
    if (it.inc < h.selfInc()) {
      // Already refuted, but this accuser missed it: tell it directly.
      if (h.rateOk(`alive:${from}`)) {
        h.send(
          from,
          {
            t: Kind.ClusterGossip,
            ms: h.master() ?? "",
            g: [{ s: Status.alive, id: h.self, inc: h.selfInc() }],
          } satisfies Gossip,
        );
      }
      return;
    }
    if (it.inc >= MAX_INCARNATION) {
      // A forgery that passed the master (see #implausible): near 2^53 no refutation, nor the rejoin
      // after the verdict, could outbid it on the wire.
      h.reject("incarnation_jump", from);
      return;
    }
    h.raiseSelfInc(it.inc + 1);
    const st = h.list.states.get(h.self);
    if (st) st.inc = h.selfInc();
    h.health.applyDelta(1);
    h.stats.refutations++;
    const item: GossipItem = { s: Status.alive, id: h.self, inc: h.selfInc() };
    h.gossip.push(item);
    h.broadcast(item);
  }

  /**
   * @param confirms whether `by` counts as an independent confirmation of a running suspicion
   * @returns whether the state changed (new suspicion or new confirmation)
   */
  suspect(id: NodeId, inc: number, by: NodeId, confirms = true): boolean {
    const h = this.host;
    assert(id !== h.self, "a member never suspects itself");
    const st = h.list.states.get(id);
    if (!st || st.status >= Status.dead || inc < st.inc) return false;
    const item: GossipItem = { s: Status.suspect, id, inc, by };
    if (st.status === Status.suspect && inc === st.inc) {
      if (confirms && st.suspicion?.confirm(by)) {
        h.gossip.push(item);
        return true;
      }
      return false;
    }
    st.status = Status.suspect;
    raiseIncarnation(st, inc, id);
    h.suspected(id);
    st.suspicion?.cancel();
    const b = suspicionBounds(h.n(), h.config);
    // Lifeguard local health: a member that misses acks, gets no nacks from its helpers, has
    // to refute or finds itself stalled is the likelier culprit, so its own verdicts wait
    // longer (a member that cannot hear anyone must not outrun the others' verdict on it).
    const sus = new Suspicion(
      h.clock,
      by,
      b.k,
      h.health.scaleTimeout(b.minMs),
      h.health.scaleTimeout(b.maxMs),
      () => this.#suspicionExpired(id, st, inc),
    );
    st.suspicion = sus;
    // Tell the suspect now and then while the suspicion runs: it may have missed the first
    // notice (lost, or it was still joining and heard nothing) and can only refute what it hears.
    const remind = () => {
      if (st.suspicion !== sus || st.status !== Status.suspect || h.list.states.get(id) !== st) return;
      this.#pingSuspect(id, st);
      h.after(h.config.suspectUnansweredMs / 4, remind);
    };
    remind();
    h.stats.suspicions++;
    h.log.debug("cluster.member.suspect", { member: id, incarnation: inc, by });
    h.gossip.push(item);
    return true;
  }

  /**
   * A suspicion ran out. The verdict waits while this member has just been stalled itself
   * (the suspect's refutation may be unread), and until the suspect has left this member's
   * pings unanswered for `suspectUnansweredMs` (it is pinged again, carrying the suspicion
   * so that it refutes). Neither wait outlasts the longest suspicion (twice that for
   * stalls), so a member that talks but never refutes, because it hears nobody, is still
   * declared dead.
   */
  #suspicionExpired(id: NodeId, st: MemberState, inc: number): void {
    const h = this.host;
    const sus = st.suspicion;
    if (h.stopped() || !sus || h.list.states.get(id) !== st || st.status !== Status.suspect || st.inc !== inc) {
      return;
    }
    const now = h.clock.now();
    const elapsed = now - sus.startedAt;
    if (h.stalledRecently() && elapsed < 2 * sus.maxMs) {
      h.stats.verdictsPostponed++;
      sus.postpone(h.graceMs());
      return;
    }
    const unansweredMs = st.unansweredSince === undefined ? 0 : now - st.unansweredSince;
    if (unansweredMs < h.config.suspectUnansweredMs && elapsed < sus.maxMs) {
      h.stats.verdictsPostponed++;
      this.#pingSuspect(id, st);
      sus.postpone(Math.max(1, Math.min(h.config.suspectUnansweredMs - unansweredMs, sus.maxMs - elapsed)));
      return;
    }
    this.markDown(id, inc, Status.dead, st.accused);
  }

  /**
   * Pings a suspect directly, the suspicion piggybacked so that it refutes at once if it
   * is alive (memberlist's "buddy system"); the ping also starts this member's own count
   * of how long the suspect leaves it unanswered. The ack matches no probe.
   */
  #pingSuspect(id: NodeId, st: MemberState): void {
    const h = this.host;
    const item: GossipItem = { s: Status.suspect, id, inc: st.inc, by: h.self };
    const sent = h.send(
      id,
      {
        t: Kind.ClusterPing,
        seq: 0,
        target: id,
        lv: h.list.version,
        ms: h.master() ?? "",
        g: [item],
      } satisfies Ping,
    );
    if (sent && st.unansweredSince === undefined) st.unansweredSince = h.clock.now();
  }

  /** A dead verdict or a leave: the member is gone here at once. */
  markDown(id: NodeId, inc: number, status: StatusCode, originate: boolean): void {
    const h = this.host;
    assert(id !== h.self, "a member never declares itself down");
    const st = h.list.states.get(id);
    if (!st || inc < st.inc || st.status === Status.left) return;
    if (status === Status.dead && st.status === Status.dead) return;
    const wasLive = st.status <= Status.suspect;
    st.suspicion?.cancel();
    st.suspicion = undefined;
    st.status = status;
    raiseIncarnation(st, inc, id);
    const item: GossipItem = { s: status, id, inc };
    h.gossip.push(item);
    if (originate) h.broadcast(item);
    if (status === Status.dead) {
      h.stats.deadVerdicts++;
      h.addLost(id);
      h.log.info("cluster.member.dead", { member: id, incarnation: inc });
    } else h.log.info("cluster.member.left", { member: id });
    // Only a verdict tears a link down.
    h.gone(id);
    if (wasLive) {
      h.list.invalidate();
      h.emit({ type: "memberRemoved", member: st.info, reason: status === Status.left ? "left" : "dead" });
    }
    h.recomputeMaster();
    if (h.isMaster() && !h.collecting()) h.drop(id, item);
  }

  /** Sends queued updates to a few random members. */
  gossipTick(): void {
    const h = this.host;
    if (h.gossip.size === 0) return;
    for (const id of h.randomMembers(h.config.gossipNodes, (x) => h.reachable(x))) {
      const g = h.piggyback();
      if (g.length === 0) break;
      h.send(id, { t: Kind.ClusterGossip, ms: h.master() ?? "", g } satisfies Gossip);
    }
  }

  /** Exchanges every member record with one random member (anti-entropy). */
  pushPullTick(): void {
    const h = this.host;
    const [peer] = h.randomMembers(1, (x) => h.reachable(x));
    if (!peer) return;
    h.send(
      peer,
      {
        t: Kind.ClusterPushPull,
        reply: false,
        lv: h.list.version,
        ms: h.master() ?? "",
        states: h.list.stateItems(),
      } satisfies PushPull,
    );
  }

  onPushPull(from: NodeId, m: PushPull): void {
    const h = this.host;
    const peer = h.list.states.get(from);
    // Only from live members that follow our master (see applyItems).
    if (!peer || peer.status > Status.suspect || m.ms !== h.master()) return;
    for (const it of m.states) {
      if (this.#implausible(it, from)) continue;
      // A remote "dead" counts only as a suspicion here (as in memberlist). A state copy
      // says nothing about who accused, so it never counts as a further confirmation.
      if ((it.s === Status.dead || it.s === Status.suspect) && it.id !== h.self) {
        this.suspect(it.id, it.inc, from, false);
      } else if (it.s === Status.left && it.id !== from && it.id !== h.self && this.#inTouch(it.id)) {
        // As in applyItems: only a member itself (or the master's list) announces its leave.
        h.reject("leave_for_other", from);
        this.suspect(it.id, it.inc, from, false);
      } else this.applyItem(it, from);
    }
    if (!m.reply) {
      h.send(
        from,
        {
          t: Kind.ClusterPushPull,
          reply: true,
          lv: h.list.version,
          ms: h.master() ?? "",
          states: h.list.stateItems(),
        } satisfies PushPull,
      );
    }
    this.antiEntropy(from, m.lv, m.ms);
  }
}

/** memberlist's push-pull scaling: beyond 32 members the interval grows with log2(n). */
export function pushPullScale(n: number): number {
  if (n <= 32) return 1;
  return Math.ceil(Math.log2(n) - Math.log2(32)) + 1;
}
