/**
 * Serving a hono app over HTTP or HTTPS (and WebSocket / secure WebSocket) on Bun
 * (`Bun.serve`) and Deno (`Deno.serve`) through one call. Node is not supported by this
 * adapter.
 */
import type { Context } from "hono";
import { ShoalError } from "../core/errors.ts";

// deno-lint-ignore no-explicit-any
const g = globalThis as any;

/** What {@link serve} needs: the address and the app's fetch handler. */
export interface ServeOptions {
  /** Interface to listen on. @default "127.0.0.1" */
  hostname?: string;
  /** TCP port; 0 picks any free port. */
  port: number;
  /** The request handler, usually `app.fetch`. It gets the runtime's server/info as `env`. */
  fetch: (req: Request, env: unknown) => Response | Promise<Response>;
  /** Bun's WebSocket handler from {@link wsUpgrader}; ignored on Deno. */
  websocket?: unknown;
  /** Serve HTTPS (and WSS) with this PEM certificate chain and private key. @default plain HTTP */
  tls?: TlsFiles;
  /**
   * Bun: seconds a connection may stay without traffic (a kept-alive socket between requests, a
   * request waiting for its answer, a quiet stream) before it is closed; at most 255. @default
   * {@link HTTP_IDLE_TIMEOUT_S}
   */
  idleTimeoutSec?: number;
}

/**
 * The HTTP idle timeout: above the longest wait a request may ask for (25 s) and twice the
 * event streams' keepalive (15 s). Without one (it was 0), a client holding idle keep-alive
 * sockets used up the member's file descriptors and its API stopped answering.
 */
export const HTTP_IDLE_TIMEOUT_S = 40;

/** A PEM certificate (chain) and its private key, as text. */
export interface TlsFiles {
  cert: string;
  key: string;
}

/** A listening server. */
export interface Served {
  /** Base URL, e.g. `http://127.0.0.1:41234`. */
  url: string;
  /** The port actually bound (useful with port 0). */
  port: number;
  hostname: string;
  /** Stops listening and closes open connections. */
  close(): Promise<void>;
}

/**
 * Exempts a streaming response (server-sent events) from Bun's HTTP idle timeout, which closes
 * a response still being written to as well (checked: a stream written every 500 ms was cut at
 * the 2 s timeout's next 4 s step). Call it from the route with its context; elsewhere (Deno,
 * `app.request` in tests) it does nothing. Streams are capped per route instead.
 */
export function keepStreamOpen(c: Context): void {
  const server = c.env as { timeout?: (req: Request, seconds: number) => void } | undefined;
  if (g.Bun && typeof server?.timeout === "function") server.timeout(c.req.raw, 0);
}

/**
 * Reads a PEM file named by a flag (`--tls-cert`, `--tls-key`, `--tls-ca`).
 * @param path the file
 * @param flag the flag, for the error message
 * @returns its text
 * @throws ShoalError INVALID_ARGUMENT when it cannot be read or holds no PEM block
 */
export async function readPemFile(path: string, flag: string): Promise<string> {
  let text: string;
  try {
    text = g.Bun ? await g.Bun.file(path).text() : await g.Deno.readTextFile(path);
  } catch (err) {
    throw new ShoalError("INVALID_ARGUMENT", `Cannot read ${flag} ${path}: ${(err as Error)?.message ?? err}`);
  }
  if (!/-----BEGIN [A-Z0-9 ]+-----/.test(text)) {
    throw new ShoalError("INVALID_ARGUMENT", `Cannot use ${flag} ${path}: it holds no PEM block (-----BEGIN …-----)`);
  }
  return text;
}

/**
 * Starts serving `fetch` on `hostname:port`.
 * @param opts address and handler
 * @returns the listening server
 * @throws ShoalError with code "REFUSED" when the port is taken or cannot be bound
 * @example
 * ```ts
 * const app = new Hono().get("/", (c) => c.text("hi"));
 * const s = await serve({ hostname: "127.0.0.1", port: 0, fetch: app.fetch });
 * console.log(s.url);
 * await s.close();
 * ```
 */
export function serve(opts: ServeOptions): Promise<Served> {
  const hostname = opts.hostname ?? "127.0.0.1";
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) {
    return Promise.reject(new RangeError(`Cannot listen on port ${opts.port}: not a port number`));
  }
  const urlHost = hostname.includes(":") ? `[${hostname}]` : hostname;
  const scheme = opts.tls ? "https" : "http";
  if (g.Bun) {
    let server;
    try {
      server = g.Bun.serve({
        hostname,
        port: opts.port,
        fetch: (req: Request, srv: unknown) => opts.fetch(req, srv),
        websocket: opts.websocket,
        ...(opts.tls ? { tls: { cert: opts.tls.cert, key: opts.tls.key } } : {}),
        // WebSockets have their own idle timeout and pings (websocket.ts): an idle signaling socket stays.
        idleTimeout: opts.idleTimeoutSec ?? HTTP_IDLE_TIMEOUT_S,
      });
    } catch (err) {
      return Promise.reject(bindError(hostname, opts.port, err));
    }
    const port = server.port as number;
    return Promise.resolve({
      url: `${scheme}://${urlHost}:${port}`,
      port,
      hostname,
      close: async () => {
        await server.stop(true);
      },
    });
  }
  if (g.Deno) {
    return new Promise((resolve, reject) => {
      let server: { shutdown(): Promise<void>; finished: Promise<void> };
      try {
        server = g.Deno.serve(
          {
            hostname,
            port: opts.port,
            ...(opts.tls ? { cert: opts.tls.cert, key: opts.tls.key } : {}),
            onListen: (addr: { port: number }) => {
              resolve({
                url: `${scheme}://${urlHost}:${addr.port}`,
                port: addr.port,
                hostname,
                close: async () => {
                  await server.shutdown();
                },
              });
            },
            onError: () => new Response("Internal Server Error", { status: 500 }),
          },
          (req: Request, info: unknown) => opts.fetch(req, info),
        );
      } catch (err) {
        reject(bindError(hostname, opts.port, err));
      }
    });
  }
  return Promise.reject(new ShoalError("REFUSED", "Cannot serve HTTP: this runtime is neither Bun nor Deno"));
}

function bindError(hostname: string, port: number, err: unknown): ShoalError {
  const msg = String((err as Error)?.message ?? err);
  const code = String((err as { code?: string })?.code ?? (err as Error)?.name ?? "");
  const taken = /in use|EADDRINUSE|AddrInUse/i.test(msg + code);
  return new ShoalError(
    "REFUSED",
    taken
      ? `Cannot listen on ${hostname}:${port}: the port is already in use`
      : `Cannot listen on ${hostname}:${port}: ${msg}`,
    { cause: err },
  );
}

/**
 * The remote address of the client of a request served by {@link serve}.
 * @param c the hono context
 * @returns the IP address, or "unknown"
 */
export function clientAddress(c: Context): string {
  // deno-lint-ignore no-explicit-any
  const env = c.env as any;
  try {
    if (env && typeof env.requestIP === "function") return env.requestIP(c.req.raw)?.address ?? "unknown";
    if (env?.remoteAddr?.hostname) return env.remoteAddr.hostname;
  } catch {
    // fall through
  }
  return "unknown";
}
