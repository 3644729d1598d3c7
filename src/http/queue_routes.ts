/**
 * REST routes of the distributed queue:
 * - `POST /queues/:name` with the JSON item → 201 `{}` once the primary and its sync backups
 *   hold it, or 503 `{ code: "FULL" }` when the queue stays full (`?timeoutMs=` waits for room);
 * - `POST /queues/:name/poll?timeoutMs=` → 200 `{ "item" }`, or 204 when none came in time;
 * - `GET /queues/:name` → `{ "name", "size", "capacity" }`.
 * `?capacity=` sets the queue's capacity (without it the queue keeps the one last set, 100,000
 * for a new queue). Waits are capped at 25 s.
 */
import type { Context, Hono } from "hono";
import type { ShoalNode } from "../node_api.ts";
import { MAX_QUEUE_CAPACITY, MAX_QUEUE_NAME } from "../map/queue_ops.ts";
import { errorResponse, jsonError } from "./errors.ts";
import { readJsonBody } from "./json_body.ts";
import { wholeNumberParam } from "./params.ts";
import { jsonText, writeAnswer } from "./json_out.ts";

/** Longest wait one HTTP call may ask for. */
export const MAX_HTTP_WAIT_MS = 25_000;

function queueOf(c: Context, node: ShoalNode) {
  const name = c.req.param("name") ?? "";
  if (name.length === 0 || name.length > MAX_QUEUE_NAME) {
    return jsonError(c, 400, `Queue name must be 1 to ${MAX_QUEUE_NAME} characters`, "INVALID_ARGUMENT");
  }
  const capacity = wholeNumberParam(c, "capacity", 1, MAX_QUEUE_CAPACITY);
  if (capacity instanceof Response) return capacity;
  const timeoutMs = wholeNumberParam(c, "timeoutMs", 0, MAX_HTTP_WAIT_MS);
  if (timeoutMs instanceof Response) return timeoutMs;
  return { q: node.getQueue(name, { capacity }), timeoutMs: timeoutMs ?? 0 };
}

type QueueCall = Exclude<ReturnType<typeof queueOf>, Response>;

/** A queue route: resolves the queue and the call's options, runs `handle`, and answers its errors as HTTP errors. */
function queueRoute(node: ShoalNode, handle: (c: Context, r: QueueCall) => Promise<Response>) {
  return async (c: Context): Promise<Response> => {
    const r = queueOf(c, node);
    if (r instanceof Response) return r;
    try {
      return await handle(c, r);
    } catch (err) {
      return errorResponse(c, err);
    }
  };
}

/** Adds the queue routes to `app`. */
export function mountQueueRoutes(app: Hono, node: ShoalNode): void {
  app.post(
    "/queues/:name",
    queueRoute(node, async (c, r) => {
      const body = await readJsonBody(c);
      if (!body.ok) return body.response;
      if (await r.q.offer(body.value, { timeoutMs: r.timeoutMs })) return c.json({}, 201);
      return c.json({ error: `Queue "${r.q.name}" is full`, code: "FULL" }, 503);
    }),
  );

  app.post(
    "/queues/:name/poll",
    queueRoute(node, async (c, r) => {
      const item = await r.q.poll({ timeoutMs: r.timeoutMs, signal: c.req.raw.signal });
      if (item !== undefined && jsonText(item) === undefined) {
        // An item JSON cannot express (a BigInt offered through the API): put back, at the tail
        // (a queue has no other end to put it at), so neither is it lost nor does it block REST
        // consumers behind it; an app takes it through the API.
        if (await r.q.offer(item, { timeoutMs: 5_000 })) {
          const msg = `An item of queue "${r.q.name}" cannot be written as JSON: it was put back at the tail`;
          return jsonError(c, 422, msg, "UNREPRESENTABLE");
        }
        // No room came back for it (producers filled the queue meanwhile): answered, named.
      }
      return item === undefined ? c.body(null, 204) : writeAnswer(c, { item });
    }),
  );

  app.get(
    "/queues/:name",
    queueRoute(node, async (c, r) => c.json({ name: r.q.name, ...await r.q.info() })),
  );
}
