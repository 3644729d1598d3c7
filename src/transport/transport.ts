/**
 * The Transport interface: links between members, ordered reliable delivery per link (as a
 * WebRTC data channel gives), batching and back-pressure inside. Two implementations:
 * `memory` (simulated network in virtual time) and `webrtc` (werift). Protocol code sees
 * only this interface.
 */
import type { Message } from "../wire/message.ts";

export type NodeId = string;

export interface TransportHandlers {
  /** A validated message from a peer (direct or forwarded through a relay). */
  message(from: NodeId, msg: Message): void;
  /** A direct link to `peer` is open. */
  linkUp(peer: NodeId): void;
  /** A direct link to `peer` closed. Protocols treat this as a hint to probe, never as death. */
  linkDown(peer: NodeId, reason: string): void;
  /**
   * Optional: wraps the delivery of one received frame's messages (`deliver` calls
   * `message` for each of them), so that what they make their receiver send can be gathered
   * and sent once the frame is done (MessageRouter.afterFrame). Transports without frames
   * deliver message by message.
   */
  frame?(deliver: () => void): void;
}

export interface TransportStats {
  framesSent: number;
  framesReceived: number;
  bytesSent: number;
  bytesReceived: number;
  messagesSent: number;
  messagesReceived: number;
  /** Frames or messages that failed validation (malformed, oversized, unknown kind). */
  droppedInvalid: number;
  /** Messages refused because a queue or buffer limit was reached. */
  droppedOverflow: number;
  /** Messages sent to a peer with neither a link nor a route. */
  droppedNoRoute: number;
  /** Messages forwarded on behalf of other members. */
  forwarded: number;
  /**
   * Relayed messages for this member dropped because their origin is not proved: an unlisted
   * or keyless origin, a bad origin MAC, or a replayed counter (transport/origin.ts).
   */
  droppedForged: number;
  /**
   * Encoded bytes of the messages this member queued, by message kind name (a chunked
   * message counts once, under its own kind; a relayed one under Forward). Transports that
   * do not encode leave it out.
   */
  bytesSentByKind?: Record<string, number>;
}

export function emptyStats(): TransportStats {
  return {
    framesSent: 0,
    framesReceived: 0,
    bytesSent: 0,
    bytesReceived: 0,
    messagesSent: 0,
    messagesReceived: 0,
    droppedInvalid: 0,
    droppedOverflow: 0,
    droppedNoRoute: 0,
    forwarded: 0,
    droppedForged: 0,
  };
}

/** An ICE candidate type (RFC 8445 §5.1.1); "unknown" when the WebRTC library does not tell. */
export type CandidateType = "host" | "srflx" | "prflx" | "relay" | "unknown";

/** The candidate types of a link's selected ICE candidate pair: this end's and the peer's. */
export interface SelectedPair {
  local: CandidateType;
  remote: CandidateType;
}

export interface ConnectOptions {
  /** A member this node already has a link to, which relays the signaling (offer/answer). */
  via?: NodeId;
  /** Give up after this long. @default 15000 */
  timeoutMs?: number;
}

/**
 * How a transport learns which certificate each member id is bound to (the membership's
 * member list: trust on first join), and reports a link attempt that claims a bound id
 * with another certificate. See SECURITY.md, "Member ids are bound to certificates".
 */
export interface IdBinding {
  /** The certificate fingerprint member `id` joined with, or undefined when `id` is not a listed member. */
  fingerprintOf(id: NodeId): string | undefined;
  /** A link attempt claiming `claimed` with another certificate was refused (count it). */
  refused(claimed: NodeId, reason: string): void;
  /**
   * The listed public key (64 hex digits) of `id`: relayed messages from `id` are checked,
   * and those this member relays to `id` tagged, with the pair key derived from it. Null when
   * `id` is not listed or has no key (its relayed messages are dropped, and this member's to
   * it go untagged), undefined before this member has a member list (nothing is checked).
   * Left out: relayed messages are neither checked nor tagged.
   */
  originKeyOf?(id: NodeId): string | null | undefined;
  /** A relayed message claiming origin `claimed` was dropped (see transport/origin.ts). */
  forged?(claimed: NodeId, reason: string): void;
}

export interface Transport {
  readonly self: NodeId;
  /**
   * The fingerprint ("sha-256 AB:CD:…") of the one certificate this member links with; it
   * is carried in the member's join request and member-list entry. Undefined: the
   * transport cannot tell (ids stay unbound).
   */
  readonly fingerprint?: string;
  /**
   * The Ed25519 public key (64 hex digits) of this member's process, carried next to
   * `fingerprint`: with it and its own secret, each other member derives the pairwise key that
   * tags messages relayed between the two (origin.ts). Undefined: untagged.
   */
  readonly signingKey?: string;
  /** Installs the id binding; offers and answers claiming a bound id with another certificate are refused. */
  bindIds?(binding: IdBinding): void;
  /**
   * Queues a message for `to`. Delivery is in order per destination. Returns false when the
   * message was dropped (no link and no route, or a queue limit); drops are counted.
   */
  send(to: NodeId, msg: Message): boolean;
  /** Opens a direct link; resolves once it can carry messages, rejects on failure or timeout. */
  connect(peer: NodeId, options?: ConnectOptions): Promise<void>;
  /** Closes the direct link to `peer`, if any. */
  disconnect(peer: NodeId): void;
  /**
   * When the link being set up to `peer` last made progress: started, a signal for it
   * arrived (challenge, offer, answer), its connection changed state. Undefined when no link
   * to `peer` is being set up. A set-up silent for long is likely lost (a signal that went
   * missing, a stalled connection): the membership gives it up and makes it again.
   * Transports that cannot tell leave it out.
   */
  connectProgress?(peer: NodeId): number | undefined;
  /**
   * Sets up the open link to `peer` again from scratch (new ICE candidates and mappings),
   * for a link that stopped carrying anything back while the peer may be alive (a NAT that
   * rebound its ports). Transports whose links cannot go stale leave it out.
   */
  relink?(peer: NodeId): void;
  /**
   * Closes the open link to `peer` at once, without the goodbye `disconnect` sends first and
   * waits to drain: for a link that carries nothing (wedged), so that it can be made again.
   * Transports whose `disconnect` never waits leave it out.
   */
  reset?(peer: NodeId): void;
  /** The selected ICE candidate pair of the open link to `peer` (transports without ICE leave it out). */
  selectedPair?(peer: NodeId): SelectedPair | undefined;
  /** Whether a direct link to `peer` is open. */
  isLinked(peer: NodeId): boolean;
  /** Peers with an open direct link. */
  links(): NodeId[];
  /** Routes traffic for `to` through `via` while there is no direct link; `null` removes it. */
  setRoute(to: NodeId, via: NodeId | null): void;
  /** The relay used for `to`, if any. */
  routeOf(to: NodeId): NodeId | undefined;
  /** Installs the handlers (one set per transport; use MessageRouter to fan out). */
  setHandlers(handlers: TransportHandlers): void;
  stats(): TransportStats;
  /** Closes every link. Further sends are dropped. */
  close(): Promise<void>;
}
