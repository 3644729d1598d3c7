/**
 * Membership: join, SWIM failure detection with Lifeguard suspicion and local health,
 * piggybacked gossip, the versioned member list published by the master (the oldest live
 * member), view collection by a new master, relay routes for pairs without a direct link,
 * and split-brain detection and merge.
 *
 * A state machine over an injected Clock, Random and Transport: it never reads the time or
 * sets timers itself, so the simulator runs it in virtual time and a seed replays a run.
 *
 * Two layers of state:
 * - the member list (who is in the cluster, in admission order, with a version that only
 *   moves forward), which only the master changes and publishes;
 * - the SWIM status of each listed member (alive / suspect / dead / left + incarnation),
 *   which every member learns by probing and gossip.
 * `members()` is the list minus members this node knows to be dead or gone, and the master
 * is the first of them, so every member computes the same master without a vote.
 */
import type { Clock, Timer } from "../core/clock.ts";
import { ShoalError } from "../core/errors.ts";
import { type Logger, silentLogger } from "../core/log.ts";
import type { Random } from "../core/random.ts";
import type { NodeId, Transport } from "../transport/transport.ts";
import { deriveKey, ReplayGuard, sign, verify } from "../wire/envelope.ts";
import { Kind } from "../wire/kinds.ts";
import type { Message } from "../wire/message.ts";
import { MAX_MEMBERS, type MembershipConfig, membershipConfig } from "./config.ts";
import { GossipQueue, retransmitLimit } from "./gossip_queue.ts";
import { canonicalSettings, refusalMessage, settingsMismatch } from "./join_settings.ts";
import {
  type Ack,
  ClusterKinds,
  type Gossip,
  type GossipItem,
  type JoinAccepted,
  type JoinBody,
  type JoinForward,
  type JoinRefused,
  type JoinRequest,
  type ListBody,
  type ListRequest,
  type MemberListM,
  type MergeAccepted,
  type MergeInto,
  type MergeRefused,
  type MergeRequest,
  type Nack,
  type Ping,
  type PingReq,
  type PushPull,
  type RouteAnswer,
  type RouteHint,
  type RouteQuery,
  type SplitHello,
  Status,
  type StatusCode,
  type ViewReply,
  type ViewRequest,
} from "./messages.ts";
import type { ServiceDeps } from "./service_deps.ts";
import { mergeWinner } from "./split_brain.ts";
import { Suspicion, suspicionBounds } from "./suspicion.ts";
import type { ClusterEvent, ClusterView, MemberInfo } from "./view.ts";

/** What a Membership needs from its node: the services' deps but the view (it is the view), the log optional. */
export interface MembershipDeps extends Omit<ServiceDeps, "view" | "log"> {
  /** @default silentLogger */
  log?: Logger;
  /** Cluster name and secret are required; everything else has a default (see config.ts). */
  config: Pick<MembershipConfig, "cluster" | "secret"> & Partial<MembershipConfig>;
}

/** How this node reaches a member: over its own link, or relayed through another member. */
export interface MemberLink {
  peer: NodeId;
  kind: "direct" | "relayed";
  via?: NodeId;
}

/** Counters for metrics and simulation reports. */
export interface MembershipStats {
  probes: number;
  probeFailures: number;
  suspicions: number;
  deadVerdicts: number;
  refutations: number;
  listsApplied: number;
  listsIgnored: number;
  joinsAdmitted: number;
  joinsRefused: number;
  merges: number;
  relayRoutes: number;
  /** Times this member found its own event loop stalled (a timer fired late by more than `stallThresholdMs`). */
  stalls: number;
  /** Failed probes not counted against the target: it talked to this member meanwhile. */
  probesVoided: number;
  /**
   * Dead verdicts held back: the suspect had not left this member's pings unanswered long
   * enough, this member had just stalled, or another member's dead notice was about a
   * member heard from lately (taken as a suspicion).
   */
  verdictsPostponed: number;
}

interface LinkState {
  attempts: number;
  nextAt: number;
  /** Since when this node has had no path to the member (or since it appeared). */
  since: number;
  /** Whether a direct link existed since the member (re)appeared here. */
  established: boolean;
}

interface MemberState {
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

type Pending =
  | { kind: "probe"; target: NodeId; acked: boolean; nacks: number; unreachable: number; expectedNacks: number }
  | { kind: "relay"; origin: NodeId; originSeq: number; target: NodeId; done: boolean }
  | { kind: "route"; target: NodeId; done: boolean; purpose: "relay" | "connect" };

type JoinResult =
  | { kind: "accepted"; list: ListBody; from: NodeId }
  | { kind: "refused"; code: "AUTH_FAILED" | "REFUSED" | "RETRY"; reason: string }
  | { kind: "timeout" };

const NOT_JOINED = "contact has not joined a cluster yet";
/** Gone-member notices carried by one member-list publication (the schema allows 256). */
const MAX_NOTICES = 200;

/**
 * The membership state machine of one node. Implements {@link ClusterView}.
 *
 * @example
 * const m = new Membership({ self, transport, router, clock, rng, config: { cluster: "c", secret: "s" } });
 * await m.start(seedIds); // joins through a seed, or forms a cluster alone
 * m.subscribe((e) => e.type === "masterChanged" && console.log("master", e.master));
 */
export class Membership implements ClusterView {
  readonly self: NodeId;
  readonly config: MembershipConfig;
  readonly stats: MembershipStats = {
    probes: 0,
    probeFailures: 0,
    suspicions: 0,
    deadVerdicts: 0,
    refutations: 0,
    listsApplied: 0,
    listsIgnored: 0,
    joinsAdmitted: 0,
    joinsRefused: 0,
    merges: 0,
    relayRoutes: 0,
    stalls: 0,
    probesVoided: 0,
    verdictsPostponed: 0,
  };

  readonly #t: Transport;
  readonly #clock: Clock;
  readonly #rng: Random;
  readonly #log: Logger;
  readonly #joinKey: Uint8Array;
  readonly #replay = new ReplayGuard();
  readonly #listeners = new Set<(e: ClusterEvent) => void>();
  readonly #gossip: GossipQueue;

  #started = false;
  #urls: string[] = [];
  #stopped = false;
  #joined = false;
  #leaving = false;
  #rejoining = false;
  #inc = 0;

  // The member list (admission order) and the SWIM state of each listed member.
  #list: MemberInfo[] = [];
  #listSorted = true;
  #states = new Map<NodeId, MemberState>();
  #version = 0;
  #epoch = 0;
  #nextJoin = 1;
  #master: NodeId | undefined;
  #liveCache: MemberInfo[] | null = null;
  #contact: NodeId | undefined;

  // Master side.
  #collecting: { seq: number; best: ListBody | null; waiting: Set<NodeId>; timer: Timer } | null = null;
  #publishTimer: Timer | null = null;
  #fullNext = true;
  #deltaBase = 0;
  #deltaAdded = new Map<NodeId, MemberInfo>();
  #deltaRemoved = new Set<NodeId>();
  #notices: GossipItem[] = [];
  #pendingReplies = new Map<NodeId, NodeId>();

  // SWIM.
  #pending = new Map<number, Pending>();
  #seq = 0;
  #awareness = 0;
  #probeOrder: NodeId[] = [];
  #probeIdx = 0;
  #listRequestAt = -Infinity;
  /** When this node last noticed its own event loop stalled (a timer fired late). */
  #stallSeenAt = -Infinity;

  // Links.
  #unlinked = new Set<NodeId>();
  #connecting = new Set<NodeId>();
  #linkTickQueued = false;

  // Join and split brain.
  #joinWaiter: ((r: JoinResult) => void) | null = null;
  #lost = new Map<NodeId, { at: number; attempts: number }>();
  #merging: { target: NodeId } | null = null;
  #splitActions = new Map<NodeId, number>();

