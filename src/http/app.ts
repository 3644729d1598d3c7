/**
 * The node's HTTP app (hono): health, cluster view, maps, metrics, the live dashboard and
 * its event stream. Job routes and the signaling endpoint are added by the node through
 * `extraRoutes`. With a token configured every data route needs it (reads may use the
 * read-only token instead; see auth.ts); bodies are limited in size; every error is a JSON
 * answer, never a crash.
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import type { Logger } from "../core/log.ts";
import type { ShoalNode } from "../node_api.ts";
import { requireToken } from "./auth.ts";
import { originCheck } from "./origin_check.ts";
import { clusterJson, healthJson } from "./cluster_info.ts";
import { dashboardHtml } from "./dashboard.ts";
import { errorResponse, jsonError } from "./errors.ts";
import { SnapshotEventStream } from "./event_stream.ts";
import { MapSizeCache } from "./map_sizes.ts";
import { mountLockRoutes } from "./lock_routes.ts";
import { mountMapRoutes } from "./map_routes.ts";
import { mountProcessorRoutes } from "./processor_routes.ts";
import { mountQueueRoutes } from "./queue_routes.ts";
import { mountTopicRoutes } from "./topic_routes.ts";
import { collectMetrics } from "./metrics.ts";
import { collectGarbage } from "../runtime/process.ts";
import { keepStreamOpen } from "../runtime/serve.ts";
import { type MetricFamily, prometheusContentType, renderPrometheus } from "./prometheus.ts";
import { buildSnapshot } from "./snapshot.ts";

/** Options of {@link createHttpApp}. */
export interface HttpAppOptions {
  /** Bearer token required on every route but `/health`, `/`, `/signal` (and `/metrics` with `openMetrics`). @default none */
  token?: string;
  /** Read-only bearer token: GET, HEAD and OPTIONS only; writes with it get 403. Needs `token`. @default none */
  readToken?: string;
  /** Serve `GET /metrics` without a token. @default false */
  openMetrics?: boolean;
  /** Adds more routes (jobs, signaling) after the built-in middleware is in place. */
  extraRoutes?: (app: Hono) => void;
  /** More metric families for `GET /metrics` (e.g. from the job layer). */
  extraMetrics?: () => MetricFamily[] | Promise<MetricFamily[]>;
  /** Largest request body accepted; larger ones get 413. @default 1048576 */
  maxBodyBytes?: number;
  /** Open `GET /events` streams at most; further ones get 503. @default 16 */
  maxSseClients?: number;
  /** How often the event stream checks for changes. @default 1000 */
  sseIntervalMs?: number;
  /**
   * A quiet map-event or topic stream sends a comment this often, so the HTTP idle timeout
   * (runtime/serve.ts, 40 s) does not close it. @default 15000
   */
  streamKeepaliveMs?: number;
  /** Closes the event streams, stops their timer and drops the cluster subscription when aborted (on node shutdown). */
  signal?: AbortSignal;
  /** Where unexpected errors are logged. */
  logger?: Logger;
  /**
   * The member listens on a loopback address: requests whose `Host` is not a loopback name are
   * refused (DNS rebinding; origin_check.ts). @default false
   */
  loopbackOnly?: boolean;
  /** Host names accepted besides loopback ones and the request's own (a reverse proxy's public name; origin_check.ts). */
  allowedHosts?: readonly string[];
}

/** Default request body limit: 1 MiB. */
export const defaultMaxBodyBytes = 1024 * 1024;

/** The event-stream routes: `/events`, `/maps/:map/events`, `/topics/:name/events`. */
const STREAM_PATH = /^\/(?:events|maps\/[^/]+\/events|topics\/[^/]+\/events)$/;

/**
 * Builds the HTTP app of a node. Serve it with `serve({ fetch: app.fetch, … })` from
 * `src/runtime/serve.ts`, or call `app.request()` in tests.
 *
 * @param node the node to expose
 * @param opts token, extra routes and limits
 * @returns the hono app
 * @example
 * ```ts
 * const app = createHttpApp(node, { token: "t0ken", extraRoutes: (app) => mountJobRoutes(app, jobs) });
 * const res = await app.request("/cluster");
 * ```
 */
