/**
 * The signaling client: one WebSocket to `${baseUrl}/signal`, a hello into the cluster's
 * room, the list of ids in the room, and relayed offers/answers. Reconnects with
 * exponential backoff; messages sent while disconnected wait in a bounded queue.
 */
import { type Clock, realClock, type Timer } from "../core/clock.ts";
import { ShoalError } from "../core/errors.ts";
import { type Logger, silentLogger } from "../core/log.ts";
import { openWebSocket } from "../runtime/websocket.ts";
import type { ClientSocket } from "./local_socket.ts";
import { roomId } from "../wire/envelope.ts";
import { type ClientMessage, parseSocketMessage, ServerMessage, SOCKET_PROTOCOL_VERSION } from "./socket_protocol.ts";

type NodeId = string;

/** What the transport needs from a signaling path: send a payload to a member, receive payloads. */
export interface SignalChannel {
  /** Sends `payload` to member `to`; false when it cannot be queued. */
  send(to: NodeId, payload: unknown): boolean;
  /** Installs the receiver of payloads (one per channel). */
  onSignal(handler: (from: NodeId, payload: unknown) => void): void;
}

export interface SignalingClientOptions {
  /** Base URL of a member's HTTP address or a standalone signaling server (`http://host:port`), or the full ws:// URL of `/signal`. */
  url: string;
  /** Cluster name; the room is its hash. */
  cluster: string;
  /** This member's id. */
  self: NodeId;
  clock?: Clock;
  log?: Logger;
  /** PEM certificate(s) of a private CA trusted for `wss://` (`--tls-ca`). @default system roots only */
  ca?: string;
  /** Opens the socket instead of `new WebSocket(url)` (a member's own hub: see local_socket.ts). */
  socket?: () => ClientSocket;
  /** Messages kept while disconnected. @default 256 */
  maxQueue?: number;
  /** @default 250 */
  backoffMinMs?: number;
  /** @default 5000 */
  backoffMaxMs?: number;
}

/**
 * Turns a base URL into the WebSocket URL of its signaling endpoint.
 * @example
 * ```ts
 * signalUrl("http://127.0.0.1:5701"); // "ws://127.0.0.1:5701/signal"
 * ```
 */
export function signalUrl(url: string): string {
  const u = new URL(url);
  if (u.protocol === "http:") u.protocol = "ws:";
  else if (u.protocol === "https:") u.protocol = "wss:";
  else if (u.protocol !== "ws:" && u.protocol !== "wss:") {
    throw new TypeError(`Cannot use ${url} for signaling: expected http(s):// or ws(s)://`);
  }
  if (!u.pathname.endsWith("/signal")) u.pathname = u.pathname.replace(/\/$/, "") + "/signal";
  return u.toString();
}

/** A connection to a signaling server. */
export class SignalingClient implements SignalChannel {
  readonly url: string;
  readonly room: string;
  readonly self: NodeId;
  #clock: Clock;
  #log: Logger;
  #ca: string | undefined;
  #socket: (() => ClientSocket) | undefined;
  #ws: ClientSocket | null = null;
  #welcomed = false;
  #closed = false;
  #peers: NodeId[] = [];
  #queue: ClientMessage[] = [];
  #maxQueue: number;
  #backoffMs: number;
  #backoffMinMs: number;
  #backoffMaxMs: number;
  #retry: Timer | null = null;
  #signal: (from: NodeId, payload: unknown) => void = () => {};
  #peerHandlers: Array<(peers: NodeId[]) => void> = [];
  #ready: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  /** Messages dropped (queue full, server error replies). */
  dropped = 0;
  /** The last error the server reported. */
  lastError: string | null = null;

  constructor(opts: SignalingClientOptions) {
    this.url = signalUrl(opts.url);
    this.room = roomId(opts.cluster);
    this.self = opts.self;
    this.#clock = opts.clock ?? realClock;
    this.#log = opts.log ?? silentLogger;
    this.#ca = opts.ca;
    this.#socket = opts.socket;
    this.#maxQueue = opts.maxQueue ?? 256;
    this.#backoffMinMs = opts.backoffMinMs ?? 250;
    this.#backoffMaxMs = opts.backoffMaxMs ?? 5_000;
    this.#backoffMs = this.#backoffMinMs;
  }

  /** Whether the server has welcomed us on the current socket. */
  get connected(): boolean {
    return this.#welcomed && !this.#closed;
  }

