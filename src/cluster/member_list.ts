/**
 * The member list (hashicorp/memberlist's state.go is the model): who is in the cluster, in
 * admission order, with a version that only rises, and this node's SWIM record of each
 * listed member. The master changes the list and publishes each version in full or as a
 * delta against the previous one; the other members install what it publishes.
 *
 * This part owns no timers, sends nothing and reads no clock of its own: the effects of
 * an entry appearing or going away (links, split-brain candidates) are the hooks' business.
 */
import { assert } from "../core/errors.ts";
import type { NodeId } from "../transport/transport.ts";
import { Kind } from "../wire/kinds.ts";
import { type GossipItem, type ListBody, type MemberListM, Status, type StatusCode } from "./messages.ts";
import type { Suspicion } from "./suspicion.ts";
import type { MemberInfo } from "./view.ts";

/** Gone-member notices carried by one member-list publication (the schema allows 256). */
export const MAX_NOTICES = 200;

/** This node's link to a member. */
export interface LinkState {
  attempts: number;
  nextAt: number;
  /** Since when this node has had no path to the member (or since it appeared). */
  since: number;
  /** Whether a direct link existed since the member (re)appeared here. */
  established: boolean;
  /** Link attempts in a row given up as stalled (see `linkStallMs`). */
  stalls: number;
  /** The member that relayed the signaling of the last attempt given up as stalled (null: a server). */
  stalledVia?: NodeId | null;
  /** When a direct link to the member last came up here (a link that was reset included). */
  upAt?: number;
}

/** This node's SWIM record of a listed member. */
export interface MemberState {
  info: MemberInfo;
  status: StatusCode;
  inc: number;
  suspicion?: Suspicion;
  /** This node accused the member itself (a failed probe), so it announces the verdict. */
  accused: boolean;
  link: LinkState;
  /** When this node last received any membership message from the member (proof of life). */
  heardAt: number;
  /** Send time of this node's first ping to the member not followed by any message from it. */
  unansweredSince: number | undefined;
}

/** A member that went away while live here, and why. */
export interface RemovedMember {
  member: MemberInfo;
  reason: "dead" | "left";
}

/** Whether a list of version `incoming` may replace the installed one of version `current`. */
export function isNewerList(current: number, incoming: number): boolean {
  return incoming > current;
}

/**
 * Records a higher (or equal) incarnation. Callers drop stale news first; a drop reaching
 * this point is a bug and fails loudly.
 * @throws Error "Assertion failed" when `inc` is lower than the recorded one
 */
export function raiseIncarnation(st: { inc: number }, inc: number, who: NodeId): void {
  assert(inc >= st.inc, `incarnation of ${who} must never drop (${st.inc} -> ${inc})`);
  st.inc = inc;
}

/**
 * Ends any suspicion or death verdict on a member: alive, its suspicion timer cancelled. One
 * that was not live (dead or left) gets a fresh link from `now` on (the old one was torn down).
 * @returns whether it was not live before (a suspect counts as live)
 */
export function markAlive(st: MemberState, now: number): boolean {
  const wasLive = st.status <= Status.suspect;
  st.suspicion?.cancel();
  st.suspicion = undefined;
  st.status = Status.alive;
  st.accused = false;
  if (!wasLive) {
    st.link.since = now;
    st.link.established = false;
  }
  return !wasLive;
}

/** What the list needs from its node. */
export interface MemberListHooks {
  now(): number;
  /** This node's own incarnation. */
  selfInc(): number;
  /** An entry about this node carries a higher incarnation than its own. */
  raiseSelfInc(inc: number): void;
  /** A member got an entry here (first time, or again after removal). */
  appeared(id: NodeId): void;
  /** A member's entry was removed; `st` is its last record. */
  removed(id: NodeId, st: MemberState): void;
}

export class MemberList {
  /** Admission order once sorted (see {@link sort}). */
  entries: MemberInfo[] = [];
  /** This node's SWIM record of each listed member. */
  readonly states = new Map<NodeId, MemberState>();
  /** The admission number the master hands the next joiner. */
  nextJoin = 1;

