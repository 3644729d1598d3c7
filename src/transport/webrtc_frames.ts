/**
 * The link/frame side of the WebRTC transport: what goes over an open link. Encodes and
 * queues messages per link (chunking those above 16 KiB), cuts frames once the current
 * event-loop turn's I/O callbacks ran (at once on a quiet connection), hands them to the data channel only while its
 * `bufferedAmount` is under a bound (back-pressure), and decodes, reassembles, forwards and
 * delivers what arrives. It owns the transport's counters; the links themselves, their
 * setup and teardown, and signaling stay with {@link WebRtcTransport} (webrtc.ts), its host.
 */
import { ShoalError } from "../core/errors.ts";
import type { Logger } from "../core/log.ts";
import type { SignalRelay } from "../signaling/messages.ts";
import { SignalRelayMsg } from "../signaling/messages.ts";
import { decodeFrame, encodeValue } from "../wire/codec.ts";
import { Kind } from "../wire/kinds.ts";
import { Limits } from "../wire/limits.ts";
import { kindName, type Message, validateMessage } from "../wire/message.ts";
import { CHUNK_THRESHOLD_BYTES, splitIntoChunks } from "./chunks.ts";
import { frameOf } from "./frame_queue.ts";
import { ChunkMsg, type Forward, forwardableInner, ForwardMsg, isKind } from "./messages.ts";
import { emptyStats, type NodeId, type TransportHandlers, type TransportStats } from "./transport.ts";
import type { Link, SignalPath } from "./webrtc_types.ts";

/** What the frame side needs from the transport that owns the links. */
export interface FrameHost {
  readonly self: NodeId;
  readonly log: Logger;
  /** The handlers the transport's user set (they may change). */
  handlers(): TransportHandlers;
  /** The current link to `peer`, whatever its state. */
  link(peer: NodeId): Link | undefined;
  /** Removes a link (see WebRtcTransport's drop). */
  drop(link: Link, reason: string, err: Error): void;
  /** A SignalRelay that arrived from `from` (direct, or forwarded to this member). */
  onRelay(from: NodeId, m: SignalRelay): void;
  /** A signed description that arrived straight over a link. */
  onPayload(from: NodeId, payload: unknown, path: SignalPath): void;
  /** Whether a Forward for this member may be delivered: its origin is proved (origin.ts admitForward). */
  admitForward(f: Forward, inner: Message): boolean;
}

/** Calls `fn`, logging what it throws (a user handler must never break the transport). */
export function safely(log: Logger, fn: () => void): void {
  try {
    fn();
  } catch (err) {
    log.error("transport.handler_error", { error: String((err as Error)?.stack ?? err) });
  }
}

/** Frames, chunks, flushing and back-pressure of a WebRTC transport's links. */
export class LinkFrames {
  /** The transport's counters (the signaling side counts into them too). */
  readonly stats: TransportStats = emptyStats();
  /** Encoded bytes queued per message kind (kinds are small integers, see wire/kinds.ts). */
  readonly #bytesByKind = new Float64Array(256);
  readonly #host: FrameHost;
  readonly #targetFrameBytes: number;
  readonly #maxBufferedBytes: number;

  constructor(host: FrameHost, opts: { targetFrameBytes?: number; maxBufferedBytes?: number }) {
    this.#host = host;
    this.#targetFrameBytes = Math.min(opts.targetFrameBytes ?? Limits.targetFrameBytes, Limits.maxFrameBytes - 1024);
    this.#maxBufferedBytes = opts.maxBufferedBytes ?? 64 * 1024;
  }