  /**
   * Connects (and keeps reconnecting). Resolves once the server welcomed us.
   * @param timeoutMs reject with UNREACHABLE after this long
   */
  start(timeoutMs = 10_000): Promise<void> {
    if (this.#closed) return Promise.reject(new ShoalError("SHUTDOWN", "Cannot start signaling: client closed"));
    const p = new Promise<void>((resolve, reject) => {
      if (this.#welcomed) return resolve();
      const entry = { resolve, reject };
      this.#ready.push(entry);
      const timer = this.#clock.setTimer(timeoutMs, () => {
        const i = this.#ready.indexOf(entry);
        if (i < 0) return;
        this.#ready.splice(i, 1);
        reject(
          new ShoalError(
            "UNREACHABLE",
            `Cannot reach the signaling server at ${this.url}${this.lastError ? `: ${this.lastError}` : ""}`,
          ),
        );
      });
      entry.resolve = () => {
        timer.cancel();
        resolve();
      };
      entry.reject = (e) => {
        timer.cancel();
        reject(e);
      };
    });
    if (!this.#ws && !this.#retry) this.#open();
    return p;
  }

  /** Ids of the other members in the room, as last reported by the server. */
  peers(): NodeId[] {
    return [...this.#peers];
  }

  /** Calls `fn` whenever the room's member list changes. */
  onPeers(fn: (peers: NodeId[]) => void): void {
    this.#peerHandlers.push(fn);
  }

  onSignal(handler: (from: NodeId, payload: unknown) => void): void {
    this.#signal = handler;
  }

  send(to: NodeId, payload: unknown): boolean {
    if (this.#closed) return false;
    const m: ClientMessage = { type: "signal", to, payload };
    if (this.#welcomed && this.#ws?.readyState === 1) {
      this.#ws.send(JSON.stringify(m));
      return true;
    }
    if (this.#queue.length >= this.#maxQueue) {
      this.dropped++;
      return false;
    }
    this.#queue.push(m);
    return true;
  }

  /** Closes the socket and stops reconnecting. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#retry?.cancel();
    this.#retry = null;
    this.#queue = [];
    try {
      this.#ws?.close();
    } catch {
      // already closed
    }
    this.#ws = null;
    for (const r of this.#ready.splice(0)) r.reject(new ShoalError("SHUTDOWN", "Signaling client closed"));
  }

  #open(): void {
    if (this.#closed) return;
    let ws: ClientSocket;
    try {
      ws = this.#socket ? this.#socket() : openWebSocket(this.url, { ca: this.#ca });
    } catch (err) {
      this.lastError = String((err as Error).message ?? err);
      this.#scheduleRetry();
      return;
    }
    this.#ws = ws;
    this.#log.debug("signaling.connecting", { url: this.url });
    ws.binaryType = "arraybuffer";
    ws.onopen = () => {
      ws.send(
        JSON.stringify(
          { type: "hello", v: SOCKET_PROTOCOL_VERSION, room: this.room, id: this.self } satisfies ClientMessage,
        ),
      );
    };
    ws.onmessage = (ev) => this.#onMessage(ev.data);
    ws.onerror = (ev) => {
      // Deno says why (e.g. "invalid peer certificate: UnknownIssuer"); Bun does not.
      const why = (ev as ErrorEvent).message;
      this.lastError = why ? `connection failed: ${why}` : "connection failed";
      if (why && /certificate|TLS|issuer/i.test(why) && this.#ca === undefined) {
        this.lastError += " (for a certificate from a private CA, pass --tls-ca FILE)";
      }
    };
    ws.onclose = () => {
      if (this.#ws !== ws) return;
      this.#ws = null;
      const was = this.#welcomed;
      this.#welcomed = false;
      if (was) this.#log.info("signaling.disconnected", { url: this.url });
      this.#scheduleRetry();
    };
  }

  #scheduleRetry(): void {
    if (this.#closed || this.#retry) return;
    const delay = this.#backoffMs;
    this.#backoffMs = Math.min(this.#backoffMaxMs, this.#backoffMs * 2);
    this.#retry = this.#clock.setTimer(delay, () => {
      this.#retry = null;
      this.#open();
    });
  }

  #onMessage(data: unknown): void {
    const m = parseSocketMessage(ServerMessage, data);
    if (!m) {
      this.dropped++;
      return;
    }
    switch (m.type) {
      case "welcome": {
        this.#welcomed = true;
        this.#backoffMs = this.#backoffMinMs;
        this.lastError = null;
        this.#setPeers(m.peers);
        const queued = this.#queue.splice(0);
        for (const q of queued) this.#ws?.send(JSON.stringify(q));
        for (const r of this.#ready.splice(0)) r.resolve();
        this.#log.debug("signaling.welcome", { url: this.url, peers: m.peers.length });
        break;
      }
      case "peers":
        this.#setPeers(m.peers);
        break;
      case "signal":
        try {
          this.#signal(m.from, m.payload);
        } catch (err) {
          this.#log.warn("signaling.handler_error", { error: String(err) });
        }
        break;
      case "error":
        this.lastError = m.reason;
        this.dropped++;
        // NO_PEER answers an offer to a member that is not on the server: after a member dies the
        // master keeps trying to reach it for a while (a split looks the same), once every 10 s.
        // Expected, so not a warning; the count and last reason stay in `dropped` and `lastError`.
        if (m.code === "NO_PEER") this.#log.debug("signaling.server_error", { code: m.code, reason: m.reason });
        else this.#log.warn("signaling.server_error", { code: m.code, reason: m.reason });
        break;
    }
  }

  #setPeers(peers: NodeId[]): void {
    this.#peers = peers.filter((p) => p !== this.self);
    for (const h of this.#peerHandlers) h(this.peers());
  }
}