  // What the master's next publication carries.
  /** Publish the full list next (after a change of master, a merge, a collect). */
  fullNext = true;
  /** The version the pending delta applies to. */
  deltaBase = 0;
  readonly deltaAdded = new Map<NodeId, MemberInfo>();
  readonly deltaRemoved = new Set<NodeId>();
  /** Gone-member notices for the next publication (at most {@link MAX_NOTICES}). */
  notices: GossipItem[] = [];
  /** Joiners waiting for the next publication, with the member that passes the answer on. */
  readonly pendingReplies = new Map<NodeId, NodeId>();

  #sorted = true;
  #version = 0;
  #live: MemberInfo[] | null = null;

  constructor(readonly self: NodeId, readonly hooks: MemberListHooks) {}

  get version(): number {
    return this.#version;
  }

  /**
   * Sets the installed version. It only rises: callers drop older lists first (see
   * {@link isNewerList}).
   * @throws Error "Assertion failed" when `v` is lower than the installed version
   */
  setVersion(v: number): void {
    assert(v >= this.#version, `member-list version must only rise (${this.#version} -> ${v})`);
    this.#version = v;
  }

  /** Live members (alive or suspect) in admission order. The array is shared: do not modify it. */
  live(): MemberInfo[] {
    if (!this.#live) {
      this.sort();
      const out: MemberInfo[] = [];
      for (const info of this.entries) {
        const st = this.states.get(info.id);
        if (st && st.status <= Status.suspect) {
          out.push(st.inc === info.incarnation ? info : { ...info, incarnation: st.inc });
        }
      }
      this.#live = out;
    }
    return this.#live;
  }

  /** A live member's info, with the incarnation this node knows. */
  member(id: NodeId): MemberInfo | undefined {
    const st = this.states.get(id);
    if (!st || st.status > Status.suspect) return undefined;
    return st.inc === st.info.incarnation ? st.info : { ...st.info, incarnation: st.inc };
  }

  /** The first live member in admission order: the master, as every member computes it. */
  firstLive(): NodeId | undefined {
    this.sort();
    for (const info of this.entries) {
      const st = this.states.get(info.id);
      if (st && st.status <= Status.suspect) return info.id;
    }
    return undefined;
  }

  /** Drops the cached live view after a change of status. */
  invalidate(): void {
    this.#live = null;
  }

  sort(): void {
    if (!this.#sorted) {
      this.entries.sort((a, b) => a.joinedAt - b.joinedAt);
      this.#sorted = true;
    }
  }

  /** The whole list as published under `master` at `epoch`. */
  body(master: NodeId, epoch: number): ListBody {
    this.sort();
    return { version: this.#version, master, epoch, nextJoin: this.nextJoin, members: this.entries.slice() };
  }

  /** Every record as gossip (push-pull). */
  stateItems(): GossipItem[] {
    const out: GossipItem[] = [];
    for (const [id, st] of this.states) out.push({ s: st.status, id, inc: st.inc });
    return out;
  }

  /** Adds or updates one list entry; returns the info if the member became live here. */
  upsert(e: MemberInfo): MemberInfo | null {
    let st = this.states.get(e.id);
    if (e.id === this.self && e.incarnation > this.hooks.selfInc()) this.hooks.raiseSelfInc(e.incarnation);
    const info: MemberInfo = {
      id: e.id,
      name: e.name,
      runtime: e.runtime,
      joinedAt: e.joinedAt,
      lite: e.lite,
      incarnation: e.incarnation,
      ...(e.urls ? { urls: [...e.urls] } : {}),
      ...(e.fp ? { fp: e.fp } : {}),
      ...(e.pk ? { pk: e.pk } : {}),
    };
    if (!st) {
      const now = this.hooks.now();
      st = {
        info,
        status: Status.alive,
        inc: e.id === this.self ? this.hooks.selfInc() : e.incarnation,
        accused: false,
        link: { attempts: 0, nextAt: 0, since: now, established: false, stalls: 0 },
        heardAt: now,
        unansweredSince: undefined,
      };
      this.states.set(e.id, st);
      this.#push(info);
      this.hooks.appeared(e.id);
      return info;
    }
    const readmitted = st.info.joinedAt !== e.joinedAt;
    // An entry learned without its signaling URLs (an older list) takes them from a newer one.
    const urlsNew = e.urls !== undefined && (st.info.urls ?? []).join(" ") !== e.urls.join(" ");
    if (
      readmitted || st.info.incarnation !== e.incarnation || st.info.lite !== e.lite || st.info.name !== e.name ||
      urlsNew
    ) {
      const i = this.entries.indexOf(st.info);
      if (i >= 0) this.entries[i] = info;
      else this.#push(info);
      this.#sorted = false;
    } else if (e.id === this.self && !this.entries.includes(st.info)) {
      this.#push(st.info);
      return null;
    } else return this.#upsertStatus(st, e);
    st.info = info;
    return this.#upsertStatus(st, e, readmitted);
  }

  #upsertStatus(st: MemberState, e: MemberInfo, readmitted = false): MemberInfo | null {
    if (e.id === this.self) {
      st.inc = this.hooks.selfInc();
      st.status = Status.alive;
      return null;
    }
    if (e.incarnation > st.inc || (readmitted && st.status > Status.suspect)) {
      raiseIncarnation(st, Math.max(st.inc, e.incarnation), e.id);
      if (markAlive(st, this.hooks.now())) return st.info;
    }
    return null;
  }

  /**
   * The master of a list being installed published it, so it is not dead, whatever this member
   * concluded of it before: a member that declared it dead while cut off from it (a split)
   * kept that verdict through the master's own lists, which list it alive at the same
   * incarnation, and stayed with the old master until the end (a verdict it made alone, never
   * gossiped, is never refuted). A master that is gone after all is suspected again by the probes.
   * @returns the master's entry when it was revived
   */
  #reviveMaster(master: NodeId): MemberInfo | null {
    const st = this.states.get(master);
    if (master === this.self || !st || st.status !== Status.dead) return null;
    markAlive(st, this.hooks.now());
    return st.info;
  }

