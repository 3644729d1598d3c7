/**
 * The tiny bootstrap server: a `/signal` WebSocket endpoint on a hono app, with rooms keyed
 * by the hash of the cluster name. It keeps nothing but open sockets: it forwards a
 * `signal` to the member of the same room it names, tells members who is in their room,
 * and forgets a member when its socket closes. Limits: message size, sockets per IP,
 * message rate per socket and per IP, members per room; a socket that keeps sending
 * refused messages (invalid, over-rate, for unknown ids) is cut off (SECURITY.md lists the figures). It counts what it relayed per (from, to)
 * pair so tests can prove that relayed signaling bypassed it.
 */
import { Hono } from "hono";
import type { MiddlewareHandler } from "hono";
import type { UpgradeWebSocket, WSContext } from "hono/ws";
import { type Clock, realClock } from "../core/clock.ts";
import { type Logger, silentLogger } from "../core/log.ts";
import { clientAddress, serve, type Served } from "../runtime/serve.ts";
import { wsUpgrader } from "../runtime/websocket.ts";
import {
  ClientMessage,
  MAX_ROOM_MEMBERS,
  MAX_SOCKET_MESSAGE_BYTES,
  parseSocketMessage,
  type ServerMessage,
} from "./socket_protocol.ts";

/** Limits and dependencies of a signaling endpoint. */
export interface SignalingOptions {
  /** Open sockets allowed from one IP address. @default 64 */
  maxSocketsPerIp?: number;
  /** Open sockets in total. @default 4096 */
  maxSockets?: number;
  /** Sustained messages per second per socket. @default 50 */
  ratePerSecond?: number;
  /** Burst of messages per socket. @default 100 */
  rateBurst?: number;
  /** Sustained messages per second from all the sockets of one IP address. @default 200 */
  ratePerIpPerSecond?: number;
  /** Burst of messages from one IP address. @default 400 */
  rateBurstPerIp?: number;
  /**
   * Refused messages (invalid, over-rate, or for an id not in the room) a socket may send
   * in a row before it is closed (1008); one is forgiven every `60 / maxStrikes` seconds.
   * @default 8
   */
  maxStrikes?: number;
  /** (from, to) pairs whose relay counts are kept. @default 10000 */
  maxCounters?: number;
  clock?: Clock;
  log?: Logger;
}

/** Counters of a signaling endpoint. */
export interface SignalingStats {
  /** Open sockets. */
  sockets: number;
  /** Rooms with at least one member. */
  rooms: number;
  /** Signals relayed in total. */
  relayedTotal: number;
  /** Signals relayed per `"from>to"` pair. */
  relayed: Record<string, number>;
  /** Messages dropped for rate, shape, size or unknown target. */
  dropped: number;
  /** Upgrades refused for the per-IP or total socket limit. */
  refused: number;
  /** Sockets closed for sending too many refused messages. */
  cutOff: number;
  /** Messages that arrived on a socket after it was cut off or closed (ignored). */
  afterClose: number;
}

interface Conn {
  ws: WSContext;
  ip: string;
  room: string | null;
  id: string | null;
  bucket: Bucket;
  /** Refused messages still held against the socket: a bucket of `maxStrikes` that refills over a minute. */
  strikes: Bucket;
  /**
   * We closed it (cut off, oversized message): it has left its room and its messages are
   * ignored, but it counts against the socket limits until the runtime reports it closed
   * (a client that never answers the close frame keeps holding one of its IP's sockets).
   */
  closing: boolean;
}

interface Bucket {
  tokens: number;
  refilledAt: number;
}

interface IpState {
  sockets: number;
  bucket: Bucket;
}

/** Refills a token bucket for the time since its last refill. @returns the tokens now in it */
function refill(b: Bucket, now: number, perSecond: number, burst: number): number {
  b.tokens = Math.min(burst, b.tokens + (Math.max(0, now - b.refilledAt) / 1000) * perSecond);
  b.refilledAt = now;
  return b.tokens;
}