  /** A copy of the counters, with the bytes sent per kind by name. */
  snapshot(): TransportStats {
    const bytesSentByKind: Record<string, number> = {};
    this.#bytesByKind.forEach((n, t) => {
      if (n > 0) bytesSentByKind[kindName(t)] = n;
    });
    return { ...this.stats, bytesSentByKind };
  }

  // ---------------------------------------------------------------- sending

  enqueue(link: Link, msg: Message): boolean {
    // Encoded now, not when the frame is cut: the caller may reuse or change the object
    // after send() returns (as the memory transport allows too).
    let bytes: Uint8Array;
    try {
      bytes = encodeValue(msg);
    } catch {
      this.stats.droppedInvalid++;
      return false;
    }
    if (bytes.byteLength > CHUNK_THRESHOLD_BYTES) {
      const frame = frameOf([bytes]);
      if (frame.byteLength > Limits.maxMessageBytes) {
        this.stats.droppedOverflow++;
        return false;
      }
      const chunks = splitIntoChunks(link.nextChunkId++, frame).map((c) => encodeValue(c));
      let total = 0;
      for (const c of chunks) total += c.byteLength;
      if (!link.queue.fits(total)) {
        this.stats.droppedOverflow++;
        return false;
      }
      for (const c of chunks) link.queue.push(c);
    } else {
      if (!link.queue.fits(bytes.byteLength)) {
        this.stats.droppedOverflow++;
        return false;
      }
      link.queue.push(bytes);
    }
    this.stats.messagesSent++;
    if (msg.t >= 0 && msg.t < 256) this.#bytesByKind[msg.t] += bytes.byteLength;
    if (!link.flushScheduled && !link.waitingLow) {
      link.flushScheduled = true;
      // On a link with sparse traffic and a quiet connection (at most one DATA chunk awaiting
      // its SACK, see WebRtcPeer.quiet) the frame leaves once the current task's synchronous work
      // is done (a microtask): what that work queues still shares the frame, and the message does
      // not wait for the rest of the event-loop turn (a hop of a sequential call). Otherwise the
      // frame waits for the turn's I/O callbacks, so replies to a burst of packets share frames
      // and packets.
      if (link.sparse && link.rtc.quiet) queueMicrotask(() => this.#scheduledFlush(link, false));
      else setImmediate(() => this.#scheduledFlush(link, true));
    }
    return true;
  }

  #scheduledFlush(link: Link, endOfTurn: boolean): void {
    link.flushScheduled = false;
    // Only frames cut at the end of a turn tell whether traffic comes in bursts.
    if (endOfTurn) link.sparse = link.queue.length <= 1;
    this.flush(link);
  }

  flush(link: Link): void {
    if (link.state !== "open" || this.#host.link(link.peer) !== link) return;
    if (link.next && link.rtc.closed) return; // frames wait for the replacement connection
    while (link.queue.length > 0) {
      if (link.rtc.bufferedAmount >= this.#maxBufferedBytes) {
        link.waitingLow = true;
        return;
      }
      if (!this.#sendFrame(link, link.queue.takeFrame(this.#targetFrameBytes)!)) return;
    }
  }

  #sendFrame(link: Link, frame: Uint8Array): boolean {
    try {
      link.rtc.send(frame);
    } catch (err) {
      this.#host.drop(
        link,
        `send failed: ${(err as Error).message}`,
        new ShoalError("UNREACHABLE", `Link to ${link.peer} failed`),
      );
      return false;
    }
    this.stats.framesSent++;
    this.stats.bytesSent += frame.byteLength;
    return true;
  }

  // ---------------------------------------------------------------- receiving

  onFrame(link: Link, bytes: Uint8Array): void {
    this.stats.framesReceived++;
    this.stats.bytesReceived += bytes.byteLength;
    const d = decodeFrame(bytes, Limits.maxFrameBytes);
    if (d.dropped > 0) this.stats.droppedInvalid += d.dropped;
    const msgs = d.msgs;
    const deliver = () => {
      for (let i = 0; i < msgs.length; i++) this.#deliver(link, msgs[i], false);
    };
    const h = this.#host.handlers();
    if (msgs.length > 1 && h.frame) h.frame(deliver);
    else deliver();
  }

  #deliver(link: Link, m: Message, reassembled: boolean): void {
    switch (m.t) {
      case Kind.Chunk: {
        if (reassembled || !isKind(ChunkMsg, m)) {
          this.stats.droppedInvalid++;
          return;
        }
        const r = link.reasm.add(m);
        if ("invalid" in r) {
          this.stats.droppedInvalid++;
          return;
        }
        if ("done" in r) {
          const inner = decodeFrame(r.done, Limits.maxMessageBytes + 16);
          if (inner.dropped > 0) this.stats.droppedInvalid += inner.dropped;
          for (const x of inner.msgs) this.#deliver(link, x, true);
        }
        return;
      }
      case Kind.Forward: {
        if (!isKind(ForwardMsg, m)) return;
        const f = m;
        if (f.to === this.#host.self) {
          const inner = validateMessage(f.m);
          if (!inner.ok || !forwardableInner(inner.msg)) {
            this.stats.droppedInvalid++;
            return;
          }
          if (!this.#host.admitForward(f, inner.msg)) return;
          if (isKind(SignalRelayMsg, inner.msg)) return this.#host.onRelay(f.from, inner.msg);
          this.stats.messagesReceived++;
          safely(this.#host.log, () => this.#host.handlers().message(f.from, inner.msg));
          return;
        }
        const next = this.#host.link(f.to);
        if (f.ttl > 0 && next?.state === "open") {
          this.stats.forwarded++;
          // Passed on unchanged but for the hop count: the origin's MAC covers the rest.
          this.enqueue(next, { ...f, t: Kind.Forward, ttl: f.ttl - 1 });
        } else {
          this.stats.droppedNoRoute++;
        }
        return;
      }
      case Kind.SignalRelay:
        if (isKind(SignalRelayMsg, m)) this.#host.onRelay(link.peer, m);
        return;
      case Kind.LinkClose:
        if (!reassembled) {
          this.#host.drop(
            link,
            "closed by peer",
            new ShoalError("UNREACHABLE", `Connection to ${link.peer} closed by peer`),
          );
        }
        return;
      case Kind.SignalOffer:
      case Kind.SignalAnswer:
      case Kind.SignalReject:
        // A description sent straight over a link counts as relayed by that peer.
        return this.#host.onPayload(link.peer, m, { kind: "relay", via: link.peer });
      default:
        this.stats.messagesReceived++;
        // Inline rather than through #safe: this runs for every message received.
        try {
          this.#host.handlers().message(link.peer, m);
        } catch (err) {
          this.#host.log.error("transport.handler_error", { error: String((err as Error)?.stack ?? err) });
        }
    }
  }
}
