/**
 * Membership of one node: lifecycle (start, leave, stop), join, and the SWIM message
 * dispatch, over parts that each own their state (hashicorp/memberlist's split is the model):
 * - member_list.ts: the list in admission order, its version (only rises) and deltas, and
 *   this node's SWIM record of each listed member;
 * - member_state.ts: alive / suspect / dead / left, refutation, push-pull, lists received;
 * - probe.ts: SWIM probes (ping, ping-req, nack) and their verdicts;
 * - awareness.ts: Lifeguard local health and the detector of this node's own stalls;
 * - master.ts: the master's role (view collection, admissions, publications);
 * - join.ts: join requests (settings, signaling URLs), their checks and forwarding;
 * - links.ts: links and relay routes; split_brain.ts: split-brain detection and merge.
 *
 * A state machine over an injected Clock, Random and Transport: it never reads the time or
 * sets timers itself, so the simulator runs it in virtual time and a seed replays a run.
 * `members()` is the list minus members this node knows to be dead or gone, and the master
 * is the first of them, so every member computes the same master without a vote.
 */
import type { Clock, Timer } from "../core/clock.ts";
import { assert, ShoalError } from "../core/errors.ts";
import { type Logger, silentLogger } from "../core/log.ts";
import type { Random } from "../core/random.ts";
import type { NodeId, Transport } from "../transport/transport.ts";
import { ReplayGuard, type RotatingKey, rotatingKey } from "../wire/envelope.ts";
import { Kind } from "../wire/kinds.ts";
import type { Message } from "../wire/message.ts";
import { type MembershipConfig, membershipConfig } from "./config.ts";
import { Awareness, StallDetector } from "./awareness.ts";
import { GossipQueue, retransmitLimit } from "./gossip_queue.ts";
import { refusalMessage } from "./join_settings.ts";
import { JoinPath, NOT_JOINED } from "./join.ts";
import { Links, type MemberLink, type RouteRequest } from "./links.ts";
import { MasterRole } from "./master.ts";
import { MemberStates, pushPullScale } from "./member_state.ts";
import { type MembershipStats, noRejections, type RejectReason } from "./part.ts";
import { Prober, type ProbeRequest, type RelayRequest } from "./probe.ts";
import { markAlive, MemberList, type MemberState } from "./member_list.ts";
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
  type MemberListM,
  type MergeAccepted,
  type MergeCheck,
  type MergeCheckReply,
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
  type ViewReply,
  type ViewRequest,
} from "./messages.ts";
import type { ServiceDeps } from "./service_deps.ts";
import { SplitBrain } from "./split_brain.ts";
import type { ClusterEvent, ClusterView, MemberInfo } from "./view.ts";

/** What a Membership needs from its node: the services' deps but the view (it is the view), the log optional. */
export interface MembershipDeps extends Omit<ServiceDeps, "view" | "log"> {
  /** @default silentLogger */
  log?: Logger;
  /** Cluster name and secret are required; everything else has a default (see config.ts). */
  config: Pick<MembershipConfig, "cluster" | "secret"> & Partial<MembershipConfig>;
}

export type { MembershipStats } from "./part.ts";