export function createHttpApp(node: ShoalNode, opts: HttpAppOptions = {}): Hono {
  // First, so a bad token combination throws before anything is subscribed.
  const auth = requireToken({ token: opts.token, readToken: opts.readToken, openMetrics: opts.openMetrics });
  const app = new Hono();
  const maxBodyBytes = opts.maxBodyBytes ?? defaultMaxBodyBytes;
  const keepaliveMs = opts.streamKeepaliveMs ?? 15_000;
  const sizes = new MapSizeCache(node);
  let masterChangesSeen = 0;
  const unsubscribe = node.cluster.subscribe((e) => {
    if (e.type === "masterChanged") masterChangesSeen++;
  });
  const events = new SnapshotEventStream(
    () => JSON.stringify(buildSnapshot(node, sizes.current())),
    (fn) => node.cluster.subscribe(fn),
    () => sizes.refresh(),
    { intervalMs: opts.sseIntervalMs, maxClients: opts.maxSseClients },
  );
  opts.signal?.addEventListener("abort", () => {
    events.close();
    unsubscribe();
  }, { once: true });

  app.onError((err, c) => {
    if (err instanceof HTTPException) return err.getResponse();
    opts.logger?.error("http.request.failed", {
      method: c.req.method,
      path: c.req.path,
      error: String((err as Error)?.message ?? err),
    });
    return errorResponse(c, err);
  });
  app.notFound((c) => jsonError(c, 404, `No route for ${c.req.method} ${c.req.path}`, "NOT_FOUND"));

  app.use("*", originCheck({ loopbackOnly: opts.loopbackOnly, allowedHosts: opts.allowedHosts }));
  app.use("*", auth);
  app.use(
    "*",
    bodyLimit({
      maxSize: maxBodyBytes,
      onError: (c) =>
        jsonError(c, 413, `Request body is larger than the limit of ${maxBodyBytes} bytes`, "INVALID_ARGUMENT"),
    }),
  );

  // A HEAD of an event stream (the dashboard's, a map's, a topic's) answers the headers only. Hono
  // answers HEAD by running the GET handler and dropping the body unread: the stream kept its slot
  // (of 64 or 16) for good, so a few HEADs locked every client out of those streams (found by an
  // internal review).
  app.use("*", async (c, next) => {
    if (c.req.raw.method === "HEAD" && STREAM_PATH.test(c.req.path)) {
      return c.body(null, 200, { "Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache" });
    }
    await next();
  });

  app.get("/health", (c) => {
    const h = healthJson(node);
    return c.json(h.body, h.ok ? 200 : 503);
  });
  app.get("/cluster", (c) => c.json(clusterJson(node)));
  app.get("/snapshot", async (c) => {
    await sizes.refresh();
    return c.json(buildSnapshot(node, sizes.current()));
  });
  mountMapRoutes(app, node, sizes, keepaliveMs);
  mountProcessorRoutes(app, node);
  mountLockRoutes(app, node);
  mountQueueRoutes(app, node);
  mountTopicRoutes(app, node, keepaliveMs);

  app.get("/metrics", async (c) => {
    // `?gc=1`: the memory figures after a full collection, where the runtime was started with
    // --expose-gc (a measuring run: tests and benches); otherwise the parameter does nothing.
    if (c.req.query("gc") === "1") collectGarbage();
    await sizes.refresh();
    let families = collectMetrics(node, { mapSizes: sizes.current(), masterChangesSeen, sseClients: events.clients });
    let text: string;
    try {
      if (opts.extraMetrics) {
        // A layer that reports a family itself (e.g. shoal_jobs from the job maps) replaces
        // the built-in family of the same name instead of exposing it twice.
        const extra = await opts.extraMetrics();
        const names = new Set(extra.map((f) => f.name));
        families = [...families.filter((f) => !names.has(f.name)), ...extra];
      }
      text = renderPrometheus(families);
    } catch (err) {
      // A malformed family is a bug on our side, not a bad request.
      opts.logger?.error("http.metrics.failed", { error: String((err as Error)?.message ?? err) });
      return jsonError(c, 500, "Cannot render metrics", "INTERNAL");
    }
    return c.body(text, 200, { "Content-Type": prometheusContentType });
  });

  // The dashboard asks for the token: no other site may frame it (clickjacking).
  app.get("/", (c) => {
    c.header("X-Frame-Options", "DENY");
    c.header("Content-Security-Policy", "frame-ancestors 'none'");
    return c.html(dashboardHtml());
  });
  app.get("/events", (c) => {
    const res = events.open(c.req.raw.signal);
    if (!res) {
      c.header("Retry-After", "5");
      return jsonError(c, 503, "Too many open event streams; try again later", "OVERLOADED");
    }
    keepStreamOpen(c);
    return res;
  });

  opts.extraRoutes?.(app);
  return app;
}
