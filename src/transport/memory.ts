/**
 * An in-process network for tests and simulation: a clock (virtual in the simulator),
 * seeded loss and delay per link, FIFO delivery per direction (as a data channel gives),
 * partitions between groups, asymmetric links and node crashes. The same seed gives the
 * same run. Two kinds of loss: `loss` makes a message vanish (as if the link lost it for
 * good), `packetLoss` models the data channel's SCTP: a lost packet is sent again on Shoal's
 * retransmission schedule (transport/retransmit.ts), so the message arrives late and, the
 * link being FIFO, everything sent after it waits too. With `encode: true` every message
 * goes through the real frame codec and validation, so malformed traffic is treated exactly
 * as the WebRTC transport treats it. Each node has a certificate fingerprint (`sim <id>` unless
 * given; a revived node keeps it) and links check ids against the membership's binding as
 * signed offers and answers do; {@link MemoryNetwork.attachImpostor} plays a process that
 * claims another member's id.
 */
import type { Clock } from "../core/clock.ts";
import type { Random } from "../core/random.ts";
import { sha256 } from "@noble/hashes/sha2.js";
import { checkIdBinding } from "../signaling/descriptions.ts";
import { decodeFrame, encodeFrame } from "../wire/codec.ts";
import { Kind } from "../wire/kinds.ts";
import { Limits } from "../wire/limits.ts";
import { type Message, validateMessage } from "../wire/message.ts";
import { forwardableInner, ForwardMsg, isKind } from "./messages.ts";
import { admitForward, forwardOf, OriginGuard, OriginSigner } from "./origin.ts";
import { delayedSackMs, retransmitScheduleMs } from "./retransmit.ts";
import {
  type ConnectOptions,
  emptyStats,
  type IdBinding,
  type NodeId,
  type Transport,
  type TransportHandlers,
  type TransportStats,
} from "./transport.ts";

export interface LinkConditions {
  /** One-way delay. @default 1 */
  delayMs: number;
  /** Uniform extra delay in [0, jitterMs). Order is still kept per direction. @default 0 */
  jitterMs: number;
  /** Probability that a message is lost for good. @default 0 */
  loss: number;
  /**
   * Probability that each packet (of {@link sctpPacketBytes} bytes of the message's frame)
   * is lost on the wire and retransmitted, every retransmission lost with the same
   * probability. @default 0
   */
  packetLoss: number;
  /** Direction blocked (a partition or an asymmetric failure). @default false */
  blocked: boolean;
  /**
   * Time to establish a link over this pair (the longer of both directions counts), instead
   * of the network's `connectDelayMs` (a WebRTC set-up slowed by a loaded machine, say).
   */
  connectMs?: number;
  /**
   * This many link set-ups over this pair (started from either end) are lost silently: each
   * hangs until its connect timeout or until it is given up (`disconnect`), as one whose
   * offer or answer went missing, or whose ICE checks stalled, does. @default 0
   */
  lostConnects?: number;
  /**
   * This many closes of a link over this pair by the end at `a` (direction a → b) never
   * reach `b`: its end stays open (a half-open link, as when the peer's close is lost and no
   * keep-alive has noticed yet), and what it sends over it is lost. @default 0
   */
  lostCloses?: number;
}

export interface MemoryNetworkOptions {
  clock: Clock;
  rng: Random;
  /** Defaults for every link. */
  link?: Partial<LinkConditions>;
  /** Round-trip every message through the frame codec and validation. @default true */
  encode?: boolean;
  /** Time to establish a link. @default 5 */
  connectDelayMs?: number;
  /** After a crash, when (if ever) peers see linkDown; null = never (as with kill -9 and no SCTP abort). @default null */
  crashLinkDownAfterMs?: number | null;
  /**
   * Model signaling endpoints (see {@link MemoryNetwork.register}): a link opened without a
   * relay needs a live endpoint where both ends are registered, and a link whose signaling
   * path dies before it opens hangs until its connect timeout (or `disconnect`), as a
   * WebRTC offer sent into a dead relay or server does. Off: any pair can always be
   * signalled directly. @default false
   */
  signaling?: boolean;
}

/** User data per SCTP packet (werift's USERDATA_MAX_LENGTH). */
export const sctpPacketBytes = 1200;

