/**
 * The WebRTC transport: one werift peer connection with one ordered, reliable data channel
 * per pair of members. Messages are CBOR-encoded when sent, coalesced into frames of about
 * 12 KB (never above 64 KiB) once the I/O callbacks of the current event-loop turn have run
 * (setImmediate: replies to many packets that arrived together share frames and packets),
 * and handed to the channel only while its
 * `bufferedAmount` is under a bound (werift's SCTP collapses when too much is queued).
 * Messages larger than 16 KiB are chunked. Offers and answers are signed (see
 * signaling/descriptions.ts), an offer carries the receiver's challenge (challenges.ts), and
 * they travel through the signaling server for a member's first link, and over the mesh
 * (SignalRelay through a linked member) for every other.
 *
 * Length: about 40 lines above the ~800-line guideline (838). Every method here reads or changes
 * the private link table (a link's state, its current and next peer connection, its signal
 * path), so the signaling half (#onPayload to #onRelay) cannot leave without exposing that
 * table; moving it to a webrtc_signaling.ts part with an explicit link-table interface is
 * the planned split.
 */
import type { IceServer } from "./ice_server.ts";
import { type Clock, realClock } from "../core/clock.ts";
import { ShoalError, TimeoutError } from "../core/errors.ts";
import { type Logger, silentLogger } from "../core/log.ts";
import type { SignalChannel } from "../signaling/client.ts";
import {
  ChallengeBook,
  checkHelloOrChallenge,
  ClockOffsets,
  type ClockSample,
  clockSample,
  signChallenge,
  signHello,
} from "../signaling/challenges.ts";
import {
  checkDescription,
  checkIdBinding,
  type DescriptionKeys,
  isRefusal,
  signAnswer,
  signOffer,
  unreachableReply,
} from "../signaling/descriptions.ts";
import type {
  Description,
  SignalAnswer,
  SignalChallenge,
  SignalHello,
  SignalOffer,
  SignalPayload,
  SignalReject,
  SignalRelay,
} from "../signaling/messages.ts";
import {
  SignalAnswerMsg,
  SignalChallengeMsg,
  SignalHelloMsg,
  SignalOfferMsg,
  SignalRejectMsg,
} from "../signaling/messages.ts";
import { encodeValue } from "../wire/codec.ts";
import { ReplayGuard, roomId, rotatingKey } from "../wire/envelope.ts";
import { Kind } from "../wire/kinds.ts";
import { Limits } from "../wire/limits.ts";
import { type Message, validateMessage } from "../wire/message.ts";
import { Reassembler } from "./chunks.ts";
import { frameOf, FrameQueue } from "./frame_queue.ts";
import { isKind } from "./messages.ts";
import { admitForward, forwardOf, OriginGuard, OriginSigner } from "./origin.ts";
import {
  type ConnectOptions,
  type IdBinding,
  type NodeId,
  type SelectedPair,
  type Transport,
  type TransportHandlers,
  type TransportStats,
} from "./transport.ts";
import { LinkFrames, safely } from "./webrtc_frames.ts";
import { type DtlsIdentity, WebRtcPeer } from "./webrtc_peer.ts";
import type { Link, SignalingCounters, SignalPath, WebRtcTransportOptions } from "./webrtc_types.ts";

export type { SignalingCounters, WebRtcTransportOptions } from "./webrtc_types.ts";
export { createDtlsIdentity, type DtlsIdentity } from "./webrtc_peer.ts";

const noopHandlers: TransportHandlers = { message() {}, linkUp() {}, linkDown() {} };
const noop = () => {};

