/**
 * WebSocket upgrades for hono apps on both runtimes. Bun upgrades through
 * `server.upgrade()` and needs a `websocket` handler object passed to `Bun.serve`; Deno
 * upgrades with `Deno.upgradeWebSocket`. {@link wsUpgrader} hides the difference; pass its
 * `websocket` to serve(). (hono's own `hono/bun` and `hono/deno` entry points touch their
 * runtime's globals when loaded, so they cannot be imported on the other runtime; these are
 * the same few lines built on `hono/ws`.)
 */
import { defineWebSocketHelper, type UpgradeWebSocket, WSContext, type WSEvents } from "hono/ws";

// deno-lint-ignore no-explicit-any
const g = globalThis as any;

/** The runtime's WebSocket upgrade middleware factory and (Bun only) its server handler. */
export interface WsUpgrader {
  // deno-lint-ignore no-explicit-any
  upgradeWebSocket: UpgradeWebSocket<any>;
  /** Pass to `serve({ websocket })`; undefined on Deno. */
  websocket: unknown;
}

interface BunSocket {
  send(data: string | ArrayBuffer | Uint8Array): void;
  close(code?: number, reason?: string): void;
  data: { events: WSEvents; url: URL; ctx?: WSContext };
  readyState: 0 | 1 | 2 | 3;
}

function bunContext(ws: BunSocket): WSContext {
  // One context per socket, so handlers may keep it.
  ws.data.ctx ??= new WSContext({
    send: (source) => ws.send(source as string | ArrayBuffer | Uint8Array),
    raw: ws,
    get readyState() {
      return ws.readyState;
    },
    url: ws.data.url,
    protocol: "",
    close: (code, reason) => ws.close(code, reason),
  });
  return ws.data.ctx;
}

function run(ws: BunSocket, fn: () => unknown): void {
  try {
    const r = fn();
    if (r instanceof Promise) r.catch(() => ws.close(1011, "handler error"));
  } catch {
    ws.close(1011, "handler error");
  }
}

const bunWebsocket = {
  open(ws: BunSocket) {
    run(ws, () => ws.data.events.onOpen?.(new Event("open"), bunContext(ws)));
  },
  close(ws: BunSocket, code?: number, reason?: string) {
    run(ws, () => ws.data.events.onClose?.(new CloseEvent("close", { code, reason }), bunContext(ws)));
  },
  message(ws: BunSocket, message: string | Uint8Array) {
    const data = typeof message === "string" ? message : message.slice().buffer;
    run(ws, () => ws.data.events.onMessage?.(new MessageEvent("message", { data }), bunContext(ws)));
  },
};

const bunUpgrade = defineWebSocketHelper((c, events) => {
  // deno-lint-ignore no-explicit-any
  const server = c.env as any;
  if (!server || typeof server.upgrade !== "function") {
    throw new TypeError("Cannot upgrade: serve() did not pass the Bun server");
  }
  if (server.upgrade(c.req.raw, { data: { events, url: new URL(c.req.url) } })) return new Response(null);
});

const denoUpgrade = defineWebSocketHelper((c, events) => {
  if (c.req.header("upgrade")?.toLowerCase() !== "websocket") return;
  const { response, socket } = g.Deno.upgradeWebSocket(c.req.raw);
  const ctx = new WSContext({
    send: (source) => socket.send(source),
    raw: socket,
    get readyState() {
      return socket.readyState;
    },
    url: null,
    protocol: "",
    close: (code, reason) => socket.close(code, reason),
  });
  socket.onopen = (ev: Event) => events.onOpen?.(ev, ctx);
  socket.onmessage = (ev: MessageEvent) => events.onMessage?.(ev, ctx);
  socket.onclose = (ev: CloseEvent) => events.onClose?.(ev, ctx);
  socket.onerror = (ev: Event) => events.onError?.(ev, ctx);
  return response;
});

/**
 * Returns the WebSocket upgrader of the current runtime.
 * @param opts `maxMessageBytes`: under Bun, a larger received message closes the socket before
 *   it is buffered (Deno's `upgradeWebSocket` takes no such limit: the handler's own check applies)
 * @returns `{ upgradeWebSocket, websocket }`
 * @example
 * ```ts
 * const { upgradeWebSocket, websocket } = wsUpgrader();
 * app.get("/ws", upgradeWebSocket(() => ({ onMessage: (e, ws) => ws.send(String(e.data)) })));
 * await serve({ port: 0, fetch: app.fetch, websocket });
 * ```
 */
export function wsUpgrader(opts: { maxMessageBytes?: number } = {}): WsUpgrader {
  if (g.Bun) {
    // Bun buffers a whole message before the handler sees it (16 MiB by default): a larger one
    // closes the socket (1009) before it is buffered. Idle sockets are pinged (`sendPings`, on by
    // default) and kept while the peer answers, whatever the HTTP idle timeout.
    const limit = opts.maxMessageBytes === undefined ? {} : { maxPayloadLength: opts.maxMessageBytes };
    return { upgradeWebSocket: bunUpgrade, websocket: { ...bunWebsocket, ...limit } };
  }
  if (g.Deno) return { upgradeWebSocket: denoUpgrade, websocket: undefined };
  throw new Error("Cannot upgrade WebSockets: this runtime is neither Bun nor Deno");
}

/** Options of {@link openWebSocket}. */
export interface ClientSocketOptions {
  /** PEM certificate(s) of a private CA to trust for `wss://`, besides the system roots. */
  ca?: string;
}

// One Deno HTTP client per CA text: it holds the root store and may be shared by sockets.
const denoClients = new Map<string, unknown>();

/**
 * Opens a client WebSocket, trusting `opts.ca` for `wss://` URLs when given (Bun takes it
 * as `tls.ca`, Deno through a `Deno.createHttpClient({ caCerts })` client).
 * @param url a ws:// or wss:// URL
 * @param opts the private CA to trust
 * @returns the socket (connecting)
 * @example
 * ```ts
 * const ws = openWebSocket("wss://127.0.0.1:5701/signal", { ca: await Deno.readTextFile("ca.pem") });
 * ```
 */
export function openWebSocket(url: string, opts: ClientSocketOptions = {}): WebSocket {
  if (opts.ca === undefined) return new WebSocket(url);
  // deno-lint-ignore no-explicit-any
  const Ws = WebSocket as any;
  if (g.Bun) return new Ws(url, { tls: { ca: opts.ca } });
  if (g.Deno) {
    let client = denoClients.get(opts.ca);
    if (!client) {
      client = g.Deno.createHttpClient({ caCerts: [opts.ca] });
      if (denoClients.size >= 16) denoClients.clear();
      denoClients.set(opts.ca, client);
    }
    return new Ws(url, { client });
  }
  throw new Error("Cannot trust a private CA: this runtime is neither Bun nor Deno");
}
