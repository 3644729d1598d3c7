/**
 * Split-brain detection and merge. A master keeps a bounded set of members it lost and
 * peers it heard of, and keeps trying to reach them; a member that answers under another
 * master reveals a second cluster with the same name.
 *
 * Resolution rules: with split-brain protection on (a minimum cluster size), a group whose
 * master holds a quorum now (it sees enough data members and its lease holds, see lease.ts)
 * wins over one whose master does not, whatever their sizes: the side that could serve
 * during the split holds the newer data, and the other side served nothing. Otherwise (both
 * or neither hold a quorum, or protection is off) the smaller group merges into the larger;
 * on a tie the group whose master id sorts first wins. Both masters evaluate the
 * same pure function, so they agree whenever they see the same lists; the winner re-checks
 * on the merge request and refuses if it disagrees, so two groups never merge into each
 * other at once.
 *
 * A group whose list still holds the other group's master, while the other's list no longer
 * holds it, has a stale view of the members both list: they were taken for gone and moved
 * on to the other group (a paused master that wakes up still lists everyone, although the
 * others declared it dead and elected a new master). Those shared members count for the
 * other group only. Without this, a woken master would count the members that left it and
 * win, and the cluster that kept serving would be merged into the stale one.
 *
 * Sizes alone can still pick the wrong side under protection: a master cut off with a
 * minority may not yet have removed every member of the other side (a member of the
 * majority that it still lists, while the majority has long removed this master), count
 * 3 against 3 and win the tie on its id. The majority, which held a quorum and served
 * writes (granted locks) during the split, would then merge into the minority, and the
 * minority's primaries would serve their pre-split copies again. The quorum rule above
 * decides that case: the minority master's lease cannot hold (the members it still lists
 * do not answer its pings), the majority master's does.
 *
 * The loser does not take the winner's hello on its word (any member holding the secret can
 * send one): before asking to merge it checks the claim with the members the hello names
 * (merge_check.ts) and merges only if those that confirm still make the other group win.
 */
import type { NodeId } from "../transport/transport.ts";
import { otherKey, type ReplayGuard, type RotatingKey, sign, verifyEither } from "../wire/envelope.ts";
import { Kind } from "../wire/kinds.ts";
import { clip } from "../wire/message.ts";
import { MAX_MEMBERS } from "./config.ts";
import { MAX_EPOCH_LEAD, MAX_INCARNATION, MAX_LIST_VERSION_LEAD, type MembershipPart } from "./part.ts";
import { isNewerList } from "./member_list.ts";
import {
  type ListBody,
  MAX_REFUSAL_REASON,
  type MergeAccepted,
  type MergeCheck,
  type MergeCheckReply,
  type MergeInto,
  type MergeRefused,
  type MergeRequest,
  type SplitHello,
  Status,
} from "./messages.ts";
import type { ClusterEvent, MemberInfo } from "./view.ts";
import { ClaimCheck } from "./merge_check.ts";
import { type GroupSummary, mergeWinner } from "./merge_rule.ts";
import { setNewest } from "../core/bounded.ts";

/** Why a merge request whose proof fails is refused (the requester then tries the other key of a rotation). */
const BAD_MERGE_PROOF = "merge proof does not verify";

/** What split-brain handling needs from the membership of its node. */
export interface SplitBrainHost extends MembershipPart {
  readonly stats: { merges: number };
  /** Keys that sign and check join and merge requests (two during a secret rotation), and the guard against their replay. */
  readonly joinKeys: RotatingKey;
  readonly replay: ReplayGuard;
  /** Members a link is being opened to (shared with the links). */
  connecting(): Set<NodeId>;
  isMaster(): boolean;
  /** With split-brain protection on: whether this member holds a quorum now; undefined when off. */
  holdsQuorum(): boolean | undefined;
  /** Whether this master is still collecting views after taking over. */
  collecting(): boolean;
  epoch(): number;
  raiseEpoch(epoch: number): void;
  /** At most one action per key per half split-brain interval. */
  rateOk(key: string): boolean;
  admit(e: Omit<MemberInfo, "joinedAt">, contact: NodeId | null): MemberInfo;
  /** Publishes the next list version now. */
  publish(): void;
  installList(body: ListBody, delta: null): void;
  /** Drops the gossip queued for the old cluster and makes `via` the contact. */
  resetFor(via: NodeId): void;
  emit(e: ClusterEvent): void;
}