type Pending = ProbeRequest | RelayRequest | RouteRequest;

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
    rejected: noRejections(),
    probes: 0,
    probeFailures: 0,
    silentLinkResets: 0,
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
    crossConfirmations: 0,
  };

  readonly #t: Transport;
  readonly #clock: Clock;
  readonly #rng: Random;
  readonly #log: Logger;
  /** Signs and checks join requests (and merge requests); with the previous secret's key during a rotation. */
  readonly #joinKeys: RotatingKey;
  readonly #replay = new ReplayGuard();
  readonly #listeners = new Set<(e: ClusterEvent) => void>();
  readonly #gossip: GossipQueue;
  readonly #health: Awareness;
  readonly #stalls: StallDetector;
  /** The member list, its versions and deltas, and the SWIM record of each listed member. */
  readonly #list: MemberList;
  readonly #links: Links;
  readonly #split: SplitBrain;
  /** The master's role: view collection, admissions and publications. */
  readonly #masterRole: MasterRole;
  readonly #prober: Prober;
  /** The join request of this member, and the checks and forwarding of others'. */
  readonly #join: JoinPath;
  /** The SWIM state transitions of each listed member. */
  readonly #states: MemberStates;

  #started = false;
  #urls: string[] = [];
  #stopped = false;
  /** Whether this member holds a quorum now, under split-brain protection (set by the data layer). */
  #holdsQuorum: (() => boolean) | undefined;
  #joined = false;
  #leaving = false;
  #rejoining = false;
  #inc = 0;
  #epoch = 0;
  #master: NodeId | undefined;
  #contact: NodeId | undefined;

  // SWIM.
  #pending = new Map<number, Pending>();
  #seq = 0;

  /** When this node last took a rate-limited action per key (bounded). */
  #actions = new Map<string, number>();

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
    this.#joinKeys = rotatingKey(this.config.cluster, this.config.secret, this.config.previousSecret, "join");
    this.#gossip = new GossipQueue(this.config.maxGossipQueue);
    this.#health = new Awareness(this.config.awarenessMax);
    // A verdict waits this long after a stall of this member, so the backlog is read first.
    this.#stalls = new StallDetector(this.config.stallThresholdMs, this.config.probeTimeoutMs);
    // Everything the parts need from this node, in one place (each part declares its share).
    const ctx = {
      self: this.self,
      config: this.config,
      t: this.#t,
      clock: this.#clock,
      rng: this.#rng,
      log: this.#log,
      stats: this.stats,
      health: this.#health,
      gossip: this.#gossip,
      pending: this.#pending,
      joinKeys: this.#joinKeys,
      reject: (reason: RejectReason, from: NodeId) => this.#reject(reason, from),
      replay: this.#replay,
      now: () => this.#clock.now(),
      selfInc: () => this.#inc,
      raiseSelfInc: (inc: number) => this.#raiseInc(inc),
      joined: () => this.#joined,
      stopped: () => this.#stopped,
      leaving: () => this.#leaving,
      rejoining: () => this.#rejoining,
      contact: () => this.#contact,
      master: () => this.#master,
      isMaster: () => this.isMaster(),
      members: () => this.members(),
      epoch: () => this.#epoch,
      raiseEpoch: (epoch: number) => void (this.#epoch = Math.max(this.#epoch, epoch)),
      nextSeq: () => ++this.#seq,
      n: () => this.#n(),
      send: (to: NodeId, msg: Message) => this.#send(to, msg),
      after: (ms: number, fn: () => void) => this.#after(ms, fn),
      emit: (e: ClusterEvent) => this.#emit(e),
      broadcast: (item: GossipItem) => this.#broadcast(item),
      piggyback: () => this.#piggyback(),
      rateOk: (key: string) => this.#rateOk(key),
      randomMembers: (k: number, ok: (id: NodeId) => boolean) => this.#randomMembers(k, ok),
      stalledRecently: () => this.#stalls.stalledRecently(this.#clock.now()),
      graceMs: () => this.#stalls.graceMs,
      recomputeMaster: () => this.#recomputeMaster(),
      installList: (body: ListBody, delta: { removed: NodeId[] } | null) => this.#installList(body, delta),
      antiEntropy: (from: NodeId, lv: number, ms: string) => this.#states.antiEntropy(from, lv, ms),
      adoptMerged: (body: ListBody, via: NodeId) => this.#split.adoptMerged(body, via),
      resetFor: (via: NodeId) => {
        this.#contact = via;
        // Updates queued in the old cluster are about a world that no longer exists.
        this.#gossip.clear();
      },
      reachable: (id: NodeId) => this.#links.reachable(id),
      queueLinkTick: () => this.#links.queueTick(),
      connecting: () => this.#links.connecting,
      appeared: (id: NodeId) => {
        this.#links.appeared(id);
        this.#split.found(id);
      },
      gone: (id: NodeId) => this.#links.gone(id),
      suspected: (id: NodeId) => this.#links.pathLost(id),
      addLost: (id: NodeId) => this.#split.addLost(id),
      removed: (id: NodeId, st: MemberState) => {
        if (st.status !== Status.left) this.#split.addLost(id);
        this.#links.gone(id);
      },
      checkPeerMaster: (from: NodeId, ms: string) => this.#split.checkPeerMaster(from, ms),
      collecting: () => this.#masterRole.collecting,
      holdsQuorum: () => this.#holdsQuorum?.(),
      drop: (id: NodeId, item: GossipItem) => this.#masterRole.drop(id, item),
      admit: (e: Omit<MemberInfo, "joinedAt">, contact: NodeId | null) => this.#masterRole.admit(e, contact),
      publish: () => this.#masterRole.publish(),
      applyItems: (items: readonly GossipItem[], from: NodeId, ms: string) => this.#states.applyItems(items, from, ms),
      suspect: (id: NodeId, inc: number, by: NodeId) => this.#states.suspect(id, inc, by),
      urls: () => this.#urls,
      admitJoin: (req: JoinBody, contact: NodeId) => this.#masterRole.onJoin(req, contact, this.#split.merging),
    };
    this.#list = new MemberList(this.self, ctx);
    const parts = { ...ctx, list: this.#list };
    this.#links = new Links(parts);
    this.#masterRole = new MasterRole(parts);
    this.#prober = new Prober(parts);
    this.#states = new MemberStates(parts);
    this.#split = new SplitBrain(parts);
    this.#join = new JoinPath(parts);
    // Links claiming a listed member's id with another certificate than it joined with are refused.
    deps.transport.bindIds?.({
      fingerprintOf: (id) => this.#list.member(id)?.fp,
      refused: (claimed) => this.#reject("foreign_certificate", claimed),
      // Relayed messages must be signed by their origin's key (not checked before joining). A member
      // declared dead keeps its entry's key while the entry is remembered: liveness is not the transport's call.
      originKeyOf: (id) => this.#joined ? (this.#list.states.get(id)?.info.pk ?? null) : undefined,
      forged: (claimed) => this.#reject("forged_origin", claimed),
    });
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
    return this.#list.version;
  }
  /** This member's incarnation (raised to refute suspicions). */
  get incarnation(): number {
    return this.#inc;
  }
  /** Lifeguard local-health score: 0 is healthy; probes slow down as it grows. */
  get awareness(): number {
    return this.#health.score;
  }

  /** Live members in age order. The array is shared: do not modify it. */
  members(): MemberInfo[] {
    return this.#joined ? this.#list.live() : [];
  }

  member(id: NodeId): MemberInfo | undefined {
    return this.#joined ? this.#list.member(id) : undefined;
  }

  master(): NodeId | undefined {
    return this.#joined ? this.#master : undefined;
  }

  listed(id: NodeId): boolean {
    if (!this.#joined) return false;
    const st = this.#list.states.get(id);
    return st !== undefined && st.status !== Status.left;
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
    const st = this.#list.states.get(id);
    if (!st) return undefined;
    return {
      status: (["alive", "suspect", "dead", "left"] as const)[st.status],
      incarnation: st.inc,
      linked: this.#t.isLinked(id),
      established: st.link.established,
      unreachableForMs: this.#links.reachable(id) ? 0 : this.#clock.now() - st.link.since,
    };
  }

  /** Whether a member is currently suspected (for dashboards and tests). */
  isSuspect(id: NodeId): boolean {
    return this.#list.states.get(id)?.status === Status.suspect;
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
    return this.#links.links();
  }

  /** Members lost to failure that the master keeps trying to reach (split-brain detection). */
  lostMembers(): NodeId[] {
    return this.#split.lostMembers();
  }

  /**
   * A new signaling path to `id` opened (the shell connected to the member's own signaling
   * endpoint, or found it registered at another server): if it is still unlinked, link to it
   * now instead of after the backoff, giving up an attempt that cannot complete (see
   * `Links.retry`).
   */
  retryLink(id: NodeId, serverLost = false): void {
    this.#links.retry(id, serverLost);
  }

  /**
   * The signaling endpoint member `id` serves closed (the shell saw its WebSocket close): a
   * hint, as a closed link is. A member killed outright closes it at once while its links
   * just go silent, so it is probed now rather than at its turn in the probe round (up to a
   * probe interval per member later); a verdict still needs its pings left unanswered.
   */
  endpointClosed(id: NodeId): void {
    const st = this.#list.states.get(id);
    if (this.#stopped || !this.#joined || id === this.self || !st || st.status > Status.suspect) return;
    this.#log.debug("cluster.endpoint.closed", { peer: id });
    this.#prober.probe(id);
  }

  /**
   * Adds peers learned elsewhere (e.g. the signaling room listing) as candidates for
   * split-brain detection: the master will try to reach those that are not members.
   */
  addCandidates(ids: NodeId[]): void {
    this.#split.addCandidates(ids);
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
              this.#log.error("cluster.join.refused", { seed, code: err.code, reason: err.message });
              throw new ShoalError(err.code, err.message);
            }
            this.#log.debug("cluster.join.seed_unreachable", { seed, error: String(err) });
            continue;
          }
        }
        reachable++;
        this.#join.useCurrentKey();
        let r = await this.#join.requestJoin(seed);
        if (r.kind === "refused" && r.code === "AUTH_FAILED" && !this.#stopped && this.#join.usePreviousKey()) {
          // A secret rotation in progress: the seed, or the master behind it, may know only
          // the previous secret. Ask again under it (a fresh nonce, so no replay refusal).
          this.#log.info("cluster.join.previous_secret", { seed });
          r = await this.#join.requestJoin(seed);
        }
        if (this.#stopped) throw new ShoalError("SHUTDOWN", "Cannot join: membership stopped");
        if (r.kind === "accepted") {
          this.#contact = seed;
          this.#installList(r.list, null);
          this.#afterJoin();
          this.#log.info("cluster.join.joined", {
            contact: seed,
            master: this.#master,
            members: this.members().length,
          });
          return;
        }
        if (r.kind === "refused") {
          if (r.code === "RETRY") {
            if (r.reason === NOT_JOINED) unjoined.push(seed);
            continue;
          }
          this.#log.error("cluster.join.refused", { seed, code: r.code, reason: r.reason });
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
    for (const s of candidates) this.#split.addLost(s);
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

  /**
   * Tells the split-brain merge whether this member holds a quorum now (split-brain
   * protection on): a group whose master holds one wins a merge over one whose master does not.
   */
  useQuorum(holds: () => boolean): void {
    this.#holdsQuorum = holds;
  }

  /** Stops at once, as a crash would: no further messages are sent or handled. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const st of this.#list.states.values()) st.suspicion?.cancel();
    this.#masterRole.stop();
    this.#join.cancel();
  }

  // ---------------------------------------------------------------- internals: plumbing

  #emit(e: ClusterEvent): void {
    for (const l of this.#listeners) {
      try {
        l(e);
      } catch (err) {
        this.#log.error("cluster.listener.failed", { event: e.type, error: String(err) });
      }
    }
  }

  /** Called before every timer callback with the time it was due (see StallDetector). */
  #noteLateness(due: number): void {
    if (this.#stopped) return;
    const lateMs = this.#stalls.note(due, this.#clock.now());
    if (lateMs === null) return;
    this.stats.stalls++;
    // Under sustained CPU load this happens every second or so: only long stalls are news.
    if (lateMs >= 1000) {
      this.#log.info("cluster.self.stalled", { lateMs: Math.round(lateMs), stalls: this.stats.stalls });
    } else this.#log.debug("cluster.self.stalled", { lateMs: Math.round(lateMs) });
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

  #listBody(): ListBody {
    return this.#list.body(this.#master ?? this.self, this.#epoch);
  }

  /** Raises this node's incarnation; it never drops (a refutation or re-join outbids the last). */
  #raiseInc(inc: number): void {
    assert(inc >= this.#inc, `own incarnation must never drop (${this.#inc} -> ${inc})`);
    assert(Number.isSafeInteger(inc), `own incarnation must stay what the wire carries (${inc})`);
    this.#inc = inc;
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

  // ---------------------------------------------------------------- member list

  /**
   * Installs a list: in full (`delta` null: entries missing from it are removed) or as a
   * delta against the current version. Emits the resulting events.
   */
  #installList(body: ListBody, delta: { removed: NodeId[] } | null): void {
    const { added, removed, selfListed } = this.#list.install(body, delta);
    this.stats.listsApplied++;
    const wasJoined = this.#joined;
    this.#joined = true;
    for (const r of removed) this.#emit({ type: "memberRemoved", member: r.member, reason: r.reason });
    for (const a of added) this.#emit({ type: "memberAdded", member: this.member(a.id) ?? a });
    this.#recomputeMaster(body.epoch);
    this.#epoch = Math.max(this.#epoch, body.epoch);
    this.#emit({ type: "memberListChanged", version: this.#list.version });
    if (!selfListed && wasJoined) this.#outOfList();
    else if (selfListed) this.#rejoining = false;
    this.#links.queueTick();
  }

  /** @param epochHint the epoch of the list that caused the change, adopted if higher */
  #recomputeMaster(epochHint = 0): void {
    const m = this.#list.firstLive();
    if (m === this.#master) return;
    const prev = this.#master;
    this.#master = m;
    if (m === undefined) return;
    this.#epoch = Math.max(this.#epoch + 1, epochHint);
    this.#log.info("cluster.master.changed", { master: m, previous: prev, epoch: this.#epoch });
    this.#emit({ type: "masterChanged", master: m, previous: prev, epoch: this.#epoch });
    if (m === this.self && this.#joined) this.#masterRole.take();
    else if (prev === this.self) this.#masterRole.resign();
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
      ...(this.#t.fingerprint ? { fp: this.#t.fingerprint } : {}),
      ...(this.#t.signingKey ? { pk: this.#t.signingKey } : {}),
    };
    this.#installList({ version: 1, master: this.self, epoch: 1, nextJoin: 2, members: [info] }, null);
    this.#list.fullNext = true;
    this.#log.info("cluster.formed", { cluster: this.config.cluster, why });
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
    loop(() => this.#health.scaleTimeout(c.probeIntervalMs), () => this.#prober.tick());
    loop(() => c.gossipIntervalMs, () => this.#states.gossipTick());
    loop(
      () => c.pushPullIntervalMs * pushPullScale(this.#n()) * (0.75 + this.#rng.next() * 0.5),
      () => this.#states.pushPullTick(),
    );
    loop(() => c.linkCheckIntervalMs, () => this.#links.tick());
    loop(() => c.splitBrainIntervalMs, () => this.#split.tick());
  }

  // ---------------------------------------------------------------- join

  /** The master's list no longer holds this node (it was taken for dead): join again. */
  #outOfList(): void {
    if (this.#rejoining || this.#leaving) return;
    this.#rejoining = true;
    this.#raiseInc(this.#inc + 1);
    const self = this.#list.states.get(this.self);
    if (self) self.inc = this.#inc;
    // Whatever this node suspected while the others took it for dead (its links were torn
    // down, nobody answered it) says nothing about them: forget it, and the updates queued
    // for a cluster that no longer lists this node.
    for (const st of this.#list.states.values()) {
      if (st.status === Status.suspect) markAlive(st, this.#clock.now());
    }
    this.#gossip.clear();
    this.#log.warn("cluster.self.removed", { incarnation: this.#inc });
    this.#emit({ type: "removedFromList", master: this.#master });
    const attempt = () => {
      if (!this.#rejoining) return;
      const targets = [this.#master, this.#contact, ...this.members().map((m) => m.id)].filter((x): x is NodeId =>
        !!x && x !== this.self && this.#links.reachable(x)
      );
      if (targets.length > 0) this.#send(targets[0], this.#join.makeJoinRequest(targets[0]));
      this.#after(this.config.joinTimeoutMs, attempt);
    };
    attempt();
  }

  // ---------------------------------------------------------------- message dispatch

  #onMessage(from: NodeId, msg: Message): void {
    if (this.#stopped) return;
    const sender = this.#list.states.get(from);
    if (sender) {
      sender.heardAt = this.#clock.now();
      sender.unansweredSince = undefined;
    }
    if (this.#joined) this.#states.tellIfDead(from);
    switch (msg.t) {
      case Kind.ClusterJoinRequest:
        return this.#join.onJoinRequest(from, msg as JoinRequest);
      case Kind.ClusterJoinForward:
        return this.#join.onJoinForward(from, msg as JoinForward);
      case Kind.ClusterJoinAccepted:
        return this.#join.onJoinAccepted(from, msg as JoinAccepted);
      case Kind.ClusterJoinRefused:
        return this.#join.onJoinRefused(from, msg as JoinRefused);
    }
    if (!this.#joined) {
      // Admitted but the acceptance is still on its way (lost, or slow): members already
      // probe this node, and a joiner that stays silent would be taken for dead.
      if (msg.t === Kind.ClusterPing && (msg as Ping).target === this.self && this.#started) {
        this.#send(from, { t: Kind.ClusterAck, seq: (msg as Ping).seq, lv: 0, ms: "", g: [] } satisfies Ack);
        // Being probed means the master admitted this node: its acceptance was lost. Ask
        // again through the prober (the master answers a repeated request with its list).
        if (this.#join.waiting && this.#rateOk(`join:${from}`)) this.#send(from, this.#join.makeJoinRequest(from));
      }
      return;
    }
    switch (msg.t) {
      case Kind.ClusterPing:
        return this.#prober.onPing(from, msg as Ping);
      case Kind.ClusterAck:
        return this.#prober.onAck(from, msg as Ack);
      case Kind.ClusterPingReq:
        return this.#prober.onPingReq(from, msg as PingReq);
      case Kind.ClusterNack:
        return this.#prober.onNack(msg as Nack);
      case Kind.ClusterGossip:
        return this.#states.applyItems((msg as Gossip).g, from, (msg as Gossip).ms);
      case Kind.ClusterMemberList:
        return this.#states.onMemberList(from, msg as MemberListM);
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
        return this.#masterRole.onViewReply(from, msg as ViewReply);
      case Kind.ClusterPushPull:
        return this.#states.onPushPull(from, msg as PushPull);
      case Kind.ClusterRouteQuery:
        return this.#links.onRouteQuery(from, msg as RouteQuery);
      case Kind.ClusterRouteAnswer:
        return this.#links.onRouteAnswer(from, msg as RouteAnswer);
      case Kind.ClusterRouteHint:
        return this.#links.onRouteHint(from, msg as RouteHint);
      case Kind.ClusterSplitHello:
        return this.#split.onSplitHello(from, msg as SplitHello);
      case Kind.ClusterMergeRequest:
        return this.#split.onMergeRequest(from, msg as MergeRequest);
      case Kind.ClusterMergeAccepted:
        return this.#split.onMergeAccepted(from, msg as MergeAccepted);
      case Kind.ClusterMergeRefused:
        return this.#split.onMergeRefused(from, msg as MergeRefused);
      case Kind.ClusterMergeInto:
        return this.#split.onMergeInto(from, msg as MergeInto);
      case Kind.ClusterMergeCheck:
        return this.#split.onMergeCheck(from, msg as MergeCheck);
      case Kind.ClusterMergeCheckReply:
        return this.#split.onMergeCheckReply(from, msg as MergeCheckReply);
    }
  }

  #onLink(peer: NodeId, up: boolean, reason?: string): void {
    if (this.#stopped) return;
    const st = this.#list.states.get(peer);
    if (up) return this.#links.up(peer, st);
    if (!st || st.status > Status.suspect || !this.#joined) return;
    // A closed link is only a hint: probe the member now, and re-link or route around it.
    this.#log.debug("cluster.link.down", { peer, reason });
    this.#links.down(peer, st);
    this.#prober.probe(peer);
    this.#links.queueTick();
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

  /** Counts a refused message; the first of each reason per half split-brain interval is logged as a warning. */
  #reject(reason: RejectReason, from: NodeId): void {
    this.stats.rejected[reason]++;
    const fields = { reason, from, count: this.stats.rejected[reason] };
    if (this.#rateOk(`rejected:${reason}`)) this.#log.warn("cluster.message.rejected", fields);
    else this.#log.debug("cluster.message.rejected", fields);
  }

  #rateOk(key: NodeId): boolean {
    const now = this.#clock.now();
    const last = this.#actions.get(key) ?? -Infinity;
    if (now - last < this.config.splitBrainIntervalMs / 2) return false;
    if (this.#actions.size >= 64) this.#actions.clear();
    this.#actions.set(key, now);
    return true;
  }
}