  constructor(deps: MembershipDeps) {
    this.self = deps.self;
    this.config = membershipConfig(deps.config);
    this.#t = deps.transport;
    // Every timer of this state machine goes through here, so a timer that fires late
    // reveals a stall of this member's own event loop (see #noteLateness).
    const base = deps.clock;
    this.#clock = {
      now: () => base.now(),
      setTimer: (ms, fn) => {
        const due = base.now() + Math.max(0, ms);
        return base.setTimer(ms, () => {
          this.#noteLateness(due);
          fn();
        });
      },
    };
    this.#rng = deps.rng;
    this.#log = deps.log ?? silentLogger;
    this.#joinKey = deriveKey(this.config.cluster, this.config.secret, "join");
    this.#gossip = new GossipQueue(this.config.maxGossipQueue);
    deps.router.on(ClusterKinds, (from, msg) => this.#onMessage(from, msg));
    deps.router.onLink((peer, up, reason) => this.#onLink(peer, up, reason));
  }

  // ---------------------------------------------------------------- ClusterView

  get joined(): boolean {
    return this.#joined && !this.#stopped;
  }
  get masterEpoch(): number {
    return this.#epoch;
  }
  get memberListVersion(): number {
    return this.#version;
  }
  /** This member's incarnation (raised to refute suspicions). */
  get incarnation(): number {
    return this.#inc;
  }
  /** Lifeguard local-health score: 0 is healthy; probes slow down as it grows. */
  get awareness(): number {
    return this.#awareness;
  }

  /** Live members in age order. The array is shared: do not modify it. */
  members(): MemberInfo[] {
    if (!this.#joined) return [];
    if (!this.#liveCache) {
      this.#sortList();
      const out: MemberInfo[] = [];
      for (const info of this.#list) {
        const st = this.#states.get(info.id);
        if (st && st.status <= Status.suspect) {
          out.push(st.inc === info.incarnation ? info : { ...info, incarnation: st.inc });
        }
      }
      this.#liveCache = out;
    }
    return this.#liveCache;
  }

  member(id: NodeId): MemberInfo | undefined {
    const st = this.#states.get(id);
    if (!st || st.status > Status.suspect || !this.#joined) return undefined;
    return st.inc === st.info.incarnation ? st.info : { ...st.info, incarnation: st.inc };
  }

  master(): NodeId | undefined {
    return this.#joined ? this.#master : undefined;
  }

  isMaster(): boolean {
    return this.#joined && !this.#stopped && this.#master === this.self;
  }

  subscribe(listener: (e: ClusterEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => void this.#listeners.delete(listener);
  }

  /** This node's SWIM record of a listed member (for dashboards, tests and debugging). */
  memberState(
    id: NodeId,
  ): {
    status: "alive" | "suspect" | "dead" | "left";
    incarnation: number;
    linked: boolean;
    established: boolean;
    unreachableForMs: number;
  } | undefined {
    const st = this.#states.get(id);
    if (!st) return undefined;
    return {
      status: (["alive", "suspect", "dead", "left"] as const)[st.status],
      incarnation: st.inc,
      linked: this.#t.isLinked(id),
      established: st.link.established,
      unreachableForMs: this.#reachable(id) ? 0 : this.#clock.now() - st.link.since,
    };
  }

  /** Whether a member is currently suspected (for dashboards and tests). */
  isSuspect(id: NodeId): boolean {
    return this.#states.get(id)?.status === Status.suspect;
  }

  /**
   * This member's signaling URLs, sent with its join request and published in the member
   * list (call before {@link start}).
   */
  setUrls(urls: readonly string[]): void {
    this.#urls = urls.slice(0, 4);
  }

  /** How this node reaches each other live member: direct link or relay route. */
  links(): MemberLink[] {
    const out: MemberLink[] = [];
    for (const m of this.members()) {
      if (m.id === this.self) continue;
      if (this.#t.isLinked(m.id)) out.push({ peer: m.id, kind: "direct" });
      else {
        const via = this.#t.routeOf(m.id);
        if (via) out.push({ peer: m.id, kind: "relayed", via });
      }
    }
    return out;
  }

  /** Members lost to failure that the master keeps trying to reach (split-brain detection). */
  lostMembers(): NodeId[] {
    return [...this.#lost.keys()];
  }

  /**
   * Adds peers learned elsewhere (e.g. the signaling room listing) as candidates for
   * split-brain detection: the master will try to reach those that are not members.
   */
  /**
   * A new signaling path to `id` opened (the shell connected to the member's own signaling
   * endpoint): if it is still unlinked, try to link to it now instead of after the backoff.
   */
  retryLink(id: NodeId): void {
    const st = this.#states.get(id);
    if (!st || id === this.self || this.#t.isLinked(id) || st.status > Status.suspect) return;
    st.link.nextAt = 0;
    this.#unlinked.add(id);
    this.#queueLinkTick();
  }

  addCandidates(ids: NodeId[]): void {
    for (const id of ids) if (id !== this.self && !this.#states.has(id) && !this.#lost.has(id)) this.#addLost(id);
  }

  // ---------------------------------------------------------------- lifecycle

  /**
   * Joins the cluster through one of `seeds` (tried in random order), or forms a one-member
   * cluster when there are none or none can be reached.
   * @throws ShoalError AUTH_FAILED (wrong secret, replay) or REFUSED (wrong cluster name, full)
   */
  async start(seeds: NodeId[] = []): Promise<void> {
    if (this.#started) throw new ShoalError("CONFLICT", "Cannot start membership: already started");
    this.#started = true;
    const candidates = this.#rng.shuffle([...new Set(seeds)].filter((s) => s !== this.self));
    if (candidates.length === 0) {
      this.#formAlone("no seeds");
      return;
    }
    for (let round = 0; round < this.config.joinAttempts; round++) {
      let reachable = 0;
      const unjoined: NodeId[] = [];
      for (const seed of candidates) {
        if (this.#stopped) throw new ShoalError("SHUTDOWN", "Cannot join: membership stopped");
        if (!this.#t.isLinked(seed)) {
          try {
            await this.#t.connect(seed, { timeoutMs: this.config.connectTimeoutMs });
          } catch (err) {
            // A seed that refused our signed offer (wrong secret or cluster) is not a reason
            // to form a cluster of our own: the operator must hear about it.
            if (err instanceof ShoalError && (err.code === "AUTH_FAILED" || err.code === "REFUSED")) {
              this.#log.error("join refused", { seed, code: err.code, reason: err.message });
              throw new ShoalError(err.code, err.message);
            }
            this.#log.debug("seed unreachable", { seed, error: String(err) });
            continue;
          }
        }
        reachable++;
        const r = await this.#requestJoin(seed);
        if (this.#stopped) throw new ShoalError("SHUTDOWN", "Cannot join: membership stopped");
        if (r.kind === "accepted") {
          this.#contact = seed;
          this.#installList(r.list, null);
          this.#afterJoin();
          this.#log.info("joined cluster", { contact: seed, master: this.#master, members: this.members().length });
          return;
        }
        if (r.kind === "refused") {
          if (r.code === "RETRY") {
            if (r.reason === NOT_JOINED) unjoined.push(seed);
            continue;
          }
          this.#log.error("join refused", { seed, code: r.code, reason: r.reason });
          throw new ShoalError(r.code, refusalMessage(this.config.cluster, r.reason));
        }
      }
      if (reachable === 0) break;
      // Seeds that are themselves still starting: the one with the smallest id forms the
      // cluster and the others join it.
      if (unjoined.length === reachable && unjoined.every((s) => this.self < s)) break;
      await this.#sleep(Math.min(200 * 2 ** round, 2000) * (0.5 + this.#rng.next()));
    }
    if (this.#stopped) throw new ShoalError("SHUTDOWN", "Cannot join: membership stopped");
    this.#formAlone("no seed reachable");
    for (const s of candidates) this.#addLost(s);
  }

  /** Graceful leave: tells every member at once (`left`), then stops. */
  async leave(): Promise<void> {
    if (!this.#joined || this.#stopped) {
      this.stop();
      return;
    }
    this.#leaving = true;
    const item: GossipItem = { s: Status.left, id: this.self, inc: this.#inc };
    this.#broadcast(item);
    await this.#sleep(50);
    this.stop();
  }

  /** Stops at once, as a crash would: no further messages are sent or handled. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const st of this.#states.values()) st.suspicion?.cancel();
    this.#collecting?.timer.cancel();
    this.#publishTimer?.cancel();
    this.#joinWaiter?.({ kind: "timeout" });
    this.#joinWaiter = null;
  }

  // ---------------------------------------------------------------- internals: plumbing

  #emit(e: ClusterEvent): void {
    for (const l of this.#listeners) {
      try {
        l(e);
      } catch (err) {
        this.#log.error("cluster listener failed", { event: e.type, error: String(err) });
      }
    }
  }

  /**
   * Called before every timer callback with the time it was due. A timer far behind its
   * time means this member did not run for a while: whatever it received meanwhile (acks,
   * refutations) may still wait unread behind the overdue timers, so verdicts reached
   * right now wait until it has been read (see #stalledRecently).
   */
  #noteLateness(due: number): void {
    const now = this.#clock.now();
    const lateMs = now - due;
    if (lateMs <= this.config.stallThresholdMs || this.#stopped) return;
    const newStall = this.#stallSeenAt < due;
    this.#stallSeenAt = now;
    if (!newStall) return;
    this.stats.stalls++;
    // Under sustained CPU load this happens every second or so: only long stalls are news.
    if (lateMs >= 1000) this.#log.info("event loop stalled", { lateMs: Math.round(lateMs), stalls: this.stats.stalls });
    else this.#log.debug("event loop stalled", { lateMs: Math.round(lateMs) });
  }

  /** Whether this member noticed a stall of its own within the last grace period. */
  #stalledRecently(): boolean {
    return this.#clock.now() - this.#stallSeenAt < this.#graceMs();
  }

  /** How long a verdict waits after a stall of this member, so the backlog is read first. */
  #graceMs(): number {
    return this.config.probeTimeoutMs;
  }

  #after(ms: number, fn: () => void): Timer {
    return this.#clock.setTimer(ms, () => {
      if (!this.#stopped) fn();
    });
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((r) => this.#clock.setTimer(ms, r));
  }

  #send(to: NodeId, msg: Message): boolean {
    if (this.#stopped || to === this.self) return false;
    return this.#t.send(to, msg);
  }

  #reachable(id: NodeId): boolean {
    if (this.#t.isLinked(id)) return true;
    const via = this.#t.routeOf(id);
    return via !== undefined && this.#t.isLinked(via);
  }

  #n(): number {
    return Math.max(1, this.members().length);
  }

  #piggyback(): GossipItem[] {
    return this.#gossip.take(this.config.maxPiggyback, retransmitLimit(this.config.retransmitMult, this.#n()));
  }

  /** Sends an update straight to every reachable member (the full mesh makes this cheap). */
  #broadcast(item: GossipItem): void {
    const msg: Gossip = { t: Kind.ClusterGossip, ms: this.#master ?? "", g: [item] };
    for (const m of this.members()) if (m.id !== this.self && m.id !== item.id) this.#send(m.id, msg);
    if (item.id !== this.self && item.s !== Status.dead && item.s !== Status.left) this.#send(item.id, msg);
  }

  #invalidate(): void {
    this.#liveCache = null;
  }

  #sortList(): void {
    if (!this.#listSorted) {
      this.#list.sort((a, b) => a.joinedAt - b.joinedAt);
      this.#listSorted = true;
    }
  }

  #listBody(): ListBody {
    this.#sortList();
    return {
      version: this.#version,
      master: this.#master ?? this.self,
      epoch: this.#epoch,
      nextJoin: this.#nextJoin,
      members: this.#list.slice(),
    };
  }

  #addLost(id: NodeId): void {
    this.#lost.delete(id);
    while (this.#lost.size >= this.config.maxLostMembers) this.#lost.delete(this.#lost.keys().next().value!);
    this.#lost.set(id, { at: this.#clock.now(), attempts: 0 });
  }

  // ---------------------------------------------------------------- member list

  /** Adds or updates one list entry; returns the info if the member became live here. */
  #upsert(e: MemberInfo): MemberInfo | null {
    let st = this.#states.get(e.id);
    if (e.id === this.self && e.incarnation > this.#inc) this.#inc = e.incarnation;
    const info: MemberInfo = {
      id: e.id,
      name: e.name,
      runtime: e.runtime,
      joinedAt: e.joinedAt,
      lite: e.lite,
      incarnation: e.incarnation,
      ...(e.urls ? { urls: [...e.urls] } : {}),
    };
    if (!st) {
      st = {
        info,
        status: Status.alive,
        inc: e.id === this.self ? this.#inc : e.incarnation,
        accused: false,
        link: { attempts: 0, nextAt: 0, since: this.#clock.now(), established: false },
        heardAt: this.#clock.now(),
        unansweredSince: undefined,
      };
      this.#states.set(e.id, st);
      this.#pushList(info);
      if (e.id !== this.self && !this.#t.isLinked(e.id)) this.#unlinked.add(e.id);
      this.#lost.delete(e.id);
      return info;
    }
    const readmitted = st.info.joinedAt !== e.joinedAt;
    if (readmitted || st.info.incarnation !== e.incarnation || st.info.lite !== e.lite || st.info.name !== e.name) {
      const i = this.#list.indexOf(st.info);
      if (i >= 0) this.#list[i] = info;
      else this.#pushList(info);
      this.#listSorted = false;
    } else if (e.id === this.self && !this.#list.includes(st.info)) {
      this.#pushList(st.info);
      return null;
    } else return this.#upsertStatus(st, e);
    st.info = info;
    return this.#upsertStatus(st, e, readmitted);
  }

  #upsertStatus(st: MemberState, e: MemberInfo, readmitted = false): MemberInfo | null {
    if (e.id === this.self) {
      st.inc = this.#inc;
      st.status = Status.alive;
      return null;
    }
    if (e.incarnation > st.inc || (readmitted && st.status > Status.suspect)) {
      const wasLive = st.status <= Status.suspect;
      st.inc = Math.max(st.inc, e.incarnation);
      st.suspicion?.cancel();
      st.suspicion = undefined;
      st.status = Status.alive;
      st.accused = false;
      if (!wasLive) {
        st.link.since = this.#clock.now();
        st.link.established = false;
        return st.info;
      }
    }
    return null;
  }

  #pushList(info: MemberInfo): void {
    const last = this.#list[this.#list.length - 1];
    if (last && last.joinedAt > info.joinedAt) this.#listSorted = false;
    this.#list.push(info);
  }

  /** Drops a member from the list; returns it (and why) if it was live here. */
  #removeEntry(id: NodeId, removedIds: Set<NodeId>): { member: MemberInfo; reason: "dead" | "left" } | null {
    const st = this.#states.get(id);
    if (!st || id === this.self) return null;
    this.#states.delete(id);
    removedIds.add(id);
    st.suspicion?.cancel();
    this.#unlinked.delete(id);
    if (st.status !== Status.left) this.#addLost(id);
    if (this.#t.isLinked(id)) this.#t.disconnect(id);
    if (this.#t.routeOf(id)) this.#t.setRoute(id, null);
    if (st.status <= Status.suspect) return { member: st.info, reason: "dead" };
    return null;
  }

  #compactList(removedIds: Set<NodeId>): void {
    if (removedIds.size > 0) this.#list = this.#list.filter((m) => !removedIds.has(m.id));
  }

  /**
   * Installs a list: in full (`delta` null: entries missing from it are removed) or as a
   * delta against the current version. Emits the resulting events.
   */
  #installList(body: ListBody, delta: { removed: NodeId[] } | null): void {
    const added: MemberInfo[] = [];
    const removed: Array<{ member: MemberInfo; reason: "dead" | "left" }> = [];
    const removedIds = new Set<NodeId>();
    let selfListed: boolean;
    if (delta) {
      for (const id of delta.removed) {
        const r = this.#removeEntry(id, removedIds);
        if (r) removed.push(r);
      }
      this.#compactList(removedIds);
      for (const e of body.members) {
        const a = this.#upsert(e);
        if (a) added.push(a);
      }
      selfListed = !delta.removed.includes(this.self) && this.#states.has(this.self) &&
        this.#list.some((m) => m.id === this.self);
    } else {
      const ids = new Set<NodeId>();
      for (const e of body.members) ids.add(e.id);
      for (const id of [...this.#states.keys()]) {
        if (!ids.has(id)) {
          const r = this.#removeEntry(id, removedIds);
          if (r) removed.push(r);
        }
      }
      this.#compactList(removedIds);
      if (!ids.has(this.self)) this.#list = this.#list.filter((m) => m.id !== this.self);
      for (const e of body.members) {
        const a = this.#upsert(e);
        if (a) added.push(a);
      }
      selfListed = ids.has(this.self);
    }
    this.#version = body.version;
    this.#nextJoin = Math.max(this.#nextJoin, body.nextJoin);
    this.#deltaBase = this.#version;
    this.#invalidate();
    this.stats.listsApplied++;
    const wasJoined = this.#joined;
    this.#joined = true;
    for (const r of removed) this.#emit({ type: "memberRemoved", member: r.member, reason: r.reason });
    for (const a of added) this.#emit({ type: "memberAdded", member: this.member(a.id) ?? a });
    this.#recomputeMaster(body.epoch);
    this.#epoch = Math.max(this.#epoch, body.epoch);
    this.#emit({ type: "memberListChanged", version: this.#version });
    if (!selfListed && wasJoined) this.#outOfList();
    else if (selfListed) this.#rejoining = false;
    this.#queueLinkTick();
  }

  /** @param epochHint the epoch of the list that caused the change, adopted if higher */
  #recomputeMaster(epochHint = 0): void {
    this.#sortList();
    let m: NodeId | undefined;
    for (const info of this.#list) {
      const st = this.#states.get(info.id);
      if (st && st.status <= Status.suspect) {
        m = info.id;
        break;
      }
    }
    if (m === this.#master) return;
    const prev = this.#master;
    this.#master = m;
    if (m === undefined) return;
    this.#epoch = Math.max(this.#epoch + 1, epochHint);
    this.#log.info("master changed", { master: m, previous: prev, epoch: this.#epoch });
    this.#emit({ type: "masterChanged", master: m, previous: prev, epoch: this.#epoch });
    if (m === this.self && this.#joined) this.#becomeMaster();
    else if (prev === this.self) {
      this.#collecting?.timer.cancel();
      this.#collecting = null;
      this.#pendingReplies.clear();
    }
  }

  #formAlone(why: string): void {
    this.#inc = Math.max(this.#inc, 0);
    const info: MemberInfo = {
      id: this.self,
      name: this.config.name,
      runtime: this.config.runtime,
      joinedAt: 1,
      lite: this.config.lite,
      incarnation: this.#inc,
      ...(this.#urls.length > 0 ? { urls: [...this.#urls] } : {}),
    };
    this.#installList({ version: 1, master: this.self, epoch: 1, nextJoin: 2, members: [info] }, null);
    this.#fullNext = true;
    this.#log.info("formed a new cluster", { cluster: this.config.cluster, why });
    this.#afterJoin();
  }

  #afterJoin(): void {
    const c = this.config;
    const loop = (periodMs: () => number, fn: () => void) => {
      const tick = () => {
        fn();
        this.#after(periodMs(), tick);
      };
      this.#after(this.#rng.next() * periodMs(), tick);
    };
    loop(() => c.probeIntervalMs * (this.#awareness + 1), () => this.#probeTick());
    loop(() => c.gossipIntervalMs, () => this.#gossipTick());
    loop(
      () => c.pushPullIntervalMs * pushPullScale(this.#n()) * (0.75 + this.#rng.next() * 0.5),
      () => this.#pushPullTick(),
    );
    loop(() => c.linkCheckIntervalMs, () => this.#linkTick());
    loop(() => c.splitBrainIntervalMs, () => this.#splitBrainTick());
  }

  // ---------------------------------------------------------------- master duties

  #becomeMaster(): void {
    this.#log.info("became master", { epoch: this.#epoch, members: this.members().length });
    const others = this.members().filter((m) => m.id !== this.self && this.#reachable(m.id)).map((m) => m.id);
    if (others.length === 0) {
      this.#finishCollect();
      return;
    }
    const seq = ++this.#seq;
    const timer = this.#after(this.config.collectTimeoutMs, () => this.#finishCollect());
    this.#collecting = { seq, best: null, waiting: new Set(others), timer };
    const msg: ViewRequest = { t: Kind.ClusterViewRequest, seq, epoch: this.#epoch };
    for (const id of others) this.#send(id, msg);
  }

  #onViewReply(from: NodeId, m: ViewReply): void {
    const c = this.#collecting;
    if (!c || c.seq !== m.seq) return;
    if (!c.best || m.list.version > c.best.version) c.best = m.list;
    c.waiting.delete(from);
    if (c.waiting.size === 0) this.#finishCollect();
  }

  /** A new master adopts the newest view any member holds, drops the dead, and publishes. */
  #finishCollect(): void {
    const c = this.#collecting;
    this.#collecting = null;
    c?.timer.cancel();
    if (!this.isMaster()) return;
    const added: MemberInfo[] = [];
    if (c?.best && c.best.version > this.#version) {
      for (const e of c.best.members) {
        if (this.#states.has(e.id)) continue;
        const a = this.#upsert(e);
        if (a) added.push(a);
      }
      this.#version = c.best.version;
      this.#nextJoin = Math.max(this.#nextJoin, c.best.nextJoin);
    }
    if (c?.best) this.#epoch = Math.max(this.#epoch, c.best.epoch + 1);
    const removedIds = new Set<NodeId>();
    const gone = [...this.#states.values()].filter((st) => st.status >= Status.dead).sort((a, b) =>
      a.info.joinedAt - b.info.joinedAt
    );
    for (const st of gone) {
      // Oldest first: receivers need the notices about older members to accept this master.
      if (this.#notices.length < MAX_NOTICES) this.#notices.push({ s: st.status, id: st.info.id, inc: st.inc });
      this.#removeEntry(st.info.id, removedIds);
    }
    this.#compactList(removedIds);
    this.#invalidate();
    for (const a of added) this.#emit({ type: "memberAdded", member: a });
    this.#fullNext = true;
    this.#publish();
  }

  #schedulePublish(): void {
    if (this.#publishTimer || !this.isMaster()) return;
    this.#publishTimer = this.#after(this.config.publishDelayMs, () => {
      this.#publishTimer = null;
      this.#publish();
    });
  }

  /** Publishes the next member-list version: a delta, or the full list after a change of master. */
  #publish(): void {
    this.#publishTimer?.cancel();
    this.#publishTimer = null;
    if (!this.isMaster() || this.#collecting) return;
    const base = this.#deltaBase;
    const full = this.#fullNext || base !== this.#version;
    this.#version++;
    this.#deltaBase = this.#version;
    const body = this.#listBody();
    const msg: MemberListM = full
      ? { t: Kind.ClusterMemberList, base: 0, list: body, removed: [], g: this.#notices }
      : {
        t: Kind.ClusterMemberList,
        base,
        list: { ...body, members: [...this.#deltaAdded.values()] },
        removed: [...this.#deltaRemoved],
        g: this.#notices,
      };
    this.#fullNext = false;
    this.#deltaAdded.clear();
    this.#deltaRemoved.clear();
    this.#notices = [];
    for (const m of this.members()) {
      if (m.id !== this.self && !this.#pendingReplies.has(m.id)) this.#send(m.id, msg);
    }
    for (const [joiner, contact] of this.#pendingReplies) {
      const reply: JoinAccepted = { t: Kind.ClusterJoinAccepted, joiner, list: body };
      if (contact === this.self || this.#reachable(joiner)) this.#send(joiner, reply);
      else this.#send(contact, reply);
    }
    this.#pendingReplies.clear();
    this.#emit({ type: "memberListChanged", version: this.#version });
  }

  /** Master: a member is gone (dead verdict or left) — drop it from the list. */
  #masterDrop(id: NodeId, item: GossipItem): void {
    const removedIds = new Set<NodeId>();
    this.#removeEntry(id, removedIds);
    this.#compactList(removedIds);
    this.#deltaAdded.delete(id);
    this.#deltaRemoved.add(id);
    this.#pendingReplies.delete(id);
    if (this.#notices.length < MAX_NOTICES) this.#notices.push(item);
    this.#invalidate();
    this.#schedulePublish();
  }

  #admit(e: Omit<MemberInfo, "joinedAt">, contact: NodeId | null): MemberInfo {
    const old = this.#states.get(e.id);
    if (old) this.#masterDrop(e.id, { s: Status.dead, id: e.id, inc: old.inc });
    const info: MemberInfo = { ...e, joinedAt: this.#nextJoin++ };
    this.#upsert(info);
    const st = this.#states.get(e.id)!;
    st.link.since = this.#clock.now();
    this.#deltaRemoved.delete(e.id);
    this.#deltaAdded.set(e.id, info);
    if (contact) this.#pendingReplies.set(e.id, contact);
    this.#invalidate();
    this.stats.joinsAdmitted++;
    this.#emit({ type: "memberAdded", member: info });
    this.#schedulePublish();
    this.#queueLinkTick();
    return info;
  }

  // ---------------------------------------------------------------- join

  #joinFields(b: Omit<JoinBody, "proof">): unknown[] {
    const fields: unknown[] = [b.cluster, b.id, b.name, b.runtime, b.lite, b.inc, b.ts, b.nonce];
    if (b.st) fields.push(canonicalSettings(b.st));
    if (b.urls) fields.push(b.urls.join(" "));
    return fields;
  }

  #makeJoinRequest(): JoinRequest {
    const b = {
      cluster: this.config.cluster,
      id: this.self,
      name: this.config.name,
      runtime: this.config.runtime,
      lite: this.config.lite,
      inc: this.#inc,
      ts: Math.floor(this.#clock.now()),
      nonce: this.#rng.id(32),
      ...(this.config.settings ? { st: { ...this.config.settings.values } } : {}),
      ...(this.#urls.length > 0 ? { urls: [...this.#urls] } : {}),
    };
    return { t: Kind.ClusterJoinRequest, ...b, proof: sign(this.#joinKey, this.#joinFields(b)) };
  }

  #requestJoin(seed: NodeId): Promise<JoinResult> {
    return new Promise((resolve) => {
      const timer = this.#clock.setTimer(this.config.joinTimeoutMs, () => done({ kind: "timeout" }));
      const done = (r: JoinResult) => {
        timer.cancel();
        if (this.#joinWaiter === done) this.#joinWaiter = null;
        resolve(r);
      };
      this.#joinWaiter = done;
      if (!this.#send(seed, this.#makeJoinRequest())) done({ kind: "timeout" });
    });
  }

  /** Why a join request must be refused, or null. */
  #checkJoin(req: JoinBody): { code: "AUTH_FAILED" | "REFUSED"; reason: string } | null {
    if (req.cluster !== this.config.cluster) return { code: "REFUSED", reason: "cluster name does not match" };
    if (!verify(this.#joinKey, this.#joinFields(req), req.proof)) {
      return { code: "AUTH_FAILED", reason: "join proof does not verify (wrong cluster secret)" };
    }
    const r = this.#replay.check(req.nonce, req.ts, this.#clock.now());
    if (r) return { code: "AUTH_FAILED", reason: `join refused: ${r}` };
    // Settings that differ cannot work together (a joiner without any is of another version).
    const differs = this.config.settings && settingsMismatch(this.config.settings, req.st ?? {});
    if (differs) return { code: "REFUSED", reason: differs };
    return null;
  }

  #refuseJoin(to: NodeId, joiner: NodeId, code: JoinRefused["code"], reason: string): void {
    if (code !== "RETRY") {
      this.stats.joinsRefused++;
      this.#log.warn("join refused", { joiner, code, reason });
    }
    this.#send(to, { t: Kind.ClusterJoinRefused, joiner, code, reason } satisfies JoinRefused);
  }

  #onJoinRequest(from: NodeId, m: JoinRequest): void {
    if (!this.#joined || this.#rejoining) return this.#refuseJoin(from, m.id, "RETRY", NOT_JOINED);
    if (m.id !== from) return this.#refuseJoin(from, m.id, "REFUSED", "join request must come from the joiner itself");
    const bad = this.#checkJoin(m);
    if (bad) return this.#refuseJoin(from, m.id, bad.code, bad.reason);
    const { t: _t, ...req } = m;
    if (this.isMaster()) return this.#handleAdmission(req, this.self, from);
    const master = this.#master;
    if (!master || !this.#send(master, { t: Kind.ClusterJoinForward, contact: this.self, req } satisfies JoinForward)) {
      this.#refuseJoin(from, m.id, "RETRY", "master unreachable");
    }
  }

  #onJoinForward(from: NodeId, m: JoinForward): void {
    if (!this.isMaster()) return this.#refuseJoin(from, m.req.id, "RETRY", "not the master");
    const bad = this.#checkJoin(m.req);
    if (bad) return this.#refuseJoin(from, m.req.id, bad.code, bad.reason);
    this.#handleAdmission(m.req, m.contact, from);
  }

  #handleAdmission(req: JoinBody, contact: NodeId, replyTo: NodeId): void {
    if (this.#collecting || this.#merging) return this.#refuseJoin(replyTo, req.id, "RETRY", "master is changing");
    const st = this.#states.get(req.id);
    if (st && st.status <= Status.suspect && req.inc <= st.inc) {
      // A retried request: answer again with the current list.
      this.#pendingReplies.set(req.id, contact);
      this.#schedulePublish();
      return;
    }
    if (this.#list.length >= MAX_MEMBERS) return this.#refuseJoin(replyTo, req.id, "REFUSED", "cluster is full");
    if (this.#pendingReplies.size >= this.config.maxPending) {
      return this.#refuseJoin(replyTo, req.id, "RETRY", "too many joins in flight");
    }
    const info = this.#admit(
      {
        id: req.id,
        name: req.name,
        runtime: req.runtime,
        lite: req.lite,
        incarnation: req.inc,
        ...(req.urls ? { urls: req.urls } : {}),
      },
      contact,
    );
    this.#log.info("member admitted", { member: info.id, name: info.name, joinedAt: info.joinedAt });
  }

  #onJoinAccepted(from: NodeId, m: JoinAccepted): void {
    if (m.joiner !== this.self) {
      if (this.#t.isLinked(m.joiner)) this.#send(m.joiner, m);
      return;
    }
    if (this.#joinWaiter) return this.#joinWaiter({ kind: "accepted", list: m.list, from });
    if (this.#rejoining && m.list.version > this.#version) {
      this.#log.info("re-joined cluster", { master: m.list.master });
      this.#installList(m.list, null);
    }
  }

  #onJoinRefused(_from: NodeId, m: JoinRefused): void {
    if (m.joiner !== this.self) {
      if (this.#t.isLinked(m.joiner)) this.#send(m.joiner, m);
      return;
    }
    this.#joinWaiter?.({ kind: "refused", code: m.code, reason: m.reason });
  }

  /** The master's list no longer holds this node (it was taken for dead): join again. */
  #outOfList(): void {
    if (this.#rejoining || this.#leaving) return;
    this.#rejoining = true;
    this.#inc++;
    const self = this.#states.get(this.self);
    if (self) self.inc = this.#inc;
    // Whatever this node suspected while the others took it for dead (its links were torn
    // down, nobody answered it) says nothing about them: forget it, and the updates queued
    // for a cluster that no longer lists this node.
    for (const st of this.#states.values()) {
      if (st.status !== Status.suspect) continue;
      st.suspicion?.cancel();
      st.suspicion = undefined;
      st.status = Status.alive;
      st.accused = false;
    }
    this.#gossip.clear();
    this.#log.warn("removed from the member list; re-joining", { incarnation: this.#inc });
    const attempt = () => {
      if (!this.#rejoining) return;
      const targets = [this.#master, this.#contact, ...this.members().map((m) => m.id)].filter((x): x is NodeId =>
        !!x && x !== this.self && this.#reachable(x)
      );
      if (targets.length > 0) this.#send(targets[0], this.#makeJoinRequest());
      this.#after(this.config.joinTimeoutMs, attempt);
    };
    attempt();
  }

  // ---------------------------------------------------------------- SWIM

  #onMessage(from: NodeId, msg: Message): void {
    if (this.#stopped) return;
    const sender = this.#states.get(from);
    if (sender) {
      sender.heardAt = this.#clock.now();
      sender.unansweredSince = undefined;
    }
    if (this.#joined) this.#tellIfDead(from);
    switch (msg.t) {
      case Kind.ClusterJoinRequest:
        return this.#onJoinRequest(from, msg as JoinRequest);
      case Kind.ClusterJoinForward:
        return this.#onJoinForward(from, msg as JoinForward);
      case Kind.ClusterJoinAccepted:
        return this.#onJoinAccepted(from, msg as JoinAccepted);
      case Kind.ClusterJoinRefused:
        return this.#onJoinRefused(from, msg as JoinRefused);
    }
    if (!this.#joined) {
      // Admitted but the acceptance is still on its way (lost, or slow): members already
      // probe this node, and a joiner that stays silent would be taken for dead.
      if (msg.t === Kind.ClusterPing && (msg as Ping).target === this.self && this.#started) {
        this.#send(from, { t: Kind.ClusterAck, seq: (msg as Ping).seq, lv: 0, ms: "", g: [] } satisfies Ack);
        // Being probed means the master admitted this node: its acceptance was lost. Ask
        // again through the prober (the master answers a repeated request with its list).
        if (this.#joinWaiter && this.#rateOk(`join:${from}`)) this.#send(from, this.#makeJoinRequest());
      }
      return;
    }
    switch (msg.t) {
      case Kind.ClusterPing:
        return this.#onPing(from, msg as Ping);
      case Kind.ClusterAck:
        return this.#onAck(from, msg as Ack);
      case Kind.ClusterPingReq:
        return this.#onPingReq(from, msg as PingReq);
      case Kind.ClusterNack: {
        const p = this.#pending.get((msg as Nack).seq);
        if (p?.kind === "probe") {
          p.nacks++;
          if ((msg as Nack).unreachable) p.unreachable++;
        }
        return;
      }
      case Kind.ClusterGossip:
        return this.#applyItems((msg as Gossip).g, from, (msg as Gossip).ms);
      case Kind.ClusterMemberList:
        return this.#onMemberList(from, msg as MemberListM);
      case Kind.ClusterListRequest:
        return void this.#send(
          from,
          { t: Kind.ClusterMemberList, base: 0, list: this.#listBody(), removed: [], g: [] } satisfies MemberListM,
        );
      case Kind.ClusterViewRequest:
        return void this.#send(
          from,
          { t: Kind.ClusterViewReply, seq: (msg as ViewRequest).seq, list: this.#listBody() } satisfies ViewReply,
        );
      case Kind.ClusterViewReply:
        return this.#onViewReply(from, msg as ViewReply);
      case Kind.ClusterPushPull:
        return this.#onPushPull(from, msg as PushPull);
      case Kind.ClusterRouteQuery: {
        const q = msg as RouteQuery;
        return void this.#send(
          from,
          {
            t: Kind.ClusterRouteAnswer,
            seq: q.seq,
            target: q.target,
            ok: this.#t.isLinked(q.target),
          } satisfies RouteAnswer,
        );
      }
      case Kind.ClusterRouteAnswer:
        return this.#onRouteAnswer(from, msg as RouteAnswer);
      case Kind.ClusterRouteHint: {
        const h = msg as RouteHint;
        if (!this.#t.isLinked(from) && this.#t.isLinked(h.via) && h.via !== from) this.#t.setRoute(from, h.via);
        return;
      }
      case Kind.ClusterSplitHello:
        return this.#onSplitHello(from, msg as SplitHello);
      case Kind.ClusterMergeRequest:
        return this.#onMergeRequest(from, msg as MergeRequest);
      case Kind.ClusterMergeAccepted:
        return this.#onMergeAccepted(from, msg as MergeAccepted);
      case Kind.ClusterMergeRefused:
        if (this.#merging?.target === from) {
          this.#log.info("merge refused", { by: from, reason: (msg as MergeRefused).reason });
          this.#merging = null;
        }
        return;
      case Kind.ClusterMergeInto: {
        const mi = msg as MergeInto;
        if (from === this.#master && mi.list.master !== this.#master) this.#adoptMerged(mi.list, from);
        return;
      }
    }
  }

  #onLink(peer: NodeId, up: boolean, reason?: string): void {
    if (this.#stopped) return;
    const st = this.#states.get(peer);
    if (up) {
      this.#unlinked.delete(peer);
      if (this.#t.routeOf(peer)) this.#t.setRoute(peer, null);
      if (st) {
        st.link.attempts = 0;
        st.link.established = true;
      }
      return;
    }
    if (!st || st.status > Status.suspect || !this.#joined) return;
    // A closed link is only a hint: probe the member now, and re-link or route around it.
    this.#log.debug("link down", { peer, reason });
    this.#unlinked.add(peer);
    st.link.since = this.#clock.now();
    st.link.nextAt = 0;
    this.#probe(peer);
    this.#queueLinkTick();
  }

  /**
   * A listed member this node holds for dead is talking to us: it may not know. Tell it
   * directly (accusations about oneself are always heard), so it refutes with a higher
   * incarnation if it is alive; a wrong verdict is healed instead of splitting views.
   */
  #tellIfDead(from: NodeId): void {
    const st = this.#states.get(from);
    if (!st || st.status !== Status.dead || !this.#rateOk(`dead:${from}`)) return;
    this.#send(
      from,
      {
        t: Kind.ClusterGossip,
        ms: this.#master ?? "",
        g: [{ s: Status.dead, id: from, inc: st.inc }],
      } satisfies Gossip,
    );
  }

  #antiEntropy(from: NodeId, lv: number, ms: string): void {
    if (lv <= this.#version || this.#rejoining) return;
    if (ms !== this.#master && from !== this.#master) return;
    const now = this.#clock.now();
    if (now - this.#listRequestAt < this.config.probeIntervalMs) return;
    this.#listRequestAt = now;
    this.#send(from, { t: Kind.ClusterListRequest, have: this.#version } satisfies ListRequest);
  }

  #onMemberList(from: NodeId, m: MemberListM): void {
    this.#applyItems(m.g, from, null);
    const body = m.list;
    if (body.version <= this.#version) return;
    if (body.master !== this.#master) {
      // Our master vouches for the list of another master: it merged into that cluster.
      if (from === this.#master && m.base === 0 && body.master !== this.self) return this.#adoptMerged(body, from);
      this.stats.listsIgnored++;
      return;
    }
    if (m.base !== 0 && m.base !== this.#version) {
      this.#listRequestAt = -Infinity;
      this.#antiEntropy(from, body.version, body.master);
      return;
    }
    this.#installList(body, m.base !== 0 ? { removed: m.removed } : null);
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
  #applyItems(items: readonly GossipItem[], from: NodeId, senderMaster: string | null): void {
    if (items.length === 0) return;
    const st = this.#states.get(from);
    if (!st) return;
    const heard = st.status <= Status.suspect && (senderMaster === null || senderMaster === this.#master);
    for (const it of items) {
      if (!heard && it.s !== Status.alive && it.s !== Status.left && it.id !== this.self) continue;
      // Another member's dead verdict about a member that talked to this one lately: that
      // member is alive as far as this one can tell (the accuser may be the one cut off or
      // stalled), so it counts as a suspicion here, which the suspect can still refute. The
      // master's own publication is followed as it is.
      if (it.s === Status.dead && senderMaster !== null && this.#heardLately(it.id)) {
        if (this.#suspect(it.id, it.inc, from)) this.stats.verdictsPostponed++;
        continue;
      }
      this.#applyItem(it, from);
    }
  }

  /** Whether a live member sent this node anything within half of `suspectUnansweredMs`. */
  #heardLately(id: NodeId): boolean {
    const st = this.#states.get(id);
    return !!st && st.status <= Status.suspect && this.#clock.now() - st.heardAt < this.config.suspectUnansweredMs / 2;
  }

  #applyItem(it: GossipItem, from: NodeId): void {
    if (it.id === this.self) return this.#aboutMe(it, from);
    const st = this.#states.get(it.id);
    if (!st) return;
    switch (it.s) {
      case Status.alive: {
        if (it.inc <= st.inc || st.status === Status.left) return;
        const wasLive = st.status <= Status.suspect;
        st.inc = it.inc;
        st.suspicion?.cancel();
        st.suspicion = undefined;
        st.status = Status.alive;
        st.accused = false;
        this.#gossip.push(it);
        if (!wasLive) {
          st.link.since = this.#clock.now();
          st.link.established = false;
          this.#invalidate();
          this.#lost.delete(it.id);
          if (!this.#t.isLinked(it.id)) this.#unlinked.add(it.id);
          this.#emit({ type: "memberAdded", member: this.member(it.id)! });
          this.#recomputeMaster();
        }
        return;
      }
      case Status.suspect:
        this.#suspect(it.id, it.inc, it.by ?? from);
        return;
      default:
        this.#markDown(it.id, it.inc, it.s, false);
    }
  }

  /** Someone says this node is suspect or dead: refute with a higher incarnation. */
  #aboutMe(it: GossipItem, from: NodeId): void {
    if (it.s === Status.alive || this.#leaving) return;
    if (it.inc < this.#inc) {
      // Already refuted, but this accuser missed it: tell it directly.
      if (this.#rateOk(`alive:${from}`)) {
        this.#send(
          from,
          {
            t: Kind.ClusterGossip,
            ms: this.#master ?? "",
            g: [{ s: Status.alive, id: this.self, inc: this.#inc }],
          } satisfies Gossip,
        );
      }
      return;
    }
    this.#inc = it.inc + 1;
    const st = this.#states.get(this.self);
    if (st) st.inc = this.#inc;
    this.#awareness = Math.min(this.config.awarenessMax, this.#awareness + 1);
    this.stats.refutations++;
    const item: GossipItem = { s: Status.alive, id: this.self, inc: this.#inc };
    this.#gossip.push(item);
    this.#broadcast(item);
  }

  /**
   * @param confirms whether `by` counts as an independent confirmation of a running suspicion
   * @returns whether the state changed (new suspicion or new confirmation)
   */
  #suspect(id: NodeId, inc: number, by: NodeId, confirms = true): boolean {
    const st = this.#states.get(id);
    if (!st || st.status >= Status.dead || inc < st.inc) return false;
    const item: GossipItem = { s: Status.suspect, id, inc, by };
    if (st.status === Status.suspect && inc === st.inc) {
      if (confirms && st.suspicion?.confirm(by)) {
        this.#gossip.push(item);
        return true;
      }
      return false;
    }
    st.status = Status.suspect;
    st.inc = inc;
    st.suspicion?.cancel();
    const b = suspicionBounds(this.#n(), this.config);
    // Lifeguard local health: a member that misses acks, gets no nacks from its helpers, has
    // to refute or finds itself stalled is the likelier culprit, so its own verdicts wait
    // longer (a member that cannot hear anyone must not outrun the others' verdict on it).
    const scale = this.#awareness + 1;
    const sus = new Suspicion(
      this.#clock,
      by,
      b.k,
      b.minMs * scale,
      b.maxMs * scale,
      () => this.#suspicionExpired(id, st, inc),
    );
    st.suspicion = sus;
    // Tell the suspect now and then while the suspicion runs: it may have missed the first
    // notice (lost, or it was still joining and heard nothing) and can only refute what it hears.
    const remind = () => {
      if (st.suspicion !== sus || st.status !== Status.suspect || this.#states.get(id) !== st) return;
      this.#pingSuspect(id, st);
      this.#after(this.config.suspectUnansweredMs / 4, remind);
    };
    remind();
    this.stats.suspicions++;
    this.#log.debug("member suspect", { member: id, incarnation: inc, by });
    this.#gossip.push(item);
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
    const sus = st.suspicion;
    if (this.#stopped || !sus || this.#states.get(id) !== st || st.status !== Status.suspect || st.inc !== inc) return;
    const now = this.#clock.now();
    const elapsed = now - sus.startedAt;
    if (this.#stalledRecently() && elapsed < 2 * sus.maxMs) {
      this.stats.verdictsPostponed++;
      sus.postpone(this.#graceMs());
      return;
    }
    const unansweredMs = st.unansweredSince === undefined ? 0 : now - st.unansweredSince;
    if (unansweredMs < this.config.suspectUnansweredMs && elapsed < sus.maxMs) {
      this.stats.verdictsPostponed++;
      this.#pingSuspect(id, st);
      sus.postpone(Math.max(1, Math.min(this.config.suspectUnansweredMs - unansweredMs, sus.maxMs - elapsed)));
      return;
    }
    this.#markDown(id, inc, Status.dead, st.accused);
  }

  /**
   * Pings a suspect directly, the suspicion piggybacked so that it refutes at once if it
   * is alive (memberlist's "buddy system"); the ping also starts this member's own count
   * of how long the suspect leaves it unanswered. The ack matches no probe.
   */
  #pingSuspect(id: NodeId, st: MemberState): void {
    const item: GossipItem = { s: Status.suspect, id, inc: st.inc, by: this.self };
    const sent = this.#send(
      id,
      { t: Kind.ClusterPing, seq: 0, target: id, lv: this.#version, ms: this.#master ?? "", g: [item] } satisfies Ping,
    );
    if (sent && st.unansweredSince === undefined) st.unansweredSince = this.#clock.now();
  }

  /** A dead verdict or a leave: the member is gone here at once. */
  #markDown(id: NodeId, inc: number, status: StatusCode, originate: boolean): void {
    const st = this.#states.get(id);
    if (!st || inc < st.inc || st.status === Status.left) return;
    if (status === Status.dead && st.status === Status.dead) return;
    const wasLive = st.status <= Status.suspect;
    st.suspicion?.cancel();
    st.suspicion = undefined;
    st.status = status;
    st.inc = inc;
    const item: GossipItem = { s: status, id, inc };
    this.#gossip.push(item);
    if (originate) this.#broadcast(item);
    if (status === Status.dead) {
      this.stats.deadVerdicts++;
      this.#addLost(id);
      this.#log.info("member dead", { member: id, incarnation: inc });
    } else this.#log.info("member left", { member: id });
    // Only a verdict tears a link down.
    this.#unlinked.delete(id);
    if (this.#t.isLinked(id)) this.#t.disconnect(id);
    if (this.#t.routeOf(id)) this.#t.setRoute(id, null);
    if (wasLive) {
      this.#invalidate();
      this.#emit({ type: "memberRemoved", member: st.info, reason: status === Status.left ? "left" : "dead" });
    }
    this.#recomputeMaster();
    if (this.isMaster() && !this.#collecting) this.#masterDrop(id, item);
  }

  #probeTick(): void {
    const target = this.#nextProbeTarget();
    if (target) this.#probe(target);
  }

  /**
   * The next member to probe, round robin in random order. Members this node has neither
   * a link nor a route to are skipped while their links are still forming, but probed
   * after `linkFallbackMs` (through others, by ping-req), so a member that nobody can
   * reach is still found dead.
   */
  #nextProbeTarget(): NodeId | undefined {
    const now = this.#clock.now();
    for (let tries = 0; tries <= this.#probeOrder.length + 1; tries++) {
      if (this.#probeIdx >= this.#probeOrder.length) {
        this.#probeOrder = this.#rng.shuffle(this.members().filter((m) => m.id !== this.self).map((m) => m.id));
        this.#probeIdx = 0;
        if (this.#probeOrder.length === 0) return undefined;
      }
      const id = this.#probeOrder[this.#probeIdx++];
      const st = this.#states.get(id);
      if (
        st && st.status <= Status.suspect && (this.#reachable(id) || now - st.link.since > this.config.linkFallbackMs)
      ) return id;
    }
    return undefined;
  }

  #probe(target: NodeId): void {
    if (this.#pending.size >= this.config.maxPending) return;
    const startedAt = this.#clock.now();
    const seq = ++this.#seq;
    const p: Pending & { kind: "probe" } = {
      kind: "probe",
      target,
      acked: false,
      nacks: 0,
      unreachable: 0,
      expectedNacks: 0,
    };
    this.#pending.set(seq, p);
    this.stats.probes++;
    const scale = this.#awareness + 1;
    const direct = this.#send(
      target,
      {
        t: Kind.ClusterPing,
        seq,
        target,
        lv: this.#version,
        ms: this.#master ?? "",
        g: this.#piggyback(),
      } satisfies Ping,
    );
    const tst = this.#states.get(target);
    if (direct && tst && tst.unansweredSince === undefined) tst.unansweredSince = startedAt;
    this.#after(this.config.probeTimeoutMs * scale, () => {
      if (p.acked) return;
      const helpers = this.#randomMembers(this.config.indirectChecks, (id) => id !== target && this.#t.isLinked(id));
      p.expectedNacks = helpers.length;
      for (const h of helpers) {
        this.#send(
          h,
          { t: Kind.ClusterPingReq, seq, target, ms: this.#master ?? "", g: this.#piggyback() } satisfies PingReq,
        );
      }
    });
    const verdict = (deferrals: number) => {
      if (!p.acked && deferrals < 2 && this.#stalledRecently()) {
        // This member's own loop was just stalled: the ack, or the helpers' answers, may be
        // sitting unread behind the overdue timers. Read them first.
        this.#after(this.#graceMs(), () => verdict(deferrals + 1));
        return;
      }
      this.#pending.delete(seq);
      if (p.acked) {
        this.#awareness = Math.max(0, this.#awareness - 1);
        return;
      }
      const st = this.#states.get(target);
      if (!st || st.status > Status.suspect || this.#rejoining) return;
      // The target talked to this member meanwhile: it is alive, whatever became of the ping.
      if (st.heardAt >= startedAt) {
        this.stats.probesVoided++;
        return;
      }
      // Nobody had a path to it (no link here, and every helper said so): that says
      // nothing about a member whose links are still being formed.
      const inconclusive = !direct && p.unreachable === p.expectedNacks;
      if (inconclusive && !st.link.established && this.#clock.now() - st.link.since <= this.config.linkFallbackMs) {
        return;
      }
      const delta = p.expectedNacks > 0 ? Math.max(0, p.expectedNacks - p.nacks) : 1;
      this.#awareness = Math.min(this.config.awarenessMax, this.#awareness + delta);
      this.stats.probeFailures++;
      this.#log.info("probe failed", {
        member: target,
        direct,
        indirect: p.expectedNacks,
        nacks: p.nacks,
        awareness: this.#awareness,
        silentMs: Math.round(this.#clock.now() - st.heardAt),
        unansweredMs: st.unansweredSince === undefined ? 0 : Math.round(this.#clock.now() - st.unansweredSince),
        linkAgeMs: Math.round(this.#clock.now() - st.link.since),
      });
      st.accused = true;
      if (this.#suspect(target, st.inc, this.self)) {
        this.#broadcast({ s: Status.suspect, id: target, inc: st.inc, by: this.self });
      }
    };
    this.#after(this.config.probeIntervalMs * scale, () => verdict(0));
  }

  #randomMembers(k: number, ok: (id: NodeId) => boolean): NodeId[] {
    const live = this.members();
    const out: NodeId[] = [];
    if (live.length <= 1 || k <= 0) return out;
    const seen = new Set<NodeId>();
    for (let tries = 0; tries < k * 4 && out.length < k; tries++) {
      const id = live[this.#rng.int(live.length)].id;
      if (id === this.self || seen.has(id)) continue;
      seen.add(id);
      if (ok(id)) out.push(id);
    }
    return out;
  }

  #onPing(from: NodeId, m: Ping): void {
    this.#applyItems(m.g, from, m.ms);
    if (m.target !== this.self) return;
    this.#send(
      from,
      { t: Kind.ClusterAck, seq: m.seq, lv: this.#version, ms: this.#master ?? "", g: this.#piggyback() } satisfies Ack,
    );
    this.#antiEntropy(from, m.lv, m.ms);
    if (m.ms !== this.#master) this.#checkPeerMaster(from, m.ms);
  }

  #onAck(from: NodeId, m: Ack): void {
    this.#applyItems(m.g, from, m.ms);
    const p = this.#pending.get(m.seq);
    if (p?.kind === "probe") p.acked = true;
    else if (p?.kind === "relay" && !p.done) {
      p.done = true;
      this.#send(
        p.origin,
        { t: Kind.ClusterAck, seq: p.originSeq, lv: this.#version, ms: this.#master ?? "", g: [] } satisfies Ack,
      );
    }
    this.#antiEntropy(from, m.lv, m.ms);
    if (m.ms !== this.#master && m.ms !== "") this.#checkPeerMaster(from, m.ms);
  }

  #onPingReq(from: NodeId, m: PingReq): void {
    this.#applyItems(m.g, from, m.ms);
    if (this.#pending.size >= this.config.maxPending || !this.#reachable(m.target)) {
      this.#send(from, { t: Kind.ClusterNack, seq: m.seq, unreachable: true } satisfies Nack);
      return;
    }
    const seq = ++this.#seq;
    const rec: Pending = { kind: "relay", origin: from, originSeq: m.seq, target: m.target, done: false };
    this.#pending.set(seq, rec);
    this.#send(
      m.target,
      { t: Kind.ClusterPing, seq, target: m.target, lv: this.#version, ms: this.#master ?? "", g: [] } satisfies Ping,
    );
    this.#after(this.config.probeTimeoutMs, () => {
      this.#pending.delete(seq);
      if (!rec.done) this.#send(from, { t: Kind.ClusterNack, seq: m.seq } satisfies Nack);
    });
  }

  #gossipTick(): void {
    if (this.#gossip.size === 0) return;
    for (const id of this.#randomMembers(this.config.gossipNodes, (x) => this.#reachable(x))) {
      const g = this.#piggyback();
      if (g.length === 0) break;
      this.#send(id, { t: Kind.ClusterGossip, ms: this.#master ?? "", g } satisfies Gossip);
    }
  }

  #stateItems(): GossipItem[] {
    const out: GossipItem[] = [];
    for (const [id, st] of this.#states) out.push({ s: st.status, id, inc: st.inc });
    return out;
  }

  #pushPullTick(): void {
    const [peer] = this.#randomMembers(1, (x) => this.#reachable(x));
    if (!peer) return;
    this.#send(
      peer,
      {
        t: Kind.ClusterPushPull,
        reply: false,
        lv: this.#version,
        ms: this.#master ?? "",
        states: this.#stateItems(),
      } satisfies PushPull,
    );
  }

  #onPushPull(from: NodeId, m: PushPull): void {
    const peer = this.#states.get(from);
    // Only from live members that follow our master (see #applyItems).
    if (!peer || peer.status > Status.suspect || m.ms !== this.#master) return;
    for (const it of m.states) {
      // A remote "dead" counts only as a suspicion here (as in memberlist). A state copy
      // says nothing about who accused, so it never counts as a further confirmation.
      if ((it.s === Status.dead || it.s === Status.suspect) && it.id !== this.self) {
        this.#suspect(it.id, it.inc, from, false);
      } else this.#applyItem(it, from);
    }
    if (!m.reply) {
      this.#send(
        from,
        {
          t: Kind.ClusterPushPull,
          reply: true,
          lv: this.#version,
          ms: this.#master ?? "",
          states: this.#stateItems(),
        } satisfies PushPull,
      );
    }
    this.#antiEntropy(from, m.lv, m.ms);
  }

  // ---------------------------------------------------------------- links and relays

  #queueLinkTick(): void {
    if (this.#linkTickQueued || !this.#joined) return;
    this.#linkTickQueued = true;
    this.#after(0, () => {
      this.#linkTickQueued = false;
      this.#linkTick();
    });
  }

  /** Opens missing links (the newer member of a pair initiates) and routes around failures. */
  #linkTick(): void {
    const now = this.#clock.now();
    const me = this.#states.get(this.self);
    for (const id of this.#unlinked) {
      if (this.#connecting.size >= this.config.maxConcurrentConnects) break;
      const st = this.#states.get(id);
      if (!st || st.status > Status.suspect || id === this.self) {
        this.#unlinked.delete(id);
        continue;
      }
      if (this.#t.isLinked(id)) {
        this.#unlinked.delete(id);
        continue;
      }
      const via = this.#t.routeOf(id);
      if (via !== undefined && !this.#t.isLinked(via)) this.#t.setRoute(id, null); // the relay is gone
      if (this.#connecting.has(id) || now < st.link.nextAt) continue;
      const iAmNewer = !!me && me.info.joinedAt > st.info.joinedAt;
      if (!iAmNewer && now - st.link.since < this.config.linkFallbackMs) continue;
      this.#connectTo(id, st);
    }
  }

  /** Members worth asking whether they reach `target`: the master, our contact, two at random. */
  #viaCandidates(target: NodeId): NodeId[] {
    const out = new Set<NodeId>();
    for (const c of [this.#master, this.#contact]) {
      if (c && c !== target && c !== this.self && this.#t.isLinked(c)) out.add(c);
    }
    for (const r of this.#randomMembers(2, (x) => x !== target && this.#t.isLinked(x))) out.add(r);
    return [...out];
  }

  /**
   * Opens a link to `id`. Signaling for it is relayed by a member that reaches both ends,
   * so first a few linked members are asked whether they reach `id` (one round trip,
   * cheap next to establishing a WebRTC connection), and the first that does relays.
   */
  #connectTo(id: NodeId, st: MemberState): void {
    const candidates = this.#viaCandidates(id);
    if (candidates.length === 0 || this.#pending.size >= this.config.maxPending) {
      this.#connectVia(id, st, undefined);
      return;
    }
    this.#connecting.add(id);
    const seq = ++this.#seq;
    const p: Pending = { kind: "route", target: id, done: false, purpose: "connect" };
    this.#pending.set(seq, p);
    for (const c of candidates) this.#send(c, { t: Kind.ClusterRouteQuery, seq, target: id } satisfies RouteQuery);
    this.#after(this.config.probeTimeoutMs * 2, () => {
      this.#pending.delete(seq);
      if (p.done) return;
      p.done = true;
      // Nobody reaches it yet (its own links may still be forming): retry shortly, and
      // after that go through the signaling server.
      this.#connecting.delete(id);
      if (st.link.attempts >= 1) return this.#connectVia(id, st, undefined);
      st.link.attempts++;
      st.link.nextAt = this.#clock.now() + this.config.probeIntervalMs * (1 + this.#rng.next());
    });
  }

  #connectVia(id: NodeId, st: MemberState, via: NodeId | undefined): void {
    if (this.#t.isLinked(id) || this.#states.get(id) !== st) {
      this.#connecting.delete(id);
      return;
    }
    this.#connecting.add(id);
    this.#t.connect(id, { via, timeoutMs: this.config.connectTimeoutMs }).then(
      () => {
        this.#connecting.delete(id);
        st.link.attempts = 0;
        st.link.established = true;
        this.#unlinked.delete(id);
        if (this.#t.routeOf(id)) this.#t.setRoute(id, null);
        if (this.#unlinked.size > 0) this.#queueLinkTick();
      },
      (err) => {
        this.#connecting.delete(id);
        if (this.#stopped) return;
        this.#queueLinkTick();
        st.link.attempts++;
        const backoff = Math.min(this.config.linkRetryMaxMs, 500 * 2 ** st.link.attempts) * (0.5 + this.#rng.next());
        st.link.nextAt = this.#clock.now() + backoff;
        this.#log.debug("link failed", { peer: id, via, attempts: st.link.attempts, error: String(err) });
        if (st.link.attempts >= this.config.relayAfterFailures && !this.#t.routeOf(id) && this.#states.get(id) === st) {
          this.#findRelay(id);
        }
      },
    );
  }

  /** Asks a few linked members whether they reach `target`; the first that does becomes the relay. */
  #findRelay(target: NodeId): void {
    if (this.#pending.size >= this.config.maxPending) return;
    const seq = ++this.#seq;
    this.#pending.set(seq, { kind: "route", target, done: false, purpose: "relay" });
    for (const h of this.#randomMembers(3, (x) => x !== target && this.#t.isLinked(x))) {
      this.#send(h, { t: Kind.ClusterRouteQuery, seq, target } satisfies RouteQuery);
    }
    this.#after(this.config.probeIntervalMs * 2, () => this.#pending.delete(seq));
  }

  #onRouteAnswer(from: NodeId, m: RouteAnswer): void {
    const p = this.#pending.get(m.seq);
    if (p?.kind !== "route" || p.done || !m.ok || p.target !== m.target) return;
    p.done = true;
    if (p.purpose === "connect") {
      const st = this.#states.get(m.target);
      if (st) this.#connectVia(m.target, st, from);
      else this.#connecting.delete(m.target);
      return;
    }
    if (this.#t.isLinked(m.target)) return;
    this.#t.setRoute(m.target, from);
    this.stats.relayRoutes++;
    this.#log.info("relay route", { peer: m.target, via: from });
    this.#send(m.target, { t: Kind.ClusterRouteHint, via: from } satisfies RouteHint);
  }

  // ---------------------------------------------------------------- split brain

  #splitBrainTick(): void {
    const now = this.#clock.now();
    for (const [id, e] of this.#lost) {
      if (now - e.at > this.config.lostMemberTtlMs) this.#lost.delete(id);
      else break;
    }
    if (!this.isMaster() || this.#collecting || this.#merging || this.#lost.size === 0) return;
    // Try the two least-tried lost members.
    const picks = [...this.#lost.entries()].sort((a, b) => a[1].attempts - b[1].attempts).slice(0, 2);
    for (const [id, e] of picks) {
      e.attempts++;
      const st = this.#states.get(id);
      if (st && st.status <= Status.suspect) {
        this.#lost.delete(id);
        continue;
      }
      if (this.#t.isLinked(id)) this.#sendHello(id);
      else if (!this.#connecting.has(id) && this.#connecting.size < this.config.maxConcurrentConnects) {
        this.#connecting.add(id);
        this.#t.connect(id, { timeoutMs: this.config.connectTimeoutMs }).then(
          () => {
            this.#connecting.delete(id);
            if (this.isMaster()) this.#sendHello(id);
          },
          () => this.#connecting.delete(id),
        );
      }
    }
  }

  /** At most one split-brain action per peer per half check interval (bounded map). */
  #rateOk(key: NodeId): boolean {
    const now = this.#clock.now();
    const last = this.#splitActions.get(key) ?? -Infinity;
    if (now - last < this.config.splitBrainIntervalMs / 2) return false;
    if (this.#splitActions.size >= 64) this.#splitActions.clear();
    this.#splitActions.set(key, now);
    return true;
  }

  /**
   * A peer that answers our probes follows another master (`ms`). Unless that master is
   * one we know to be gone (the peer has not caught up yet), two clusters overlap: the
   * master starts the split-brain exchange with the peer, which relays it to its master.
   */
  #checkPeerMaster(from: NodeId, ms: string): void {
    if (!ms || ms === this.self || !this.isMaster() || this.#collecting || this.#merging) return;
    const st = this.#states.get(ms);
    if (st && st.status > Status.suspect) return;
    if (this.#rateOk(from)) this.#sendHello(from);
  }

  #sendHello(to: NodeId): void {
    this.#send(
      to,
      {
        t: Kind.ClusterSplitHello,
        cluster: this.config.cluster,
        master: this.self,
        size: this.members().length,
        version: this.#version,
      } satisfies SplitHello,
    );
  }

  #onSplitHello(from: NodeId, m: SplitHello): void {
    if (m.cluster !== this.config.cluster || m.master === this.#master || m.master === this.self) return;
    if (!this.isMaster()) {
      if (m.relay === undefined && this.#master) this.#send(this.#master, { ...m, relay: this.self });
      return;
    }
    if (this.#collecting || this.#merging) return;
    if (!this.#rateOk(m.master)) return;
    const iWin =
      mergeWinner({ size: this.members().length, master: this.self }, { size: m.size, master: m.master }) === "a";
    this.#log.info("split brain detected", {
      other: m.master,
      otherSize: m.size,
      size: this.members().length,
      winner: iWin ? this.self : m.master,
    });
    const relay = m.relay ?? from;
    const act = () => {
      if (!this.isMaster() || this.#merging) return;
      if (iWin) this.#sendHello(m.master);
      else this.#startMerge(m.master);
    };
    if (this.#t.isLinked(m.master)) return act();
    const via = relay !== m.master && this.#t.isLinked(relay) ? relay : undefined;
    this.#t.connect(m.master, { via, timeoutMs: this.config.connectTimeoutMs }).then(
      act,
      (err) => this.#log.debug("cannot reach other master", { other: m.master, error: String(err) }),
    );
  }

  #mergeFields(m: Omit<MergeRequest, "t" | "proof">): unknown[] {
    return ["merge", m.cluster, m.master, m.version, m.epoch, m.ts, m.nonce, m.members.map((x) => x.id)];
  }

  /** This (smaller) group's master asks the other master to take its members in. */
  #startMerge(target: NodeId): void {
    this.#merging = { target };
    const body = {
      cluster: this.config.cluster,
      master: this.self,
      version: this.#version,
      epoch: this.#epoch,
      members: this.members().slice(),
      ts: Math.floor(this.#clock.now()),
      nonce: this.#rng.id(32),
    };
    this.#log.info("merging into larger cluster", { into: target, members: body.members.length });
    this.#send(
      target,
      {
        t: Kind.ClusterMergeRequest,
        ...body,
        proof: sign(this.#joinKey, this.#mergeFields(body)),
      } satisfies MergeRequest,
    );
    this.#after(this.config.joinTimeoutMs, () => {
      if (this.#merging?.target === target) this.#merging = null;
    });
  }

  #onMergeRequest(from: NodeId, m: MergeRequest): void {
    const refuse = (reason: string) => {
      this.#log.info("merge request refused", { from: m.master, reason });
      this.#send(from, { t: Kind.ClusterMergeRefused, reason } satisfies MergeRefused);
    };
    if (m.cluster !== this.config.cluster) return refuse("cluster name does not match");
    if (!verify(this.#joinKey, this.#mergeFields(m), m.proof)) return refuse("merge proof does not verify");
    const replay = this.#replay.check(m.nonce, m.ts, this.#clock.now());
    if (replay) return refuse(replay);
    if (!this.isMaster() || this.#collecting || this.#merging) return refuse("not ready");
    if (
      mergeWinner({ size: this.members().length, master: this.self }, { size: m.members.length, master: m.master }) !==
        "a"
    ) {
      this.#sendHello(from);
      return refuse("this group is the smaller one");
    }
    if (this.#list.length + m.members.length > MAX_MEMBERS) return refuse("cluster would be too large");
    const sorted = m.members.slice().sort((a, b) => a.joinedAt - b.joinedAt);
    for (const e of sorted) {
      const st = this.#states.get(e.id);
      if (st && st.status <= Status.suspect) continue;
      // A higher incarnation outranks any stale dead notice still circulating about them.
      this.#admit({ id: e.id, name: e.name, runtime: e.runtime, lite: e.lite, incarnation: e.incarnation + 1 }, null);
    }
    this.#version = Math.max(this.#version, m.version);
    this.#epoch = Math.max(this.#epoch, m.epoch + 1);
    this.#fullNext = true;
    this.#publish();
    this.stats.merges++;
    this.#log.info("merged a cluster in", { from: m.master, members: sorted.length, version: this.#version });
    this.#send(from, { t: Kind.ClusterMergeAccepted, list: this.#listBody() } satisfies MergeAccepted);
  }

  #onMergeAccepted(from: NodeId, m: MergeAccepted): void {
    if (this.#merging?.target !== from) return;
    this.#merging = null;
    const former = this.members().map((x) => x.id).filter((id) => id !== this.self);
    this.#adoptMerged(m.list, from);
    const msg: MergeInto = { t: Kind.ClusterMergeInto, list: m.list, from: former };
    const sendAll = () => {
      for (const id of former) this.#send(id, msg);
    };
    sendAll();
    this.#after(this.config.probeIntervalMs, sendAll);
  }

  /** Follows our master into the cluster it merged into. */
  #adoptMerged(body: ListBody, via: NodeId): void {
    if (body.version <= this.#version) return;
    const from = this.members().map((x) => x.id);
    this.#contact = via;
    this.#lost.clear();
    // Updates queued in the old cluster are about a world that no longer exists.
    this.#gossip.clear();
    this.#installList(body, null);
    this.stats.merges++;
    this.#log.info("merged into cluster", { into: body.master, members: body.members.length });
    this.#emit({ type: "merge", from, into: body.master });
  }
}

/** memberlist's push-pull scaling: beyond 32 members the interval grows with log2(n). */
export function pushPullScale(n: number): number {
  if (n <= 32) return 1;
  return Math.ceil(Math.log2(n) - Math.log2(32)) + 1;
}