/** A Transport over werift data channels. */
export class WebRtcTransport implements Transport {
  readonly self: NodeId;
  readonly #keys: DescriptionKeys;
  readonly #iceServers: IceServer[];
  readonly #iceExtra: string[];
  readonly #signaling: SignalChannel | undefined;
  readonly #connectTimeoutMs: number;
  readonly #maxLinks: number;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #guard = new ReplayGuard(60_000, 10_000);
  readonly #challenges = new ChallengeBook();
  readonly #offsets: ClockOffsets;
  readonly #relayHook: WebRtcTransportOptions["relayHook"];
  readonly #dtls: DtlsIdentity | undefined;
  #binding: IdBinding | undefined;
  /** This process's Ed25519 key pair: it tags (origin MAC) what this member sends through relays. */
  readonly #signer = new OriginSigner();
  readonly #origins = new OriginGuard(this.#signer);
  #handlers: TransportHandlers = noopHandlers;
  #links = new Map<NodeId, Link>();
  #routes = new Map<NodeId, NodeId>();
  readonly #frames: LinkFrames;
  readonly #stats: TransportStats;
  #signalCounters: SignalingCounters = {
    refused: 0,
    lastRefusal: null,
    relayed: 0,
    offersViaServer: 0,
    offersViaMesh: 0,
  };
  #closed = false;

  constructor(opts: WebRtcTransportOptions) {
    if (!opts.self) throw new TypeError("Cannot create a WebRTC transport: self is empty");
    this.self = opts.self;
    this.#keys = {
      room: roomId(opts.cluster),
      ...rotatingKey(opts.cluster, opts.secret, opts.previousSecret, "signal"),
      self: opts.self,
    };
    this.#iceServers = opts.iceServers ?? [];
    this.#iceExtra = opts.iceAdditionalHostAddresses ?? [];
    this.#signaling = opts.signaling;
    this.#connectTimeoutMs = opts.connectTimeoutMs ?? 15_000;
    this.#maxLinks = opts.maxLinks ?? 256;
    this.#clock = opts.clock ?? realClock;
    this.#log = opts.log ?? silentLogger;
    this.#offsets = new ClockOffsets(this.#log);
    this.#relayHook = opts.relayHook;
    this.#dtls = opts.dtls;
    this.#frames = new LinkFrames({
      self: this.self,
      log: this.#log,
      handlers: () => this.#handlers,
      link: (peer) => this.#links.get(peer),
      drop: (link, reason, err) => this.#drop(link, reason, err),
      onRelay: (from, m) => this.#onRelay(from, m),
      onPayload: (from, payload, path) => this.#onPayload(from, payload, path),
      admitForward: (f, inner) => admitForward(this.#origins, f, inner, this.#binding, this.#stats),
    }, opts);
    this.#stats = this.#frames.stats;
    this.#signaling?.onSignal((from, payload) => this.#onServerSignal(from, payload));
  }

  setHandlers(h: TransportHandlers): void {
    this.#handlers = h;
  }

  get fingerprint(): string | undefined {
    return this.#dtls?.fingerprint;
  }

  get signingKey(): string {
    return this.#signer.publicKey;
  }

  bindIds(binding: IdBinding): void {
    this.#binding = binding;
  }

  stats(): TransportStats {
    return this.#frames.snapshot();
  }

  /** Counters of signed-description handling and relaying. */
  signalingCounters(): SignalingCounters {
    return { ...this.#signalCounters };
  }

  /** The latest clock-offset estimate per peer (its clock minus ours), measured at each link setup. */
  clockOffsets(): Record<NodeId, ClockSample> {
    return this.#offsets.all();
  }

  isLinked(peer: NodeId): boolean {
    return this.#links.get(peer)?.state === "open";
  }

  links(): NodeId[] {
    return [...this.#links.values()].filter((l) => l.state === "open").map((l) => l.peer);
  }

  selectedPair(peer: NodeId): SelectedPair | undefined {
    const l = this.#links.get(peer);
    return l?.state === "open" ? l.rtc.selectedPair() : undefined;
  }

  setRoute(to: NodeId, via: NodeId | null): void {
    if (via === null) this.#routes.delete(to);
    else this.#routes.set(to, via);
  }

  routeOf(to: NodeId): NodeId | undefined {
    return this.#routes.get(to);
  }

  connect(peer: NodeId, options: ConnectOptions = {}): Promise<void> {
    if (this.#closed) return Promise.reject(new ShoalError("SHUTDOWN", `Cannot connect to ${peer}: transport closed`));
    if (peer === this.self) return Promise.reject(new RangeError("Cannot connect to self"));
    const existing = this.#links.get(peer);
    if (existing?.state === "open") return Promise.resolve();
    let path: SignalPath;
    if (options.via !== undefined) {
      if (!this.isLinked(options.via)) {
        return Promise.reject(
          new ShoalError("UNREACHABLE", `Cannot connect to ${peer} via ${options.via}: no link to ${options.via}`),
        );
      }
      path = { kind: "relay", via: options.via };
    } else if (this.#signaling) {
      path = { kind: "server" };
    } else {
      return Promise.reject(
        new ShoalError("UNREACHABLE", `Cannot connect to ${peer}: no signaling server and no relay given`),
      );
    }
    return new Promise<void>((resolve, reject) => {
      if (existing) {
        existing.waiters.push({ resolve, reject });
        return;
      }
      if (this.#links.size >= this.#maxLinks) {
        reject(new ShoalError("OVERLOADED", `Cannot connect to ${peer}: ${this.#maxLinks} links already`));
        return;
      }
      const link = this.#newLink(peer, "offering", path, options.timeoutMs ?? this.#connectTimeoutMs);
      link.waiters.push({ resolve, reject });
      void this.#offer(link);
    });
  }

  disconnect(peer: NodeId): void {
    const link = this.#links.get(peer);
    if (!link) return;
    this.#drop(link, "closed locally", new ShoalError("REFUSED", `Connection to ${peer} closed locally`), true);
  }

  /**
   * Negotiates a replacement for an open link through the signaling server (new candidates,
   * new NAT mappings) while the old connection keeps carrying frames; the replacement takes
   * over once its channel opens. The peer answers such an offer the same way (its old
   * connection is kept until the new one opens); if both ends relink at once, the glare rule
   * picks one offer. Nothing happens without ICE servers (members on one LAN), without a
   * signaling server, on a link being set up, or while a replacement is being negotiated.
   */
  relink(peer: NodeId): void {
    const link = this.#links.get(peer);
    // Only members given STUN/TURN servers relink: their paths go through NATs that can
    // rebind. On one LAN (host candidates only) a silent link is a busy or dead member.
    if (this.#closed || !this.#signaling || this.#iceServers.length === 0 || link?.state !== "open" || link.next) {
      return;
    }
    this.#log.info("transport.relink", { peer });
    const rtc = this.#startNext(link);
    const next = link.next!;
    // Like a first offer, a relink offer carries the receiver's challenge: hello first.
    const hello = signHello(this.#keys, peer, link.key);
    next.nonce = hello.nonce;
    next.pending = { helloSentMs: this.#clock.now() };
    if (!this.#sendSignal({ kind: "server" }, peer, hello)) return this.#endNext(link, rtc);
    void (async () => {
      let sdp: string;
      try {
        sdp = await rtc.createOffer();
      } catch {
        return this.#endNext(link, rtc);
      }
      if (link.next?.rtc !== rtc || !link.next.pending) return;
      link.next.pending.sdp = sdp;
      this.#relinkOfferWhenReady(link);
    })();
  }

  /** Sends the relink offer once both its SDP and the peer's challenge are in. */
  #relinkOfferWhenReady(link: Link): void {
    const next = link.next;
    const p = next?.pending;
    if (!next || !p?.sdp || !p.challenge) return;
    next.pending = null;
    const offer = signOffer(this.#keys, link.peer, p.sdp, this.#clock.now(), p.challenge, link.key);
    next.nonce = offer.nonce;
    this.#signalCounters.offersViaServer++;
    if (!this.#sendSignal({ kind: "server" }, link.peer, offer)) this.#endNext(link, next.rtc);
  }

  /**
   * Starts the replacement connection of an open link. It takes over once its channel
   * opens; until then, and while it drains afterwards, the old one keeps working.
   */
  #startNext(link: Link): WebRtcPeer {
    const rtc = this.#newPeer();
    const timer = this.#clock.setTimer(this.#connectTimeoutMs, () => this.#endNext(link, rtc));
    link.next = { rtc, nonce: "", timer, pending: null };
    rtc.events = {
      open: () => {
        if (link.next?.rtc !== rtc || this.#links.get(link.peer) !== link) return;
        link.next.timer.cancel();
        link.next = null;
        const old = link.rtc;
        link.rtc = rtc;
        link.waitingLow = false;
        this.#bindPeer(link, rtc);
        // Frames the old connection still delivers are read; it closes once drained.
        old.events = {
          open: noop,
          close: noop,
          bufferedLow: noop,
          message: (bytes) => {
            if (this.#links.get(link.peer) === link) this.#frames.onFrame(link, bytes);
          },
        };
        // The peer may take a while to move over (its own open event): close late.
        this.#clock.setTimer(this.#connectTimeoutMs, () => void old.close());
        this.#log.info("transport.relinked", { peer: link.peer });
        this.#frames.flush(link);
      },
      close: () => this.#endNext(link, rtc),
      message: (bytes) => {
        if (this.#links.get(link.peer) === link) this.#frames.onFrame(link, bytes);
      },
      bufferedLow: noop,
    };
    return rtc;
  }

  /** Gives up a replacement connection (failed, timed out, or the link went away). */
  #endNext(link: Link, rtc: WebRtcPeer): void {
    if (link.next?.rtc === rtc) {
      link.next.timer.cancel();
      link.next = null;
      // The current connection closed while this one was being negotiated: the link is gone.
      if (link.rtc.closed && this.#links.get(link.peer) === link) {
        this.#drop(link, "relink failed", new ShoalError("UNREACHABLE", `Connection to ${link.peer} lost`));
      }
    }
    if (link.rtc !== rtc) void rtc.close();
  }

  /**
   * Queues `msg` for `to` (directly, or through its route). The message is encoded at
   * once; frames are cut and handed to the channel after the I/O callbacks of this
   * event-loop turn (setImmediate), so messages produced while handling a burst of
   * incoming packets travel together.
   */
  send(to: NodeId, msg: Message): boolean {
    if (this.#closed) return false;
    const link = this.#links.get(to);
    if (link?.state === "open") return this.#frames.enqueue(link, msg);
    const via = this.#routes.get(to);
    if (via !== undefined && via !== to) {
      const relay = this.#links.get(via);
      if (relay?.state === "open") {
        return this.#frames.enqueue(
          relay,
          forwardOf(this.#signer, this.self, to, this.#binding?.originKeyOf?.(to), msg),
        );
      }
    }
    this.#stats.droppedNoRoute++;
    return false;
  }

  /**
   * Sends raw bytes as one data-channel message on the link to `peer`, bypassing encoding.
   * For fuzz tests of the receiving side; counts nothing.
   * @returns false when there is no open link or the channel refused the bytes
   */
  sendRawFrame(peer: NodeId, bytes: Uint8Array): boolean {
    const link = this.#links.get(peer);
    if (!link || link.state !== "open") return false;
    try {
      link.rtc.send(bytes);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Bytes waiting in this member's queue for `peer` (not yet handed to the data channel).
   * Senders of bulk data can pace themselves on it; the queue refuses messages beyond
   * Limits.maxQueuedBytesPerPeer.
   */
  queuedBytes(peer: NodeId): number {
    return this.#links.get(peer)?.queue.bytes ?? 0;
  }

  /** The werift peer of an open link (for tests of socket-level guards). */
  peerOf(peer: NodeId): WebRtcPeer | undefined {
    return this.#links.get(peer)?.rtc;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const links = [...this.#links.values()];
    for (const l of links) {
      this.#drop(
        l,
        "closed locally",
        new ShoalError("SHUTDOWN", `Connection to ${l.peer} closed: transport closed`),
        true,
      );
    }
    await Promise.all(links.map(async (l) => {
      await l.rtc.drained();
      await l.rtc.close();
    }));
    this.#routes.clear();
  }

  // ---------------------------------------------------------------- links

  #newLink(peer: NodeId, state: "offering" | "answering", path: SignalPath, timeoutMs: number): Link {
    const link: Link = {
      peer,
      state,
      rtc: this.#newPeer(),
      nonce: "",
      key: this.#keys.key,
      pending: null,
      path,
      queue: new FrameQueue(Limits.maxQueuedBytesPerPeer),
      reasm: new Reassembler(),
      timer: null,
      waiters: [],
      flushScheduled: false,
      waitingLow: false,
      nextChunkId: 0,
      next: null,
    };
    this.#links.set(peer, link);
    this.#bindPeer(link, link.rtc);
    link.timer = this.#clock.setTimer(timeoutMs, () => {
      link.timer = null;
      if (this.#links.get(peer) === link && link.state !== "open") {
        this.#drop(
          link,
          "connect timeout",
          new TimeoutError(`Cannot connect to ${peer}: no open channel after ${timeoutMs} ms`),
        );
      }
    });
    return link;
  }

  #newPeer(): WebRtcPeer {
    return new WebRtcPeer({
      iceServers: this.#iceServers,
      iceAdditionalHostAddresses: this.#iceExtra,
      dtls: this.#dtls,
    });
  }

  #bindPeer(link: Link, rtc: WebRtcPeer): void {
    rtc.events = {
      open: () => {
        if (link.rtc !== rtc || this.#links.get(link.peer) !== link) return;
        this.#opened(link);
      },
      close: (reason) => {
        if (link.rtc !== rtc || this.#links.get(link.peer) !== link) return;
        // A replacement is being negotiated: the peer may have moved to it already.
        if (link.next) return;
        this.#drop(link, reason, new ShoalError("UNREACHABLE", `Cannot connect to ${link.peer}: ${reason}`));
      },
      message: (bytes) => {
        if (link.rtc !== rtc || this.#links.get(link.peer) !== link) return;
        this.#frames.onFrame(link, bytes);
      },
      bufferedLow: () => {
        if (link.rtc !== rtc || !link.waitingLow) return;
        link.waitingLow = false;
        this.#frames.flush(link);
      },
    };
  }

  /** Swaps in a fresh peer connection for a link being (re)negotiated. */
  #replacePeer(link: Link): void {
    const old = link.rtc;
    link.rtc = this.#newPeer();
    this.#bindPeer(link, link.rtc);
    void old.close();
  }

  #opened(link: Link): void {
    link.state = "open";
    link.timer?.cancel();
    link.timer = null;
    this.#routes.delete(link.peer);
    this.#log.debug("transport.link_up", { peer: link.peer });
    for (const w of link.waiters.splice(0)) w.resolve();
    safely(this.#log, () => this.#handlers.linkUp(link.peer));
    this.#frames.flush(link);
  }

  /** Drops `link` after its connection `rtc` failed with `err`, unless the link moved on to another connection meanwhile. */
  #dropFailed(link: Link, rtc: Link["rtc"], reason: string, err: unknown): void {
    if (link.rtc !== rtc) return;
    this.#drop(
      link,
      reason,
      new ShoalError("UNREACHABLE", `Cannot connect to ${link.peer}: ${(err as Error).message}`),
    );
  }

  /**
   * Removes a link; emits linkDown if it was open, rejects connect() waiters otherwise.
   * `graceful`: tell the peer with a LinkClose (werift itself does not) and close the
   * connection once that went out.
   */
  #drop(link: Link, reason: string, err: Error, graceful = false): void {
    if (this.#links.get(link.peer) !== link) return;
    this.#links.delete(link.peer);
    link.timer?.cancel();
    link.timer = null;
    if (link.next) this.#endNext(link, link.next.rtc);
    const wasOpen = link.state === "open";
    if (wasOpen && graceful && link.rtc.open) {
      try {
        link.rtc.send(frameOf([encodeValue({ t: Kind.LinkClose, reason })]));
      } catch {
        // the channel is already failing; the peer will notice on its own
      }
      const rtc = link.rtc;
      void rtc.drained().then(() => rtc.close());
    } else {
      void link.rtc.close();
    }
    link.queue.clear();
    link.reasm.clear();
    for (const w of link.waiters.splice(0)) w.reject(err);
    if (wasOpen) {
      this.#log.debug("transport.link_down", { peer: link.peer, reason });
      safely(this.#log, () => this.#handlers.linkDown(link.peer, reason));
    }
  }

  // ---------------------------------------------------------------- signaling

  async #offer(link: Link): Promise<void> {
    const rtc = link.rtc;
    // Ask for the receiver's challenge while ICE gathers; the offer waits for both.
    this.#sendHello(link);
    let sdp: string;
    try {
      sdp = await rtc.createOffer();
    } catch (err) {
      this.#dropFailed(link, rtc, "offer failed", err);
      return;
    }
    if (link.rtc !== rtc || this.#links.get(link.peer) !== link || link.state !== "offering" || !link.pending) return;
    link.pending.sdp = sdp;
    this.#offerWhenReady(link);
  }

  #sendHello(link: Link): void {
    const hello = signHello(this.#keys, link.peer, link.key);
    link.nonce = hello.nonce;
    link.pending = { helloSentMs: this.#clock.now(), sdp: link.pending?.sdp }; // a retried hello keeps the SDP
    this.#sendOrDrop(link, hello, "hello");
  }

  #offerWhenReady(link: Link): void {
    const p = link.pending;
    if (!p?.sdp || !p.challenge) return;
    link.pending = null;
    const offer = signOffer(this.#keys, link.peer, p.sdp, this.#clock.now(), p.challenge, link.key);
    link.nonce = offer.nonce;
    if (link.path.kind === "server") this.#signalCounters.offersViaServer++;
    else this.#signalCounters.offersViaMesh++;
    this.#sendOrDrop(link, offer, "offer");
  }

  #sendOrDrop(link: Link, payload: SignalPayload, what: string): void {
    if (this.#sendSignal(link.path, link.peer, payload)) return;
    const how = link.path.kind === "server" ? "the signaling server" : `relay ${link.path.via}`;
    this.#drop(
      link,
      `${what} not sent`,
      new ShoalError("UNREACHABLE", `Cannot connect to ${link.peer}: cannot send the ${what} through ${how}`),
    );
  }

  #sendSignal(path: SignalPath, to: NodeId, payload: SignalPayload): boolean {
    if (path.kind === "server") return this.#signaling?.send(to, payload) ?? false;
    const relayMsg = { t: Kind.SignalRelay, from: this.self, to, d: payload };
    const via = this.#links.get(path.via);
    if (via?.state !== "open") return false;
    // The relay may be the peer itself (a renegotiation over an existing link).
    return this.#frames.enqueue(via, relayMsg);
  }

  #reject(path: SignalPath, to: NodeId, re: string, code: SignalReject["code"], reason: string): void {
    this.#sendSignal(path, to, { t: Kind.SignalReject, from: this.self, to, re, code, reason });
  }

  #onServerSignal(from: NodeId, payload: unknown): void {
    if (this.#closed) return;
    this.#onPayload(from, payload, { kind: "server" });
  }

  /** A description or reject from `from` (as vouched for by the server or the relay). */
  #onPayload(from: NodeId, payload: unknown, path: SignalPath): void {
    const v = validateMessage(payload);
    const d: SignalPayload | null = !v.ok
      ? null
      : isKind(SignalOfferMsg, v.msg) || isKind(SignalAnswerMsg, v.msg) || isKind(SignalRejectMsg, v.msg) ||
          isKind(SignalHelloMsg, v.msg) || isKind(SignalChallengeMsg, v.msg)
      ? v.msg
      : null;
    if (!d) {
      this.#stats.droppedInvalid++;
      return;
    }
    if (d.from !== from) {
      this.#stats.droppedInvalid++;
      return;
    }
    if (d.t === Kind.SignalReject) return this.#onReject(d as SignalReject);
    if (d.t === Kind.SignalHello || d.t === Kind.SignalChallenge) {
      return this.#onHelloOrChallenge(d as SignalHello | SignalChallenge, path);
    }
    const desc = d as Description;
    const now = this.#clock.now();
    const checked = checkDescription(desc, this.#keys, this.#guard, now, this.#challenges);
    const foreign = isRefusal(checked) ? null : checkIdBinding(desc, this.#binding?.fingerprintOf(from));
    if (foreign) this.#binding?.refused(from, foreign.reason);
    const refusal = foreign ?? checked;
    if (isRefusal(refusal)) {
      this.#refuse(path, from, d.t === Kind.SignalOffer ? "offer" : "answer", refusal, desc.nonce);
      // A refused answer also ends our attempt: the answerer cannot be trusted.
      if (d.t === Kind.SignalAnswer) {
        const link = this.#links.get(from);
        if (link && link.state === "offering" && link.nonce === (d as SignalAnswer).re) {
          this.#drop(
            link,
            "answer refused",
            new ShoalError(refusal.code, `Cannot connect to ${from}: ${refusal.reason}`),
          );
        }
      }
      return;
    }
    if (d.t === Kind.SignalOffer) {
      const offer = d as SignalOffer;
      // Our challenge out, its arrival and the offer's departure on their clock, the offer's arrival on ours.
      this.#offsets.record(from, clockSample(refusal.challengeIssuedMs!, offer.cts, offer.ts, now));
      void this.#onOffer(offer, path, refusal.key);
    } else void this.#onAnswer(d as SignalAnswer);
  }

  /** A hello (we answer with a challenge) or a challenge (our offer may go out). */
  #onHelloOrChallenge(m: SignalHello | SignalChallenge, path: SignalPath): void {
    const checked = checkHelloOrChallenge(m, this.#keys);
    if ("code" in checked) {
      const hello = m.t === Kind.SignalHello;
      return this.#refuse(
        path,
        m.from,
        hello ? "hello" : "challenge",
        checked,
        hello ? (m as SignalHello).nonce : undefined,
      );
    }
    const now = this.#clock.now();
    if (m.t === Kind.SignalHello) {
      const hello = m as SignalHello;
      const ch = this.#challenges.issue(hello.from, now);
      this.#sendSignal(path, hello.from, signChallenge(this.#keys, hello, ch, now, checked.key));
      return;
    }
    const c = m as SignalChallenge;
    const link = this.#links.get(c.from);
    const next = link?.next;
    if (link?.state === "open" && next?.pending && next.nonce === c.re && !next.pending.challenge) {
      next.pending.challenge = { ch: c.ch, arrivedMs: now };
      return this.#relinkOfferWhenReady(link);
    }
    if (!link || link.state !== "offering" || !link.pending || link.nonce !== c.re || link.pending.challenge) return;
    this.#offsets.record(c.from, clockSample(link.pending.helloSentMs, c.ts, c.ts, now));
    link.pending.challenge = { ch: c.ch, arrivedMs: now };
    this.#offerWhenReady(link);
  }

  /** Counts and logs a refused signaling message, and answers it along `path` when `re` is given. */
  #refuse(path: SignalPath, from: NodeId, kind: string, r: Pick<SignalReject, "code" | "reason">, re?: string): void {
    this.#signalCounters.refused++;
    this.#signalCounters.lastRefusal = r.reason;
    this.#log.warn("signaling.refused", { peer: from, kind, reason: r.reason });
    if (re !== undefined) this.#reject(path, from, re, r.code, r.reason);
  }

  async #onOffer(offer: SignalOffer, path: SignalPath, key: Uint8Array): Promise<void> {
    const peer = offer.from;
    let link = this.#links.get(peer);
    if (link?.state === "offering" && this.self < peer) {
      // Glare: both sides offered at once; the lower id's offer wins, so ignore theirs.
      return;
    }
    // The peer renegotiates an open link (it lost the path, or relinks). Members given
    // STUN/TURN servers answer with a replacement connection and keep the old one until the
    // new one opens; others drop the old link.
    if (link?.state === "open" && this.#iceServers.length > 0) return this.#answerRelink(link, offer, path, key);
    if (link) {
      if (link.state === "open") {
        this.#drop(link, "peer reconnected", new ShoalError("UNREACHABLE", `Connection to ${peer} replaced`));
        link = undefined;
      } else {
        link.state = "answering";
        link.pending = null;
        link.path = path;
        this.#replacePeer(link);
      }
    }
    if (!link) {
      if (this.#links.size >= this.#maxLinks) {
        this.#reject(path, peer, offer.nonce, "REFUSED", `member has ${this.#maxLinks} links already`);
        return;
      }
      link = this.#newLink(peer, "answering", path, this.#connectTimeoutMs);
    }
    const rtc = link.rtc;
    let sdp: string;
    try {
      sdp = await rtc.acceptOffer(offer.sdp);
    } catch (err) {
      if (link.rtc === rtc) {
        this.#drop(
          link,
          "bad offer",
          new ShoalError("UNREACHABLE", `Cannot connect to ${peer}: ${(err as Error).message}`),
        );
      }
      return;
    }
    if (link.rtc !== rtc || this.#links.get(peer) !== link) return;
    // Under the secret the offer was signed with (during a rotation, the peer may not know the new one yet).
    link.key = key;
    const answer = signAnswer(this.#keys, peer, sdp, offer.nonce, this.#clock.now(), key);
    link.nonce = answer.nonce;
    if (!this.#sendSignal(path, peer, answer)) {
      this.#drop(
        link,
        "answer not sent",
        new ShoalError("UNREACHABLE", `Cannot connect to ${peer}: cannot send the answer`),
      );
    }
  }

  async #answerRelink(link: Link, offer: SignalOffer, path: SignalPath, key: Uint8Array): Promise<void> {
    if (link.next) {
      // Glare: both ends relink at once; the lower id's offer wins.
      if (this.self < link.peer) return;
      this.#endNext(link, link.next.rtc);
    }
    const rtc = this.#startNext(link);
    let sdp: string;
    try {
      sdp = await rtc.acceptOffer(offer.sdp);
    } catch {
      return this.#endNext(link, rtc);
    }
    if (link.next?.rtc !== rtc) return;
    // Under the secret the relink offer was signed with, as for a first offer.
    const answer = signAnswer(this.#keys, link.peer, sdp, offer.nonce, this.#clock.now(), key);
    link.next.nonce = answer.nonce;
    if (!this.#sendSignal(path, link.peer, answer)) this.#endNext(link, rtc);
  }

  async #onAnswer(answer: SignalAnswer): Promise<void> {
    const link = this.#links.get(answer.from);
    const next = link?.next;
    if (link?.state === "open" && next && next.nonce === answer.re) {
      try {
        await next.rtc.acceptAnswer(answer.sdp);
      } catch {
        this.#endNext(link, next.rtc);
      }
      return;
    }
    if (!link || link.state !== "offering" || link.nonce !== answer.re) return; // stale
    const rtc = link.rtc;
    try {
      await rtc.acceptAnswer(answer.sdp);
    } catch (err) {
      this.#dropFailed(link, rtc, "bad answer", err);
    }
  }

  #onReject(r: SignalReject): void {
    if (r.to !== this.self) return;
    for (const link of this.#links.values()) {
      if (link.state !== "open" && link.nonce === r.re) {
        const previous = this.#keys.previousKey;
        if (r.code === "AUTH_FAILED" && link.pending && previous && link.key !== previous) {
          // A secret rotation in progress: the peer may know only the previous secret.
          link.key = previous;
          this.#sendHello(link);
          return;
        }
        this.#log.warn("signaling.rejected", { peer: link.peer, code: r.code, reason: r.reason });
        this.#drop(link, "rejected", new ShoalError(r.code, `Cannot connect to ${link.peer}: ${r.reason}`));
        return;
      }
    }
  }

  #onRelay(from: NodeId, m: SignalRelay): void {
    if (m.to === this.self) {
      this.#onPayload(m.from, m.d, { kind: "relay", via: from });
      return;
    }
    // Forward for others, only along a direct link.
    const next = this.#links.get(m.to);
    if (next?.state !== "open") {
      const back = this.#links.get(from);
      const reply = unreachableReply(m, this.self);
      if (reply && back?.state === "open") this.#frames.enqueue(back, reply);
      this.#stats.droppedNoRoute++;
      return;
    }
    const out = this.#relayHook ? this.#relayHook(m) : m;
    if (!out) return;
    this.#signalCounters.relayed++;
    this.#stats.forwarded++;
    this.#frames.enqueue(next, { ...out, t: Kind.SignalRelay });
  }
}