/** The state of one signaling endpoint: open sockets and counters. */
export class SignalingHub {
  readonly #rooms = new Map<string, Map<string, Conn>>();
  readonly #perIp = new Map<string, IpState>();
  readonly #relayed = new Map<string, number>();
  #sockets = 0;
  #relayedTotal = 0;
  #dropped = 0;
  #refused = 0;
  #cutOff = 0;
  #afterClose = 0;
  readonly #opts: Required<Omit<SignalingOptions, "clock" | "log">>;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #conns = new Set<Conn>();

  constructor(opts: SignalingOptions = {}) {
    this.#opts = {
      maxSocketsPerIp: opts.maxSocketsPerIp ?? 64,
      maxSockets: opts.maxSockets ?? 4096,
      ratePerSecond: opts.ratePerSecond ?? 50,
      rateBurst: opts.rateBurst ?? 100,
      ratePerIpPerSecond: opts.ratePerIpPerSecond ?? 200,
      rateBurstPerIp: opts.rateBurstPerIp ?? 400,
      maxStrikes: opts.maxStrikes ?? 8,
      maxCounters: opts.maxCounters ?? 10_000,
    };
    this.#clock = opts.clock ?? realClock;
    this.#log = opts.log ?? silentLogger;
  }

  /** A snapshot of the counters. */
  stats(): SignalingStats {
    return {
      sockets: this.#sockets,
      rooms: this.#rooms.size,
      relayedTotal: this.#relayedTotal,
      relayed: Object.fromEntries(this.#relayed),
      dropped: this.#dropped,
      refused: this.#refused,
      cutOff: this.#cutOff,
      afterClose: this.#afterClose,
    };
  }

  /** Whether another socket from `ip` may open. */
  admits(ip: string): boolean {
    return this.#sockets < this.#opts.maxSockets && (this.#perIp.get(ip)?.sockets ?? 0) < this.#opts.maxSocketsPerIp;
  }

  /** Counts a refused upgrade. */
  refuse(): void {
    this.#refused++;
  }

  /** Closes every socket. */
  closeAll(): void {
    for (const c of [...this.#conns]) {
      try {
        c.ws.close(1001, "server shutting down");
      } catch {
        // already closed
      }
      this.#onClose(c);
    }
  }

  /** The per-socket event handlers hono's upgradeWebSocket wants. */
  events(ip: string) {
    let conn: Conn | null = null;
    return {
      onOpen: (_ev: Event, ws: WSContext) => {
        if (!this.admits(ip)) {
          this.#refused++;
          ws.close(1008, "too many sockets");
          return;
        }
        const now = this.#clock.now();
        conn = {
          ws,
          ip,
          room: null,
          id: null,
          bucket: { tokens: this.#opts.rateBurst, refilledAt: now },
          strikes: { tokens: this.#opts.maxStrikes, refilledAt: now },
          closing: false,
        };
        this.#conns.add(conn);
        this.#sockets++;
        const st = this.#perIp.get(ip);
        if (st) st.sockets++;
        else this.#perIp.set(ip, { sockets: 1, bucket: { tokens: this.#opts.rateBurstPerIp, refilledAt: now } });
      },
      onMessage: (ev: MessageEvent, ws: WSContext) => {
        if (!conn) return;
        this.#onMessage(conn, ev.data, ws);
      },
      onClose: () => {
        if (conn) this.#onClose(conn);
        conn = null;
      },
      onError: () => {
        if (conn) this.#onClose(conn);
        conn = null;
      },
    };
  }

  #send(c: Conn, m: ServerMessage): void {
    try {
      c.ws.send(JSON.stringify(m));
    } catch {
      // the socket is closing; its close event cleans up
    }
  }

  /** Takes a token from the socket's bucket and its IP's; false when either is empty. */
  #takeToken(c: Conn): boolean {
    const now = this.#clock.now();
    const ip = this.#perIp.get(c.ip);
    const own = refill(c.bucket, now, this.#opts.ratePerSecond, this.#opts.rateBurst);
    const shared = ip ? refill(ip.bucket, now, this.#opts.ratePerIpPerSecond, this.#opts.rateBurstPerIp) : 1;
    if (own < 1 || shared < 1) return false;
    c.bucket.tokens -= 1;
    if (ip) ip.bucket.tokens -= 1;
    return true;
  }

  /** Counts a refused message; past the limit, the socket is closed. @returns whether it was closed */
  #strike(c: Conn): boolean {
    this.#dropped++;
    const max = this.#opts.maxStrikes;
    if (refill(c.strikes, this.#clock.now(), max / 60, max) >= 2) {
      c.strikes.tokens -= 1;
      return false;
    }
    this.#cutOff++;
    this.#log.warn("signaling.cut_off", { ip: c.ip, reason: "too many refused messages" });
    this.#shut(c, 1008, "too many refused messages");
    return true;
  }

  /** Closes a socket on our side: it leaves its room now; the limits free it when the runtime says it closed. */
  #shut(c: Conn, code: number, reason: string): void {
    c.closing = true;
    this.#leaveRoom(c);
    try {
      c.ws.close(code, reason);
    } catch {
      // already closing
    }
  }

  #onMessage(c: Conn, data: unknown, _ws: WSContext): void {
    // A socket already cut off or closed: the runtime may still deliver what was in flight.
    if (!this.#conns.has(c) || c.closing) {
      this.#afterClose++;
      return;
    }
    // In UTF-8 bytes, as the limit reads (a string's length counts UTF-16 units, up to 3 bytes each).
    const size = typeof data === "string"
      ? (data.length * 3 <= MAX_SOCKET_MESSAGE_BYTES ? data.length : new TextEncoder().encode(data).byteLength)
      : (data as ArrayBuffer)?.byteLength ?? 0;
    if (size > MAX_SOCKET_MESSAGE_BYTES) {
      this.#dropped++;
      this.#shut(c, 1009, "message too large");
      return;
    }
    if (!this.#takeToken(c)) {
      if (!this.#strike(c)) {
        this.#send(c, { type: "error", code: "RATE", reason: "rate limit exceeded; message dropped" });
      }
      return;
    }
    const m = parseSocketMessage(ClientMessage, data);
    if (!m) {
      if (!this.#strike(c)) this.#send(c, { type: "error", code: "INVALID", reason: "invalid message" });
      return;
    }
    if (m.type === "hello") {
      if (c.room !== null) {
        if (!this.#strike(c)) this.#send(c, { type: "error", code: "INVALID", reason: "hello already received" });
        return;
      }
      let room = this.#rooms.get(m.room);
      if (!room) {
        room = new Map();
        this.#rooms.set(m.room, room);
      }
      const old = room.get(m.id);
      if (old && old.ip === "local" && c.ip !== "local") {
        // The member this hub runs in registered itself in process: a socket from elsewhere
        // naming its id is someone else (its id is public, from /health), and would take the
        // signals meant for it. The newest-wins rule below is for a member's own reconnects.
        this.#dropped++;
        this.#send(c, { type: "error", code: "INVALID", reason: "this id is the hub's own member" });
        this.#shut(c, 1008, "id taken");
        return;
      }
      if (old) {
        // The same member reconnected (or restarted): the newest socket wins.
        old.room = null;
        old.id = null;
        try {
          old.ws.close(1000, "replaced by a newer connection");
        } catch {
          // already closed
        }
      } else if (room.size >= MAX_ROOM_MEMBERS) {
        this.#send(c, { type: "error", code: "FULL", reason: "room is full" });
        c.ws.close(1008, "room is full");
        return;
      }
      c.room = m.room;
      c.id = m.id;
      room.set(m.id, c);
      const ids = [...room.keys()];
      this.#send(c, { type: "welcome", id: m.id, peers: ids.filter((x) => x !== m.id) });
      this.#broadcastPeers(m.room, m.id);
      return;
    }
    // signal
    if (c.room === null || c.id === null) {
      if (!this.#strike(c)) this.#send(c, { type: "error", code: "INVALID", reason: "say hello first" });
      return;
    }
    const target = this.#rooms.get(c.room)?.get(m.to);
    if (!target) {
      if (!this.#strike(c)) this.#send(c, { type: "error", code: "NO_PEER", reason: `no member ${m.to} in this room` });
      return;
    }
    this.#send(target, { type: "signal", from: c.id, payload: m.payload });
    this.#relayedTotal++;
    const key = `${c.id}>${m.to}`;
    const n = this.#relayed.get(key);
    if (n !== undefined) this.#relayed.set(key, n + 1);
    else if (this.#relayed.size < this.#opts.maxCounters) this.#relayed.set(key, 1);
  }

  #broadcastPeers(room: string, except: string | null): void {
    const members = this.#rooms.get(room);
    if (!members) return;
    const ids = [...members.keys()];
    for (const [id, c] of members) {
      if (id === except) continue;
      this.#send(c, { type: "peers", peers: ids.filter((x) => x !== id) });
    }
  }

  #onClose(c: Conn): void {
    if (!this.#conns.delete(c)) return;
    this.#sockets--;
    const ip = this.#perIp.get(c.ip);
    if (ip && --ip.sockets <= 0) this.#perIp.delete(c.ip);
    this.#leaveRoom(c);
    this.#log.debug("signaling.socket_closed", { sockets: this.#sockets });
  }

  #leaveRoom(c: Conn): void {
    if (c.room === null || c.id === null) return;
    const room = this.#rooms.get(c.room);
    if (room?.get(c.id) === c) {
      room.delete(c.id);
      if (room.size === 0) this.#rooms.delete(c.room);
      else this.#broadcastPeers(c.room, null);
    }
    c.room = null;
    c.id = null;
  }
}

/**
 * Adds the `/signal` WebSocket route and the `GET /signal/stats` counters to a hono app,
 * so any member's HTTP server can be the bootstrap.
 * @param app the hono app
 * @param upgradeWebSocket the runtime's upgrader (from wsUpgrader())
 * @param opts limits
 * @returns the hub holding the sockets and counters
 */
export function mountSignaling(
  // deno-lint-ignore no-explicit-any
  app: Hono<any>,
  // deno-lint-ignore no-explicit-any
  upgradeWebSocket: UpgradeWebSocket<any>,
  opts: SignalingOptions = {},
): SignalingHub {
  const hub = new SignalingHub(opts);
  const gate: MiddlewareHandler = async (c, next) => {
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
      return c.json({ error: "expected a WebSocket upgrade" }, 426);
    }
    if (!hub.admits(clientAddress(c))) {
      hub.refuse();
      return c.json({ error: "too many sockets" }, 429);
    }
    await next();
  };
  app.get("/signal/stats", (c) => c.json(hub.stats()));
  app.get("/signal", gate, upgradeWebSocket((c) => hub.events(clientAddress(c))));
  return hub;
}

/** A running standalone signaling server. */
export interface SignalingServer {
  url: string;
  port: number;
  hub: SignalingHub;
  stats(): SignalingStats;
  close(): Promise<void>;
}

/**
 * Starts a standalone signaling server.
 * @param opts address (`hostname`, `port`, 0 = any free port) and limits
 * @returns the running server
 * @example
 * ```ts
 * const s = await createSignalingServer({ hostname: "127.0.0.1", port: 0 });
 * console.log(s.url); // give this to nodes as --join
 * await s.close();
 * ```
 */
export async function createSignalingServer(
  opts: SignalingOptions & { hostname?: string; port: number },
): Promise<SignalingServer> {
  const app = new Hono();
  const { upgradeWebSocket, websocket } = wsUpgrader({ maxMessageBytes: MAX_SOCKET_MESSAGE_BYTES });
  const hub = mountSignaling(app, upgradeWebSocket, opts);
  app.get("/", (c) => c.json({ service: "shoal-signal", endpoint: "/signal" }));
  const served: Served = await serve({
    hostname: opts.hostname ?? "127.0.0.1",
    port: opts.port,
    fetch: app.fetch,
    websocket,
  });
  return {
    url: served.url,
    port: served.port,
    hub,
    stats: () => hub.stats(),
    close: async () => {
      hub.closeAll();
      await served.close();
    },
  };
}
