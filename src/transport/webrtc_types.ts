/**
 * The types of the WebRTC transport (webrtc.ts): its options, its per-peer link state and
 * its signaling counters.
 */
import type { IceServer } from "./ice_server.ts";
import type { Clock, Timer } from "../core/clock.ts";
import type { Logger } from "../core/log.ts";
import type { SignalChannel } from "../signaling/client.ts";
import type { SignalRelay } from "../signaling/messages.ts";
import type { Reassembler } from "./chunks.ts";
import type { FrameQueue } from "./frame_queue.ts";
import type { NodeId } from "./transport.ts";
import type { DtlsIdentity, WebRtcPeer } from "./webrtc_peer.ts";

/** Options of {@link WebRtcTransport}. */
export interface WebRtcTransportOptions {
  /** This member's id. */
  self: NodeId;
  /** Cluster name. */
  cluster: string;
  /** Cluster secret; signs offers and answers. */
  secret: string;
  /** During a secret rotation, the previous secret: descriptions signed with it are accepted too. */
  previousSecret?: string;
  /** STUN/TURN servers, always passed to werift explicitly. @default [] */
  iceServers?: IceServer[];
  /** Extra host addresses offered as ICE candidates. @default [] */
  iceAdditionalHostAddresses?: string[];
  /** The signaling server connection used when `connect()` has no `via`. */
  signaling?: SignalChannel;
  /** Default budget for `connect()`. @default 15000 */
  connectTimeoutMs?: number;
  /** Target frame size. @default Limits.targetFrameBytes (12,000 bytes) */
  targetFrameBytes?: number;
  /** Bytes allowed in the channel's buffer before coalescing waits. @default 65536 */
  maxBufferedBytes?: number;
  /** Links (open or being set up) at most. @default 256 */
  maxLinks?: number;
  /** The member's one DTLS certificate (createDtlsIdentity()); without it ids cannot be bound (werift's shared one). */
  dtls?: DtlsIdentity;
  clock?: Clock;
  log?: Logger;
  /**
   * Called with each SignalRelay this member forwards for others; return the message to
   * forward (possibly altered) or null to drop it. For tests that play a malicious relay.
   */
  relayHook?: (m: SignalRelay) => SignalRelay | null;
}

/** Where a link's offer/answer travels. */
export type SignalPath = { kind: "server" } | { kind: "relay"; via: NodeId };

export interface Waiter {
  resolve(): void;
  reject(err: Error): void;
}

export interface Link {
  peer: NodeId;
  state: "offering" | "answering" | "open";
  rtc: WebRtcPeer;
  /** Nonce of our hello, then of our offer (offering), or of our answer (answering). */
  nonce: string;
  /** The key we sign with towards this peer (the previous secret's after it refused the current one). */
  key: Uint8Array;
  /** Offering: our hello, and the SDP and challenge as they arrive; the offer goes out once both are in. */
  pending: { helloSentMs: number; sdp?: string; challenge?: { ch: string; arrivedMs: number } } | null;
  path: SignalPath;
  /** When the set-up last moved on (created, a signal for it arrived, its connection changed state). */
  progressAt: number;
  queue: FrameQueue;
  reasm: Reassembler;
  timer: Timer | null;
  waiters: Waiter[];
  flushScheduled: boolean;
  /**
   * Whether the last frame cut at the end of an event-loop turn held one message: traffic on
   * this link is sparse (request/response one at a time), so a message on a quiet connection
   * leaves at once (webrtc_frames.ts).
   */
  sparse: boolean;
  waitingLow: boolean;
  nextChunkId: number;
  /** A replacement connection being negotiated while this open link keeps carrying traffic (relink). */
  next: {
    rtc: WebRtcPeer;
    /** Nonce of our hello, then of our offer or answer. */
    nonce: string;
    timer: Timer;
    /** A relink offer waiting for its SDP and the peer's challenge (null once sent, or when answering). */
    pending: { helloSentMs: number; sdp?: string; challenge?: { ch: string; arrivedMs: number } } | null;
  } | null;
}

/** Signaling counters of a {@link WebRtcTransport}. */
export interface SignalingCounters {
  /** Descriptions refused (bad signature, fingerprint, replay, wrong target). */
  refused: number;
  /** The last refusal's reason. */
  lastRefusal: string | null;
  /** SignalRelay messages forwarded for other members. */
  relayed: number;
  /** Offers sent through the signaling server / over the mesh. */
  offersViaServer: number;
  offersViaMesh: number;
}