  #push(info: MemberInfo): void {
    const last = this.entries[this.entries.length - 1];
    if (last && last.joinedAt > info.joinedAt) this.#sorted = false;
    this.entries.push(info);
  }

  /**
   * Drops a member's record (its list entry goes at the next {@link compact}).
   * @returns the member and why, if it was live here
   */
  remove(id: NodeId, removedIds: Set<NodeId>): RemovedMember | null {
    const st = this.states.get(id);
    if (!st || id === this.self) return null;
    this.states.delete(id);
    removedIds.add(id);
    st.suspicion?.cancel();
    this.hooks.removed(id, st);
    if (st.status <= Status.suspect) return { member: st.info, reason: "dead" };
    return null;
  }

  /** Removes the entries of the members {@link remove} dropped. */
  compact(removedIds: Set<NodeId>): void {
    if (removedIds.size > 0) this.entries = this.entries.filter((m) => !removedIds.has(m.id));
  }

  /**
   * Installs a list published by the master: in full (`delta` null: entries missing from it
   * are removed) or as a delta against the installed version. The caller has checked that
   * it is newer.
   */
  install(
    body: ListBody,
    delta: { removed: NodeId[] } | null,
  ): { added: MemberInfo[]; removed: RemovedMember[]; selfListed: boolean } {
    const added: MemberInfo[] = [];
    const removed: RemovedMember[] = [];
    const removedIds = new Set<NodeId>();
    let selfListed: boolean;
    if (delta) {
      for (const id of delta.removed) {
        const r = this.remove(id, removedIds);
        if (r) removed.push(r);
      }
      this.compact(removedIds);
      for (const e of body.members) {
        const a = this.upsert(e);
        if (a) added.push(a);
      }
      selfListed = !delta.removed.includes(this.self) && this.states.has(this.self) &&
        this.entries.some((m) => m.id === this.self);
    } else {
      const ids = new Set<NodeId>();
      for (const e of body.members) ids.add(e.id);
      for (const id of [...this.states.keys()]) {
        if (!ids.has(id)) {
          const r = this.remove(id, removedIds);
          if (r) removed.push(r);
        }
      }
      this.compact(removedIds);
      if (!ids.has(this.self)) this.entries = this.entries.filter((m) => m.id !== this.self);
      for (const e of body.members) {
        const a = this.upsert(e);
        if (a) added.push(a);
      }
      selfListed = ids.has(this.self);
    }
    const revived = this.#reviveMaster(body.master);
    if (revived) added.push(revived);
    this.setVersion(body.version);
    this.nextJoin = Math.max(this.nextJoin, body.nextJoin);
    this.deltaBase = this.#version;
    this.invalidate();
    return { added, removed, selfListed };
  }

  /**
   * A new master adopts the newest view another member holds, if newer than its own: the
   * members it lacks are added.
   * @returns the members added
   */
  adoptNewer(best: ListBody): MemberInfo[] {
    const added: MemberInfo[] = [];
    if (!isNewerList(this.#version, best.version)) return added;
    for (const e of best.members) {
      if (this.states.has(e.id)) continue;
      const a = this.upsert(e);
      if (a) added.push(a);
    }
    this.setVersion(best.version);
    this.nextJoin = Math.max(this.nextJoin, best.nextJoin);
    return added;
  }

  /** Master: drops every dead or departed member, each with a notice (oldest first). */
  dropGone(): void {
    const removedIds = new Set<NodeId>();
    const gone = [...this.states.values()].filter((st) => st.status >= Status.dead).sort((a, b) =>
      a.info.joinedAt - b.info.joinedAt
    );
    for (const st of gone) {
      // Oldest first: receivers need the notices about older members to accept this master.
      this.#notice({ s: st.status, id: st.info.id, inc: st.inc });
      this.remove(st.info.id, removedIds);
    }
    this.compact(removedIds);
    this.invalidate();
  }

  /** Master: a member is gone (dead verdict or left); the next delta removes it. */
  drop(id: NodeId, item: GossipItem): void {
    const removedIds = new Set<NodeId>();
    this.remove(id, removedIds);
    this.compact(removedIds);
    this.deltaAdded.delete(id);
    this.deltaRemoved.add(id);
    this.pendingReplies.delete(id);
    this.#notice(item);
    this.invalidate();
  }

  /**
   * Master: admits a member under the next admission number; the next delta adds it.
   * @param contact the member that relays the acceptance, or null for none
   */
  admit(e: Omit<MemberInfo, "joinedAt">, contact: NodeId | null): MemberInfo {
    const info: MemberInfo = { ...e, joinedAt: this.nextJoin++ };
    this.upsert(info);
    this.states.get(e.id)!.link.since = this.hooks.now();
    this.deltaRemoved.delete(e.id);
    this.deltaAdded.set(e.id, info);
    if (contact) this.pendingReplies.set(e.id, contact);
    this.invalidate();
    return info;
  }

  /**
   * Master: the next version's publication, a delta or the full list (after a change of
   * master, or when the pending delta does not apply to the installed version).
   * @returns the message for the members and the full list for the joiners
   */
  publication(master: NodeId, epoch: number): { msg: MemberListM; body: ListBody } {
    const base = this.deltaBase;
    const full = this.fullNext || base !== this.#version;
    this.setVersion(this.#version + 1);
    this.deltaBase = this.#version;
    const body = this.body(master, epoch);
    const msg: MemberListM = full ? { t: Kind.ClusterMemberList, base: 0, list: body, removed: [], g: this.notices } : {
      t: Kind.ClusterMemberList,
      base,
      list: { ...body, members: [...this.deltaAdded.values()] },
      removed: [...this.deltaRemoved],
      g: this.notices,
    };
    this.fullNext = false;
    this.deltaAdded.clear();
    this.deltaRemoved.clear();
    this.notices = [];
    return { msg, body };
  }

  #notice(item: GossipItem): void {
    if (this.notices.length < MAX_NOTICES) this.notices.push(item);
  }
}