/**
 * How much later than its one-way delay a message of `size` bytes arrives when each of its
 * packets is lost with probability `p`: the latest of its packets' delivery times, each
 * packet sent again on the schedule an association with this round trip follows (its SRTT
 * is the round trip plus the delayed SACK, as werift samples it; RTTVAR the jitter plus half
 * the SACK delay).
 */
export function packetLossDelayMs(c: LinkConditions, size: number, rng: Random): number {
  if (c.packetLoss <= 0) return 0;
  let extra = 0;
  let schedule: number[] | null = null;
  const packets = Math.max(1, Math.ceil(size / sctpPacketBytes));
  for (let i = 0; i < packets; i++) {
    let lost = 0;
    while (rng.chance(c.packetLoss) && lost < 12) lost++;
    if (lost === 0) continue;
    schedule ??= retransmitScheduleMs(2 * c.delayMs + c.jitterMs + delayedSackMs, c.jitterMs + delayedSackMs / 2);
    extra = Math.max(extra, schedule[Math.min(lost, schedule.length) - 1]);
  }
  return extra;
}

/** How a node picks the signaling endpoint it sends to another through (see {@link MemoryNetwork.setSignalRoute}). */
export interface SignalRoute {
  /** The endpoint a signal to `to` leaves through; `arrivedAt`: where `to`'s last signal came from. */
  route(to: NodeId, arrivedAt?: NodeId): NodeId | undefined;
  /** A signal to `to` left through the endpoint of `endpoint`. */
  sent(to: NodeId, endpoint: NodeId): void;
}

/** How often a link set-up whose signaling waits at a frozen endpoint or relay looks again. */
const HELD_RECHECK_MS = 10;
/**
 * A link set-up whose signaling gets through reports progress at these fractions of its
 * set-up time (the answer arriving, ICE and DTLS moving on); a lost or held one reports none.
 */
const PROGRESS_STEPS = [0.25, 0.5, 0.75];

/** The simulated network that MemoryTransports attach to. */
export class MemoryNetwork {
  readonly clock: Clock;
  readonly rng: Random;
  readonly defaults: LinkConditions;
  readonly encode: boolean;
  readonly connectDelayMs: number;
  readonly crashLinkDownAfterMs: number | null;
  readonly signaling: boolean;
  #nodes = new Map<NodeId, MemoryTransport>();
  readonly #signers = new Map<string, OriginSigner>();
  /** Signaling endpoints (named by the node serving them) and the nodes registered there. */
  #endpoints = new Map<NodeId, Set<NodeId>>();
  #conditions = new Map<string, Partial<LinkConditions>>();
  #groups: Map<NodeId, number> | null = null;
  /** Messages delivered and lost, for simulation reports. */
  delivered = 0;
  lost = 0;
  /** Messages delayed by a modelled packet retransmission (`packetLoss`). */
  retransmitted = 0;

  constructor(opts: MemoryNetworkOptions) {
    this.clock = opts.clock;
    this.rng = opts.rng;
    this.defaults = { delayMs: 1, jitterMs: 0, loss: 0, packetLoss: 0, blocked: false, ...opts.link };
    this.encode = opts.encode ?? true;
    this.connectDelayMs = opts.connectDelayMs ?? 5;
    this.crashLinkDownAfterMs = opts.crashLinkDownAfterMs ?? null;
    this.signaling = opts.signaling ?? false;
  }

  /**
   * Registers `id` at the signaling endpoint served by node `endpoint` (as a member opens a
   * WebSocket to a signaling URL; a node is registered at its own endpoint from the start).
   * @returns false when the endpoint's node is down or unreachable from `id`
   */
  register(id: NodeId, endpoint: NodeId): boolean {
    if (!this.reachable(id, endpoint) || !this.reachable(endpoint, id)) return false;
    if (this.signaling && this.frozen(endpoint)) return false; // its handshake would hang
    const room = this.#endpoints.get(endpoint) ?? new Set<NodeId>();
    this.#endpoints.set(endpoint, room);
    room.add(id);
    return true;
  }

  /** Closes `id`'s connection to the endpoint of `endpoint`. */
  unregister(id: NodeId, endpoint: NodeId): void {
    this.#endpoints.get(endpoint)?.delete(id);
  }