export class SplitBrain {
  /** Members lost to failure, and peers heard of, that the master keeps trying to reach (bounded, oldest first). */
  readonly #lost = new Map<NodeId, { at: number; attempts: number }>();
  #merging: { target: NodeId } | null = null;
  /** The key merge requests are signed with now: the other one of a rotation after a refused proof. */
  #signKey: Uint8Array | undefined;
  /** Checks another group's claim with its members before merging into it (see merge_check.ts). */
  readonly #check: ClaimCheck;

  constructor(readonly host: SplitBrainHost) {
    this.#check = new ClaimCheck(host);
  }

  /** Whether this (smaller) group's master is asking another master to take it in. */
  get merging(): boolean {
    return this.#merging !== null;
  }

  lostMembers(): NodeId[] {
    return [...this.#lost.keys()];
  }

  /** Adds peers learned elsewhere (e.g. the signaling room listing) that are not members. */
  addCandidates(ids: NodeId[]): void {
    const h = this.host;
    for (const id of ids) if (id !== h.self && !h.list.states.has(id) && !this.#lost.has(id)) this.addLost(id);
  }

  addLost(id: NodeId): void {
    setNewest(this.#lost, id, { at: this.host.clock.now(), attempts: 0 }, this.host.config.maxLostMembers);
  }

  /** A member is back in the list: no longer lost. */
  found(id: NodeId): void {
    this.#lost.delete(id);
  }

  /** Expires old lost members; the master tries to reach the two least-tried ones. */
  tick(): void {
    const h = this.host;
    const now = h.clock.now();
    for (const [id, e] of this.#lost) {
      if (now - e.at > h.config.lostMemberTtlMs) this.#lost.delete(id);
      else break;
    }
    if (!h.isMaster() || h.collecting() || this.#busy() || this.#lost.size === 0) return;
    const picks = [...this.#lost.entries()].sort((a, b) => a[1].attempts - b[1].attempts).slice(0, 2);
    for (const [id, e] of picks) {
      e.attempts++;
      const st = h.list.states.get(id);
      if (st && st.status <= Status.suspect) {
        this.#lost.delete(id);
        continue;
      }
      if (h.t.isLinked(id)) this.#sendHello(id);
      else if (!h.connecting().has(id) && h.connecting().size < h.config.maxConcurrentConnects) {
        h.connecting().add(id);
        h.t.connect(id, { timeoutMs: h.config.connectTimeoutMs }).then(
          () => {
            h.connecting().delete(id);
            if (h.isMaster()) this.#sendHello(id);
          },
          () => h.connecting().delete(id),
        );
      }
    }
  }

  /**
   * A peer that answers our probes follows another master (`ms`). Unless that master is
   * one we know to be gone (the peer has not caught up yet), two clusters overlap: the
   * master starts the split-brain exchange with the peer, which relays it to its master.
   */
  checkPeerMaster(from: NodeId, ms: string): void {
    const h = this.host;
    if (!ms || ms === h.self || !h.isMaster() || h.collecting() || this.#busy()) return;
    const st = h.list.states.get(ms);
    if (st && st.status > Status.suspect) return;
    if (h.rateOk(from)) this.#sendHello(from);
  }

  #sendHello(to: NodeId): void {
    const h = this.host;
    h.send(
      to,
      {
        t: Kind.ClusterSplitHello,
        cluster: h.config.cluster,
        master: h.self,
        size: h.members().length,
        version: h.list.version,
        ids: h.members().map((x) => x.id),
        ...quorumField(h.holdsQuorum()),
        tv: 1,
      } satisfies SplitHello,
    );
  }

  onSplitHello(from: NodeId, m: SplitHello): void {
    const h = this.host;
    if (m.cluster !== h.config.cluster || m.master === h.master() || m.master === h.self) return;
    if (!h.isMaster()) {
      const master = h.master();
      if (m.relay === undefined && master) h.send(master, { ...m, relay: h.self });
      return;
    }
    if (h.collecting() || this.#busy()) return;
    if (!h.rateOk(m.master)) return;
    const mine = this.#summary();
    const theirs = { size: m.size, master: m.master, members: m.ids, quorum: m.q, version: tieVersion(m) };
    const iWin = mergeWinner(mine, theirs) === "a";
    h.log.info("cluster.split_brain.detected", {
      other: m.master,
      otherSize: m.size,
      otherQuorum: m.q,
      size: h.members().length,
      quorum: mine.quorum,
      winner: iWin ? h.self : m.master,
    });
    const relay = m.relay ?? from;
    const act = () => {
      if (!h.isMaster() || this.#busy()) return;
      if (iWin) this.#sendHello(m.master);
      else this.#checkClaim(m);
    };
    if (h.t.isLinked(m.master)) return act();
    const via = relay !== m.master && h.t.isLinked(relay) ? relay : undefined;
    h.t.connect(m.master, { via, timeoutMs: h.config.connectTimeoutMs }).then(
      act,
      (err) => h.log.debug("cluster.split_brain.unreachable", { other: m.master, error: String(err) }),
    );
  }

  #busy(): boolean {
    return this.#merging !== null || this.#check.busy;
  }

  /**
   * Before merging into the group a hello claims, asks its members whether they follow its
   * master; merges only if the members that confirm still make it the winner. A claim its
   * members do not back is refused and counted (`merge_claim_unconfirmed`).
   */
  #checkClaim(m: SplitHello): void {
    const h = this.host;
    this.#check.start(
      { master: m.master, ids: m.ids ?? [], q: m.q, version: tieVersion(m) },
      () => this.#summary(),
      (r) => {
        h.log.info("cluster.split_brain.checked", { other: m.master, claimed: m.size, ...r });
        if (!r.ok) return h.reject("merge_claim_unconfirmed", m.master);
        if (h.isMaster() && !h.collecting() && !this.#busy()) this.#startMerge(m.master);
      },
    );
  }

  /** Another group's master checks a claim: who is this member's master. */
  onMergeCheck(from: NodeId, m: MergeCheck): void {
    this.#check.onCheck(from, m);
  }

  onMergeCheckReply(from: NodeId, m: MergeCheckReply): void {
    this.#check.onReply(from, m);
  }

  /** This group as the resolution rules see it. */
  #summary(): GroupSummary {
    const members = this.host.members();
    return {
      size: members.length,
      master: this.host.self,
      members: members.map((x) => x.id),
      quorum: this.host.holdsQuorum(),
      version: this.host.list.version,
    };
  }

  #mergeFields(m: Omit<MergeRequest, "t" | "proof">): unknown[] {
    const fields = ["merge", m.cluster, m.master, m.version, m.epoch, m.ts, m.nonce, m.members.map((x) => x.id)];
    return m.q === undefined ? fields : [...fields, m.q];
  }

  /** This (smaller) group's master asks the other master to take its members in. */
  #startMerge(target: NodeId): void {
    const h = this.host;
    this.#merging = { target };
    const body = {
      cluster: h.config.cluster,
      master: h.self,
      version: h.list.version,
      epoch: h.epoch(),
      members: h.members().slice(),
      ts: Math.floor(h.clock.now()),
      nonce: h.rng.id(32),
      ...quorumField(h.holdsQuorum()),
      tv: 1 as const,
    };
    h.log.info("cluster.merge.started", { into: target, members: body.members.length });
    h.send(
      target,
      {
        t: Kind.ClusterMergeRequest,
        ...body,
        proof: sign(this.#signKey ?? h.joinKeys.key, this.#mergeFields(body)),
      } satisfies MergeRequest,
    );
    h.after(h.config.joinTimeoutMs, () => {
      if (this.#merging?.target === target) this.#merging = null;
    });
  }

  onMergeRequest(from: NodeId, m: MergeRequest): void {
    const h = this.host;
    const refuse = (reason: string) => {
      h.log.info("cluster.merge.request_refused", { from: m.master, reason });
      h.send(from, { t: Kind.ClusterMergeRefused, reason: clip(reason, MAX_REFUSAL_REASON) } satisfies MergeRefused);
    };
    if (m.cluster !== h.config.cluster) return refuse("cluster name does not match");
    // A merge request comes from the master it names (a woken master's stale list may still
    // hold the other master as a live member, so membership of our list proves nothing).
    if (m.master !== from) {
      h.reject("foreign_master_claim", from);
      return refuse("a merge request comes from the master it names");
    }
    if (
      m.epoch > h.epoch() + MAX_EPOCH_LEAD || m.version > h.list.version + MAX_LIST_VERSION_LEAD ||
      m.members.some((e) => e.incarnation > MAX_INCARNATION)
    ) {
      h.reject("far_future", from);
      return refuse("merge request epoch, version or incarnation implausibly far ahead");
    }
    if (!verifyEither(h.joinKeys, this.#mergeFields(m), m.proof)) return refuse(BAD_MERGE_PROOF);
    const replay = h.replay.check(m.nonce, m.ts, h.clock.now());
    if (replay) return refuse(replay);
    if (!h.isMaster() || h.collecting() || this.#busy()) return refuse("not ready");
    const theirs = {
      size: m.members.length,
      master: m.master,
      members: m.members.map((x) => x.id),
      quorum: m.q,
      version: tieVersion(m),
    };
    if (mergeWinner(this.#summary(), theirs) !== "a") {
      this.#sendHello(from);
      return refuse("this group is the one to merge (smaller, or without a quorum)");
    }
    if (h.list.entries.length + m.members.length > MAX_MEMBERS) return refuse("cluster would be too large");
    const sorted = m.members.slice().sort((a, b) => a.joinedAt - b.joinedAt);
    for (const e of sorted) {
      const st = h.list.states.get(e.id);
      if (st && st.status <= Status.suspect) continue;
      // A higher incarnation outranks any stale dead notice still circulating about them.
      h.admit({
        id: e.id,
        name: e.name,
        runtime: e.runtime,
        lite: e.lite,
        incarnation: e.incarnation + 1,
        ...(e.urls ? { urls: [...e.urls] } : {}),
        ...(e.fp ? { fp: e.fp } : {}),
        ...(e.pk ? { pk: e.pk } : {}),
      }, null);
    }
    h.list.setVersion(Math.max(h.list.version, m.version));
    h.raiseEpoch(m.epoch + 1);
    h.list.fullNext = true;
    h.publish();
    h.stats.merges++;
    h.log.info("cluster.merge.absorbed", { from: m.master, members: sorted.length, version: h.list.version });
    h.send(
      from,
      { t: Kind.ClusterMergeAccepted, list: h.list.body(h.master() ?? h.self, h.epoch()) } satisfies MergeAccepted,
    );
  }

  onMergeAccepted(from: NodeId, m: MergeAccepted): void {
    const h = this.host;
    if (this.#merging?.target !== from) return;
    this.#merging = null;
    const former = h.members().map((x) => x.id).filter((id) => id !== h.self);
    this.adoptMerged(m.list, from);
    const msg: MergeInto = { t: Kind.ClusterMergeInto, list: m.list, from: former };
    const sendAll = () => {
      for (const id of former) h.send(id, msg);
    };
    sendAll();
    h.after(h.config.probeIntervalMs, sendAll);
  }

  onMergeRefused(from: NodeId, m: MergeRefused): void {
    if (this.#merging?.target !== from) return;
    this.host.log.info("cluster.merge.refused", { by: from, reason: m.reason });
    this.#merging = null;
    // During a secret rotation the other master may know only the other secret: the next attempt uses it.
    if (m.reason === BAD_MERGE_PROOF) {
      this.#signKey = otherKey(this.host.joinKeys, this.#signKey ?? this.host.joinKeys.key);
    }
  }

  /** Our master tells us it merged into another cluster: follow it. */
  onMergeInto(from: NodeId, m: MergeInto): void {
    const master = this.host.master();
    if (from === master && m.list.master !== master) this.adoptMerged(m.list, from);
  }

  /** Follows our master into the cluster it merged into. */
  adoptMerged(body: ListBody, via: NodeId): void {
    const h = this.host;
    if (!isNewerList(h.list.version, body.version)) return;
    const from = h.members().map((x) => x.id);
    this.#lost.clear();
    h.resetFor(via);
    h.installList(body, null);
    h.stats.merges++;
    h.log.info("cluster.merge.joined", { into: body.master, members: body.members.length });
    h.emit({ type: "merge", from, into: body.master });
  }
}

/** The optional `q` field of a hello or a merge request: present only with split-brain protection on. */
function quorumField(q: boolean | undefined): { q?: boolean } {
  return q === undefined ? {} : { q };
}

/**
 * The version another group's master breaks a tie of sizes by, or undefined when it breaks ties
 * by master id alone (a member before 8 December sends no `tv`): then both sides use the id, and
 * agree on the winner.
 */
function tieVersion(m: { version: number; tv?: 1 }): number | undefined {
  return m.tv === 1 ? m.version : undefined;
}
