/**
 * The WebRTC transport: one werift peer connection with one ordered, reliable data channel
 * per pair of members. Messages are CBOR-encoded when sent, coalesced into frames of about
 * 12 KB (never above 64 KiB) once the I/O callbacks of the current event-loop turn have run
 * (setImmediate: replies to many packets that arrived together share frames and packets;
 * on an idle link with sparse traffic once the sending task's synchronous work is done),
 * and handed to the channel only while its
 * `bufferedAmount` is under a bound (werift's SCTP collapses when too much is queued).
 * Messages larger than 16 KiB are chunked. Offers and answers are signed (see
 * signaling/descriptions.ts), an offer carries the receiver's challenge (challenges.ts), and
 * they travel through the signaling server for a member's first link, and over the mesh
 * (SignalRelay through a linked member) for every other.
 *
 * The signaling half (hellos and challenges, signed offers and answers, glare, rejects,
 * relayed signaling) is webrtc_signaling.ts; it reaches the links through an explicit
 * link-table interface (`LinkTable`) that this transport implements.
 */
import type { IceServer } from "./ice_server.ts";
import { type Clock, realClock } from "../core/clock.ts";
import { ShoalError, TimeoutError } from "../core/errors.ts";
import { type Logger, silentLogger } from "../core/log.ts";
import type { SignalChannel } from "../signaling/client.ts";
import type { ClockSample } from "../signaling/challenges.ts";
import { signHello } from "../signaling/challenges.ts";
import type { DescriptionKeys } from "../signaling/descriptions.ts";
import { encodeValue } from "../wire/codec.ts";
import { roomId, rotatingKey } from "../wire/envelope.ts";
import { Kind } from "../wire/kinds.ts";
import { Limits } from "../wire/limits.ts";
import { clip, type Message } from "../wire/message.ts";
import { Reassembler } from "./chunks.ts";
import { MAX_CLOSE_REASON } from "./messages.ts";
import { frameOf, FrameQueue } from "./frame_queue.ts";
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
import { LinkSignaling, type LinkTable } from "./webrtc_signaling.ts";
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
  readonly #sig: LinkSignaling;
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
    this.#dtls = opts.dtls;
    this.#frames = new LinkFrames({
      self: this.self,
      log: this.#log,
      handlers: () => this.#handlers,
      link: (peer) => this.#links.get(peer),
      drop: (link, reason, err) => this.#drop(link, reason, err),
      onRelay: (from, m) => this.#sig.onRelay(from, m),
      onPayload: (from, payload, path) => this.#sig.onPayload(from, payload, path),
      admitForward: (f, inner) => admitForward(this.#origins, f, inner, this.#binding, this.#stats),
    }, opts);
    this.#stats = this.#frames.stats;
    this.#sig = new LinkSignaling(this.#linkTable(), opts.relayHook);
    this.#signaling?.onSignal((from, payload) => this.#sig.onServerSignal(from, payload));
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
    return this.#sig.counters();
  }

  /** The latest clock-offset estimate per peer (its clock minus ours), measured at each link setup. */
  clockOffsets(): Record<NodeId, ClockSample> {
    return this.#sig.clockOffsets();
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
      void this.#sig.offer(link);
    });
  }

  connectProgress(peer: NodeId): number | undefined {
    const link = this.#links.get(peer);
    return link && link.state !== "open" ? link.progressAt : undefined;
  }

  disconnect(peer: NodeId): void {
    const link = this.#links.get(peer);
    if (!link) return;
    this.#drop(link, "closed locally", new ShoalError("REFUSED", `Connection to ${peer} closed locally`), true);
  }

  /** Closes the link to `peer` at once, without a goodbye (see {@link Transport.reset}). */
  reset(peer: NodeId): void {
    const link = this.#links.get(peer);
    if (!link) return;
    this.#drop(link, "reset", new ShoalError("UNREACHABLE", `Connection to ${peer} reset: it carried nothing`));
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
    if (!this.#sig.sendSignal({ kind: "server" }, peer, hello)) return this.#endNext(link, rtc);
    void (async () => {
      let sdp: string;
      try {
        sdp = await rtc.createOffer();
      } catch {
        return this.#endNext(link, rtc);
      }
      if (link.next?.rtc !== rtc || !link.next.pending) return;
      link.next.pending.sdp = sdp;
      this.#sig.relinkOfferWhenReady(link);
    })();
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
   * incoming packets travel together; on a quiet link with sparse traffic, as soon as
   * the current task's synchronous work is done (see webrtc_frames.ts).
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

  /** The link table as the signaling half sees it. */
  #linkTable(): LinkTable {
    return {
      self: this.self,
      keys: this.#keys,
      clock: this.#clock,
      log: this.#log,
      stats: this.#stats,
      signaling: this.#signaling,
      relinks: this.#iceServers.length > 0,
      maxLinks: this.#maxLinks,
      connectTimeoutMs: this.#connectTimeoutMs,
      closed: () => this.#closed,
      binding: () => this.#binding,
      get: (peer) => this.#links.get(peer),
      all: () => this.#links.values(),
      size: () => this.#links.size,
      newLink: (peer, state, path, timeoutMs) => this.#newLink(peer, state, path, timeoutMs),
      replacePeer: (link) => this.#replacePeer(link),
      drop: (link, reason, err) => this.#drop(link, reason, err),
      dropFailed: (link, rtc, reason, err) => this.#dropFailed(link, rtc, reason, err),
      startNext: (link) => this.#startNext(link),
      endNext: (link, rtc) => this.#endNext(link, rtc),
      enqueue: (link, msg: Message) => this.#frames.enqueue(link, msg),
    };
  }

  #newLink(peer: NodeId, state: "offering" | "answering", path: SignalPath, timeoutMs: number): Link {
    const link: Link = {
      peer,
      state,
      rtc: this.#newPeer(),
      nonce: "",
      key: this.#keys.key,
      pending: null,
      path,
      progressAt: this.#clock.now(),
      queue: new FrameQueue(Limits.maxQueuedBytesPerPeer),
      reasm: new Reassembler(),
      timer: null,
      waiters: [],
      flushScheduled: false,
      sparse: true,
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
      progress: () => {
        if (link.rtc === rtc) link.progressAt = this.#clock.now();
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
        link.rtc.send(frameOf([encodeValue({ t: Kind.LinkClose, reason: clip(reason, MAX_CLOSE_REASON) })]));
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
}
