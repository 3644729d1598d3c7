/**
 * REST routes of topics:
 * - `POST /topics/:name` with the JSON message → 201 `{ "seq" }` (`?capacity=` for the ring);
 * - `GET /topics/:name/events` → Server-Sent Events, one `message` event per message with
 *   `id: <seq>` and the JSON message as data, and a `gap` event `{ "missed" }` when the ring
 *   dropped messages the stream had not sent. A reconnecting client's `Last-Event-ID` header
 *   (or `?from=`) resumes at the next sequence; without it the stream starts with messages
 *   published from now on. Open streams per member are limited.
 */
import type { Hono } from "hono";
import type { ShoalNode } from "../node_api.ts";
import { MAX_TOPIC_CAPACITY, MAX_TOPIC_NAME } from "../map/topic_ops.ts";
import { errorResponse, jsonError } from "./errors.ts";
import { readJsonBody } from "./json_body.ts";
import { queryOnce, wholeNumber, wholeNumberParam } from "./params.ts";
import { keepStreamOpen } from "../runtime/serve.ts";
import { jsonText } from "../http/json_out.ts";

/** Open topic streams per member. */
export const MAX_TOPIC_STREAMS = 64;

/** A message sequence from a client: a safe integer whose successor is one too (a resume asks for `last + 1`). */
const seqParam = (raw: string | undefined | null): number | undefined | null => {
  if (raw === undefined || raw === null || raw === "") return undefined;
  return wholeNumber(raw, 0, Number.MAX_SAFE_INTEGER - 1);
};

/** Adds the topic routes to `app`. */
export function mountTopicRoutes(app: Hono, node: ShoalNode, keepaliveMs = 15_000): void {
  let open = 0;
  const nameOk = (name: string) => name.length > 0 && name.length <= MAX_TOPIC_NAME;

  app.post("/topics/:name", async (c) => {
    const name = c.req.param("name");
    if (!nameOk(name)) {
      return jsonError(c, 400, `Topic name must be 1 to ${MAX_TOPIC_NAME} characters`, "INVALID_ARGUMENT");
    }
    const capacity = wholeNumberParam(c, "capacity", 1, MAX_TOPIC_CAPACITY);
    if (capacity instanceof Response) return capacity;
    const body = await readJsonBody(c);
    if (!body.ok) return body.response;
    try {
      const seq = await node.getReliableTopic(name, { capacity }).publish(body.value);
      return c.json({ seq }, 201);
    } catch (err) {
      return errorResponse(c, err);
    }
  });

  app.get("/topics/:name/events", (c) => {
    const name = c.req.param("name");
    if (!nameOk(name)) {
      return jsonError(c, 400, `Topic name must be 1 to ${MAX_TOPIC_NAME} characters`, "INVALID_ARGUMENT");
    }
    const fromRaw = queryOnce(c, "from");
    if (fromRaw instanceof Response) return fromRaw;
    const last = seqParam(c.req.header("last-event-id"));
    const from = seqParam(fromRaw);
    if (last === null || from === null) {
      return jsonError(c, 400, "Last-Event-ID and from must be non-negative integers", "INVALID_ARGUMENT");
    }
    if (open >= MAX_TOPIC_STREAMS) return jsonError(c, 503, "Too many open topic streams", "OVERLOADED");
    open++;
    keepStreamOpen(c);
    const stop = new AbortController();
    const enc = new TextEncoder();
    const events = node.getTopic(name).subscribe({ from: last !== undefined ? last + 1 : from, signal: stop.signal });
    let keepalive: ReturnType<typeof setInterval> | undefined;
    const closed = () => {
      clearInterval(keepalive);
      if (!stop.signal.aborted) (stop.abort(), open--);
    };
    c.req.raw.signal?.addEventListener("abort", closed, { once: true });
    let readySent = false;
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(enc.encode(`retry: 1000\n\n`));
        // A quiet stream sends a comment now and then, so the HTTP idle timeout does not close it.
        keepalive = setInterval(() => {
          try {
            controller.enqueue(enc.encode(": keepalive\n\n"));
          } catch {
            closed();
          }
        }, keepaliveMs);
      },
      async pull(controller) {
        try {
          if (!readySent) {
            // The start is fixed: every message published from here on is in the stream.
            readySent = true;
            const seq = await events.ready;
            return controller.enqueue(enc.encode(`event: ready\ndata: ${JSON.stringify({ seq })}\n\n`));
          }
          const r = await events.next();
          if (r.done) return (closed(), controller.close());
          const e = r.value;
          controller.enqueue(enc.encode(
            "missed" in e ? `event: gap\ndata: ${JSON.stringify({ missed: e.missed })}\n\n` : message(e.seq, e.message),
          ));
        } catch (err) {
          closed();
          controller.error(err);
        }
      },
      cancel: closed,
    });
    return new Response(body, {
      headers: { "Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache" },
    });
  });
}

/**
 * A message event, or an `unrepresentable` event `{"seq"}` for a message JSON cannot express (a
 * BigInt published through the API): it ended the stream, and every resume again at it.
 */
function message(seq: number, m: unknown): string {
  const data = jsonText(m);
  return data === undefined
    ? `event: unrepresentable\nid: ${seq}\ndata: ${JSON.stringify({ seq })}\n\n`
    : `event: message\nid: ${seq}\ndata: ${data}\n\n`;
}
