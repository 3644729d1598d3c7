/**
 * The master's role (one step function per role, as etcd raft has): the oldest live member
 * collects the views other members hold when it takes over, then changes the member list
 * (admissions, removals) and publishes each version, batched by `publishDelayMs`. Every
 * other member only installs what it publishes (membership.ts).
 */
import type { Timer } from "../core/clock.ts";
import type { NodeId } from "../transport/transport.ts";
import { Kind } from "../wire/kinds.ts";
import { MAX_MEMBERS } from "./config.ts";
import { listFarAhead, type MembershipPart } from "./part.ts";
import {
  type GossipItem,
  type JoinAccepted,
  type JoinBody,
  type ListBody,
  Status,
  type ViewReply,
  type ViewRequest,
} from "./messages.ts";
import type { ClusterEvent, MemberInfo } from "./view.ts";

/** What the master role needs from the membership of its node. */
export interface MasterHost extends MembershipPart {
  readonly stats: { joinsAdmitted: number };
  isMaster(): boolean;
  reachable(id: NodeId): boolean;
  epoch(): number;
  raiseEpoch(epoch: number): void;
  nextSeq(): number;
  emit(e: ClusterEvent): void;
  /** Links to new members. */
  queueLinkTick(): void;
}

export class MasterRole {
  #collecting: { seq: number; best: ListBody | null; asked: Set<NodeId>; waiting: Set<NodeId>; timer: Timer } | null =
    null;
  #publishTimer: Timer | null = null;

  constructor(readonly host: MasterHost) {}

  /** Whether this new master still collects the views of the others (it publishes nothing meanwhile). */
  get collecting(): boolean {
    return this.#collecting !== null;
  }

  /** This member became master: collect the newest view any member holds, then publish. */
  take(): void {
    const h = this.host;
    h.log.info("cluster.master.elected", { epoch: h.epoch(), members: h.members().length });
    const others = h.members().filter((m) => m.id !== h.self && h.reachable(m.id)).map((m) => m.id);
    if (others.length === 0) {
      this.#finishCollect();
      return;
    }
    const seq = h.nextSeq();
    const timer = h.after(h.config.collectTimeoutMs, () => this.#finishCollect());
    this.#collecting = { seq, best: null, asked: new Set(others), waiting: new Set(others), timer };
    const msg: ViewRequest = { t: Kind.ClusterViewRequest, seq, epoch: h.epoch() };
    for (const id of others) h.send(id, msg);
  }

  /** Another member became master. */
  resign(): void {
    this.#collecting?.timer.cancel();
    this.#collecting = null;
    this.host.list.pendingReplies.clear();
  }

  stop(): void {
    this.#collecting?.timer.cancel();
    this.#publishTimer?.cancel();
  }

  onViewReply(from: NodeId, m: ViewReply): void {
    const c = this.#collecting;
    if (!c || c.seq !== m.seq || !c.asked.has(from)) return this.host.reject("view_unasked", from);
    const h = this.host;
    if (listFarAhead(m.list, { epoch: h.epoch(), version: h.list.version, nextJoin: h.list.nextJoin })) {
      h.reject("far_future", from);
    } else if (!c.best || m.list.version > c.best.version) c.best = m.list;
    c.waiting.delete(from);
    if (c.waiting.size === 0) this.#finishCollect();
  }

  /** A new master adopts the newest view any member holds, drops the dead, and publishes. */
  #finishCollect(): void {
    const h = this.host;
    const c = this.#collecting;
    this.#collecting = null;
    c?.timer.cancel();
    if (!h.isMaster()) return;
    const added = c?.best ? h.list.adoptNewer(c.best) : [];
    if (c?.best) h.raiseEpoch(c.best.epoch + 1);
    h.list.dropGone();
    for (const a of added) h.emit({ type: "memberAdded", member: a });
    h.list.fullNext = true;
    this.publish();
  }

  schedulePublish(): void {
    if (this.#publishTimer || !this.host.isMaster()) return;
    this.#publishTimer = this.host.after(this.host.config.publishDelayMs, () => {
      this.#publishTimer = null;
      this.publish();
    });
  }

  /** Publishes the next member-list version now: a delta, or the full list after a change of master. */
  publish(): void {
    const h = this.host;
    this.#publishTimer?.cancel();
    this.#publishTimer = null;
    if (!h.isMaster() || this.#collecting) return;
    const { msg, body } = h.list.publication(h.self, h.epoch());
    for (const m of h.members()) {
      if (m.id !== h.self && !h.list.pendingReplies.has(m.id)) h.send(m.id, msg);
    }
    for (const [joiner, contact] of h.list.pendingReplies) {
      const reply: JoinAccepted = { t: Kind.ClusterJoinAccepted, joiner, list: body };
      if (contact === h.self || h.reachable(joiner)) h.send(joiner, reply);
      else h.send(contact, reply);
    }
    h.list.pendingReplies.clear();
    h.emit({ type: "memberListChanged", version: h.list.version });
  }

  /**
   * A join request that passed the checks reached this master.
   * @param busy whether a merge is under way
   * @returns why the joiner is refused (or must retry), or null when it is admitted or answered again
   */
  onJoin(req: JoinBody, contact: NodeId, busy: boolean): { code: "RETRY" | "REFUSED"; reason: string } | null {
    const h = this.host;
    if (this.#collecting || busy) return { code: "RETRY", reason: "master is changing" };
    const st = h.list.states.get(req.id);
    if ((st?.info.fp !== undefined && st.info.fp !== req.fp) || (st?.info.pk !== undefined && st.info.pk !== req.pk)) {
      // Trust on first join: the id stays bound to the certificate it was first admitted with.
      h.reject("id_taken", contact);
      return { code: "REFUSED", reason: `member id ${req.id} is taken by a member with another DTLS certificate` };
    }
    if (st && st.status <= Status.suspect && req.inc <= st.inc) {
      // A retried request: answer again with the current list.
      h.list.pendingReplies.set(req.id, contact);
      this.schedulePublish();
      return null;
    }
    if (h.list.entries.length >= MAX_MEMBERS) return { code: "REFUSED", reason: "cluster is full" };
    if (h.list.pendingReplies.size >= h.config.maxPending) return { code: "RETRY", reason: "too many joins in flight" };
    const info = this.admit(
      {
        id: req.id,
        name: req.name,
        runtime: req.runtime,
        lite: req.lite,
        incarnation: req.inc,
        ...(req.urls ? { urls: req.urls } : {}),
        ...(req.fp ? { fp: req.fp } : {}),
        ...(req.pk ? { pk: req.pk } : {}),
      },
      contact,
    );
    h.log.info("cluster.member.admitted", { member: info.id, name: info.name, joinedAt: info.joinedAt });
    return null;
  }

  /** A member is gone (dead verdict or left): drop it from the list. */
  drop(id: NodeId, item: GossipItem): void {
    this.host.list.drop(id, item);
    this.schedulePublish();
  }

  /**
   * Admits a member (again, under a new admission number, if it was listed).
   * @param contact the member that passes the acceptance on, or null for none
   */
  admit(e: Omit<MemberInfo, "joinedAt">, contact: NodeId | null): MemberInfo {
    const h = this.host;
    const old = h.list.states.get(e.id);
    if (old) this.drop(e.id, { s: Status.dead, id: e.id, inc: old.inc });
    const info = h.list.admit(e, contact);
    h.stats.joinsAdmitted++;
    h.emit({ type: "memberAdded", member: info });
    this.schedulePublish();
    h.queueLinkTick();
    return info;
  }
}