  /** Whether `id` holds a live connection to the endpoint of `endpoint` (its node is up and reachable). */
  registeredAt(id: NodeId, endpoint: NodeId): boolean {
    return !!this.#endpoints.get(endpoint)?.has(id) && this.reachable(id, endpoint);
  }

  /** Nodes registered at the live endpoint of `endpoint` (empty once its node is down). */
  peersAt(endpoint: NodeId): NodeId[] {
    const t = this.#nodes.get(endpoint);
    return t?.alive ? [...(this.#endpoints.get(endpoint) ?? [])].filter((id) => this.registeredAt(id, endpoint)) : [];
  }

  /** Whether some live endpoint has both `a` and `b` registered (a server can pass their offer and answer). */
  signalable(a: NodeId, b: NodeId): boolean {
    if (!this.signaling) return true;
    for (const endpoint of this.#endpoints.keys()) {
      if (this.registeredAt(a, endpoint) && this.registeredAt(b, endpoint) && this.#nodes.get(endpoint)?.alive) {
        return true;
      }
    }
    return false;
  }

  /**
   * Whether a node is frozen (its process stopped, SIGSTOP): its endpoint and its relay
   * pass no signaling, though connections to them stay open. Set by the simulator.
   */
  frozen: (id: NodeId) => boolean = () => false;
  /** Per node, how it picks the endpoint it signals another node through (as a real node does). */
  readonly #signalRoutes = new Map<NodeId, SignalRoute>();

  /** Sets how node `id` picks the endpoint it signals others through (see {@link signalEndpoints}). */
  setSignalRoute(id: NodeId, route: SignalRoute): void {
    this.#signalRoutes.set(id, route);
  }

  /**
   * The endpoints that signaling between `a` and `b` without a relay goes through, picked
   * now: `a` sends through the one its signal route picks (and is told so), `b` answers
   * through the one it picks knowing where `a`'s signal came from. Null without signal
   * routes (then any endpoint holding both will do, see {@link signalState}).
   */
  signalEndpoints(a: NodeId, b: NodeId): NodeId[] | null {
    const ra = this.#signalRoutes.get(a), rb = this.#signalRoutes.get(b);
    if (!this.signaling || !ra || !rb) return null;
    const out = ra.route(b);
    if (out === undefined) return [];
    ra.sent(b, out);
    const back = rb.route(a, out);
    return back === undefined ? [] : [out, back];
  }

  /**
   * Whether signaling between `a` and `b` through `endpoints` (see {@link signalEndpoints})
   * gets through: "ok"; "held" while one of them is frozen (its process stopped: the
   * signal waits there, and is lost should it die); "lost" when one is down or does not hold
   * both ends.
   */
  signalState(a: NodeId, b: NodeId, endpoints: NodeId[] | null): "ok" | "held" | "lost" {
    if (!this.signaling) return "ok";
    if (endpoints === null) return this.signalable(a, b) ? "ok" : "lost";
    if (endpoints.length === 0) return "lost";
    let held = false;
    for (const e of endpoints) {
      if (!this.#nodes.get(e)?.alive || !this.registeredAt(a, e) || !this.registeredAt(b, e)) return "lost";
      held ||= this.frozen(e);
    }
    return held ? "held" : "ok";
  }

  /** Link set-ups lost so far (see {@link LinkConditions.lostConnects}). */
  connectsLost = 0;

  /** Whether the next set-up between `a` and `b` is lost (see {@link LinkConditions.lostConnects}); counts it. */
  takeLostConnect(a: NodeId, b: NodeId): boolean {
    for (const key of [`${a}\u0000${b}`, `${b}\u0000${a}`]) {
      const c = this.#conditions.get(key);
      if (c?.lostConnects) {
        c.lostConnects--;
        this.connectsLost++;
        return true;
      }
    }
    return false;
  }

  /** Whether the close of a link by `a` goes unseen at `b` (see {@link LinkConditions.lostCloses}); counts it. */
  takeLostClose(a: NodeId, b: NodeId): boolean {
    const c = this.#conditions.get(`${a}\u0000${b}`);
    if (!c?.lostCloses) return false;
    c.lostCloses--;
    return true;
  }

  /** Time to establish a link between `a` and `b`. */
  connectMs(a: NodeId, b: NodeId): number {
    return Math.max(
      this.#conditions.get(`${a}\u0000${b}`)?.connectMs ?? this.connectDelayMs,
      this.#conditions.get(`${b}\u0000${a}`)?.connectMs ?? this.connectDelayMs,
    );
  }

  /**
   * The Ed25519 key pair of the node whose certificate has `fingerprint` (it tags relayed
   * messages, origin.ts): its key is derived from the fingerprint (deterministic runs), and
   * it and its counter outlive a crash, as the fingerprint does.
   */
  signerOf(fingerprint: string): OriginSigner {
    let s = this.#signers.get(fingerprint);
    if (!s) {
      s = new OriginSigner(sha256(new TextEncoder().encode(`shoal sim ed25519 ${fingerprint}`)));
      this.#signers.set(fingerprint, s);
    }
    return s;
  }

  /** Creates (or revives, after a crash) the transport of node `id`, whose certificate has `fingerprint`. */
  attach(id: NodeId, fingerprint = `sim ${id}`): MemoryTransport {
    const old = this.#nodes.get(id);
    if (old && !old.crashed && !old.closed) throw new Error(`Cannot attach ${id}: already attached`);
    const t = new MemoryTransport(this, id, fingerprint);
    this.#nodes.set(id, t);
    if (this.signaling) this.register(id, id);
    return t;
  }

  /**
   * A transport that claims id `claimed` (a live member's, say) with its own certificate
   * `fingerprint`: it is not reachable under that id, but it can link to others, who see
   * its links and messages as coming from `claimed`, unless their id binding refuses it.
   */
  attachImpostor(claimed: NodeId, fingerprint: string): MemoryTransport {
    return new MemoryTransport(this, claimed, fingerprint);
  }

  node(id: NodeId): MemoryTransport | undefined {
    return this.#nodes.get(id);
  }

  /** Live (attached, not crashed, not closed) node ids. */
  live(): NodeId[] {
    return [...this.#nodes.values()].filter((t) => t.alive).map((t) => t.self);
  }

  /** kill -9: the node stops at once; nothing more is sent or delivered. */
  crash(id: NodeId): void {
    const t = this.#nodes.get(id);
    if (!t) return;
    // The peers it was linked to, read before the crash clears its links.
    const peers = t.linkedPeers().flatMap((peer) => t.endpointOf(peer) ?? []);
    t.crashNow();
    // Its endpoint dies with it, and so do its connections to other endpoints.
    this.#endpoints.delete(id);
    for (const room of this.#endpoints.values()) room.delete(id);
    const after = this.crashLinkDownAfterMs;
    if (after === null) return;
    for (const p of peers) {
      // Only the link to the crashed transport: a link under its id made since then (a revived node) stays.
      this.clock.setTimer(after, () => {
        if (p.endpointOf(id) === t) p.dropLink(id, "peer crashed");
      });
    }
  }

  /** Sets conditions for the direction a → b. */
  setLink(a: NodeId, b: NodeId, c: Partial<LinkConditions>): void {
    this.#conditions.set(`${a}\u0000${b}`, { ...this.#conditions.get(`${a}\u0000${b}`), ...c });
  }

  /**
   * Makes the open link between `a` and `b` carry nothing either way from now on, while both
   * ends still hold it open (an association wedged below the transport, as bench/lossy.ts
   * found over werift). A link made again after either end closes it carries traffic.
   */
  wedge(a: NodeId, b: NodeId): void {
    this.node(a)?.wedge(b);
    this.node(b)?.wedge(a);
  }

  /** Splits the network: nodes in different groups cannot exchange anything. */
  partition(groups: NodeId[][]): void {
    this.#groups = new Map();
    groups.forEach((g, i) => g.forEach((id) => this.#groups!.set(id, i)));
  }

  /** Removes any partition. */
  heal(): void {
    this.#groups = null;
  }

  conditions(a: NodeId, b: NodeId): LinkConditions {
    const c = { ...this.defaults, ...this.#conditions.get(`${a}\u0000${b}`) };
    if (this.#groups) {
      const ga = this.#groups.get(a), gb = this.#groups.get(b);
      if (ga !== gb) c.blocked = true;
    }
    return c;
  }

  /** Whether `from` can currently reach `to` at all. */
  reachable(from: NodeId, to: NodeId): boolean {
    const t = this.#nodes.get(to);
    return !!t && t.alive && !this.conditions(from, to).blocked;
  }
}

/** One node's view of the memory network. */
export class MemoryTransport implements Transport {
  #handlers: TransportHandlers | null = null;
  #links = new Set<NodeId>();
  /** The transport at the other end of each link (an impostor's, for a link it took over). */
  #endpoints = new Map<NodeId, MemoryTransport>();
  #binding: IdBinding | undefined;
  readonly #origins: OriginGuard;
  /** Links being opened by this node, per peer. */
  #connecting = new Map<NodeId, Set<{ reject(err: Error): void; progressAt: number }>>();
  #routes = new Map<NodeId, NodeId>();
  #lastDelivery = new Map<NodeId, number>();
  /** Open links that carry nothing (see {@link MemoryNetwork.wedge}); a link closed here is no longer. */
  #wedged = new Set<NodeId>();
  #stats = emptyStats();
  crashed = false;
  closed = false;

  readonly #signer: OriginSigner;

  constructor(readonly net: MemoryNetwork, readonly self: NodeId, readonly fingerprint: string) {
    this.#signer = net.signerOf(fingerprint);
    this.#origins = new OriginGuard(this.#signer);
  }

  get signingKey(): string {
    return this.#signer.publicKey;
  }

  bindIds(binding: IdBinding): void {
    this.#binding = binding;
  }

  /** The transport at the other end of the link to `peer`, if linked. */
  endpointOf(peer: NodeId): MemoryTransport | undefined {
    return this.#endpoints.get(peer);
  }

  /** Why a link from `t` (claiming `t.self`) is refused by the id binding, counted; or null. */
  #refusal(t: MemoryTransport): string | null {
    // The check the WebRTC transport applies to a signed offer or answer (its `fp` = the sender's certificate).
    const refused = checkIdBinding({ from: t.self, fp: [t.fingerprint] }, this.#binding?.fingerprintOf(t.self));
    if (!refused) return null;
    this.#binding!.refused(t.self, refused.reason);
    return refused.reason;
  }

  get alive(): boolean {
    return !this.crashed && !this.closed;
  }

  setHandlers(h: TransportHandlers): void {
    this.#handlers = h;
  }

  stats(): TransportStats {
    return { ...this.#stats };
  }

  isLinked(peer: NodeId): boolean {
    return this.#links.has(peer);
  }

  links(): NodeId[] {
    return [...this.#links];
  }

  linkedPeers(): NodeId[] {
    return [...this.#links];
  }

  setRoute(to: NodeId, via: NodeId | null): void {
    if (via === null) this.#routes.delete(to);
    else this.#routes.set(to, via);
  }

  routeOf(to: NodeId): NodeId | undefined {
    return this.#routes.get(to);
  }

  connect(peer: NodeId, options: ConnectOptions = {}): Promise<void> {
    const timeoutMs = options.timeoutMs ?? 15_000;
    const net = this.net;
    return new Promise((resolve, reject) => {
      if (!this.alive) return reject(new Error(`Cannot connect to ${peer}: transport closed`));
      if (peer === this.self) return reject(new RangeError("Cannot connect to self"));
      if (this.#links.has(peer)) return resolve();
      // Signaling must reach the peer: through a server where both are registered (always,
      // without the signaling model), or relayed by `via`. It waits at a frozen relay or
      // endpoint (and is lost if that dies).
      const endpoints = options.via ? null : net.signalEndpoints(this.self, peer);
      const signaling = (): "ok" | "held" | "lost" => {
        const via = options.via;
        if (!via) return net.signalState(this.self, peer, endpoints);
        const ok = this.#links.has(via) && net.reachable(this.self, via) && net.reachable(via, peer) &&
          !!net.node(via)?.isLinked(peer);
        return !ok ? "lost" : net.signaling && net.frozen(via) ? "held" : "ok";
      };
      const reachable = () => net.reachable(this.self, peer) && net.reachable(peer, this.self);
      const ok = () => signaling() === "ok" && reachable();
      if (net.signaling && !options.via && !net.signalable(this.self, peer)) {
        // No server to hand the offer to: the send fails at once.
        return reject(new Error(`Cannot connect to ${peer}: no signaling path`));
      }
      if (!ok() && !net.signaling) {
        net.clock.setTimer(
          Math.min(timeoutMs, 2_000),
          () => reject(new Error(`Cannot connect to ${peer}: unreachable`)),
        );
        return;
      }
      // With the signaling model, an attempt whose path is (or goes) dead hangs until its
      // timeout, unless it is given up (`disconnect`).
      const attempt = { reject, done: false, progressAt: net.clock.now() };
      const attempts = this.#connecting.get(peer) ?? new Set();
      this.#connecting.set(peer, attempts);
      const finish = (err?: Error) => {
        if (attempt.done) return;
        attempt.done = true;
        attempts.delete(attempt);
        if (attempts.size === 0 && this.#connecting.get(peer) === attempts) this.#connecting.delete(peer);
        if (err) reject(err);
      };
      attempt.reject = (err: Error) => finish(err);
      attempts.add(attempt);
      const lost = net.takeLostConnect(this.self, peer);
      if (net.signaling || lost) {
        net.clock.setTimer(
          timeoutMs,
          () => finish(new Error(`Cannot connect to ${peer}: no link after ${timeoutMs} ms`)),
        );
        if (lost || signaling() === "lost" || !reachable()) return;
      }
      const setupMs = net.connectMs(this.self, peer);
      for (const f of PROGRESS_STEPS) {
        net.clock.setTimer(setupMs * f, () => {
          if (!attempt.done && signaling() === "ok" && reachable()) attempt.progressAt = net.clock.now();
        });
      }
      const complete = () => {
        if (attempt.done) return;
        const other = net.node(peer);
        if (net.signaling && this.alive && other?.alive) {
          const state = signaling();
          // Waiting at a frozen endpoint or relay: look again shortly.
          if (state === "held") return void net.clock.setTimer(HELD_RECHECK_MS, complete);
          if (state === "lost" || !reachable()) return;
        } else if (!this.alive || !other || !other.alive || !ok()) {
          if (net.signaling) return;
          return void finish(new Error(`Cannot connect to ${peer}: unreachable`));
        }
        // The offer and the answer are checked against each side's id binding.
        const refused = other!.#refusal(this) ?? this.#refusal(other!);
        if (refused) return void finish(new Error(`Cannot connect to ${peer}: ${refused}`));
        finish();
        this.linkUpLocal(peer, other!);
        other!.linkUpLocal(this.self, this);
        resolve();
      };
      net.clock.setTimer(setupMs, complete);
    });
  }

  linkUpLocal(peer: NodeId, endpoint: MemoryTransport): void {
    if (!this.alive) return;
    if (this.#links.has(peer)) {
      if (this.#endpoints.get(peer) === endpoint) return;
      this.dropLink(peer, "peer reconnected"); // someone else linked under that id
    }
    this.#endpoints.set(peer, endpoint);
    this.#links.add(peer);
    this.#handlers?.linkUp(peer);
  }

  /** The open link to `peer` carries nothing from now on, either way (see {@link MemoryNetwork.wedge}). */
  wedge(peer: NodeId): void {
    if (this.#links.has(peer)) this.#wedged.add(peer);
  }

  /** Whether the open link to `peer` carries nothing (see {@link MemoryNetwork.wedge}). */
  isWedged(peer: NodeId): boolean {
    return this.#wedged.has(peer);
  }

  dropLink(peer: NodeId, reason: string): void {
    if (!this.#links.delete(peer)) return;
    this.#wedged.delete(peer);
    this.#endpoints.delete(peer);
    this.#lastDelivery.delete(peer);
    if (this.alive) this.#handlers?.linkDown(peer, reason);
  }

  connectProgress(peer: NodeId): number | undefined {
    const attempts = this.#connecting.get(peer);
    if (!attempts?.size || this.#links.has(peer)) return undefined;
    return Math.max(...[...attempts].map((a) => a.progressAt));
  }

  disconnect(peer: NodeId): void {
    for (const a of [...(this.#connecting.get(peer) ?? [])]) {
      a.reject(new Error(`Cannot connect to ${peer}: closed locally`));
    }
    if (!this.#links.has(peer)) return;
    const other = this.#endpoints.get(peer);
    this.dropLink(peer, "closed locally");
    if (this.net.takeLostClose(this.self, peer)) return;
    if (other?.endpointOf(this.self) === this) other.dropLink(this.self, "closed by peer");
  }

  send(to: NodeId, msg: Message): boolean {
    if (!this.alive) return false;
    if (this.#links.has(to)) return this.#sendDirect(to, msg);
    const via = this.#routes.get(to);
    if (via && via !== to && this.#links.has(via)) {
      return this.#sendDirect(via, forwardOf(this.#signer, this.self, to, this.#binding?.originKeyOf?.(to), msg));
    }
    this.#stats.droppedNoRoute++;
    return false;
  }

  #sendDirect(to: NodeId, msg: Message): boolean {
    const net = this.net;
    let payload: Message | Uint8Array = msg;
    let size = 64;
    if (net.encode) {
      try {
        payload = encodeFrame([msg]);
      } catch {
        this.#stats.droppedInvalid++;
        return false;
      }
      size = payload.byteLength;
      if (size > Limits.maxMessageBytes) {
        this.#stats.droppedOverflow++;
        return false;
      }
    }
    this.#stats.messagesSent++;
    this.#stats.framesSent++;
    this.#stats.bytesSent += size;
    const c = net.conditions(this.self, to);
    if (c.blocked || this.#wedged.has(to) || (c.loss > 0 && net.rng.chance(c.loss))) {
      net.lost++;
      return true; // lost in the network: the sender cannot tell
    }
    const now = net.clock.now();
    const retransmitMs = packetLossDelayMs(c, size, net.rng);
    if (retransmitMs > 0) net.retransmitted++;
    const delay = c.delayMs + (c.jitterMs > 0 ? net.rng.next() * c.jitterMs : 0) + retransmitMs;
    const at = Math.max(now + delay, this.#lastDelivery.get(to) ?? 0);
    this.#lastDelivery.set(to, at);
    const dst = this.#endpoints.get(to);
    net.clock.setTimer(at - now, () => {
      if (!dst || !dst.alive || !this.alive || dst.endpointOf(this.self) !== this || dst.#wedged.has(this.self)) return;
      net.delivered++;
      dst.receive(this.self, payload, size);
    });
    return true;
  }

  /** Delivers a frame from a linked peer (also used by tests to inject raw bytes). */
  receive(from: NodeId, payload: Message | Uint8Array, size = 64): void {
    if (!this.alive) return;
    this.#stats.framesReceived++;
    this.#stats.bytesReceived += size;
    let msgs: Message[];
    if (payload instanceof Uint8Array) {
      const d = decodeFrame(payload, Limits.maxMessageBytes);
      this.#stats.droppedInvalid += d.dropped;
      msgs = d.msgs;
    } else {
      msgs = [payload];
    }
    for (const m of msgs) this.#deliver(from, m);
  }

  #deliver(from: NodeId, m: Message): void {
    if (isKind(ForwardMsg, m)) {
      const f = m;
      if (f.to === this.self) {
        const inner = validateMessage(f.m);
        if (!inner.ok || !forwardableInner(inner.msg)) {
          this.#stats.droppedInvalid++;
          return;
        }
        if (!admitForward(this.#origins, f, inner.msg, this.#binding, this.#stats)) return;
        this.#stats.messagesReceived++;
        this.#handlers?.message(f.from, inner.msg);
      } else if (f.ttl > 0 && this.#links.has(f.to)) {
        this.#stats.forwarded++;
        this.#sendDirect(f.to, { ...f, t: Kind.Forward, ttl: f.ttl - 1 });
      } else {
        this.#stats.droppedNoRoute++;
      }
      return;
    }
    this.#stats.messagesReceived++;
    this.#handlers?.message(from, m);
  }

  crashNow(): void {
    this.crashed = true;
    this.#links.clear();
    this.#endpoints.clear();
    this.#routes.clear();
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    for (const p of [...this.#links]) this.disconnect(p);
    this.closed = true;
    return Promise.resolve();
  }
}
