/**
 * `GET /maps/:map/events`: a map's entry events as Server-Sent Events (hono's `streamSSE`).
 * Event names are the entry event types (`added`, `updated`, `removed`, `expired`,
 * `evicted`, `merged`) and `gap`; data is JSON `{ key, value?, oldValue?, partition, seq, index }`
 * (`gap`: `{ partition, fromSeq, toSeq }`). Query: `key=` (one key's events), `includeValue=false`.
 *
 * Every event's `id` is the stream's position in every partition it listens to, so a client
 * that reconnects with `Last-Event-ID` (EventSource does this itself) resumes exactly after
 * the last event it received — on any member — as long as the partitions' event logs still
 * hold what followed; a partition whose log does not opens the stream with a `gap` event.
 * The id is about 5 characters per partition (one partition with `key=`).
 *
 * The token rules are those of every read (auth.ts): with `--token` set it needs
 * `Authorization: Bearer` with the token or the read token, so a browser reads it with a
 * streaming `fetch` (EventSource cannot send the header). A client that does not read makes its listener
 * stop polling (bounded queue), never the writers.
 */
import type { Hono } from "hono";
import { streamSSE } from "hono/streaming";
import type { EntryEvent, GapEvent } from "../map/entry_events.ts";
import { AFTER_WRITE } from "../map/event_polls.ts";
import type { ShoalNode } from "../node_api.ts";
import { errorResponse, jsonError } from "./errors.ts";
import { queryOnce } from "./params.ts";
import { keepStreamOpen } from "../runtime/serve.ts";
import { jsonFields } from "./json_out.ts";

/** Longest map name and key (as map_routes.ts). */
const maxMapNameLength = 256;
const maxKeyLength = 4096;
/** Most partitions a position names (the `--partition-count` limit). */
const MAX_PARTITIONS = 65536;

/** Longest `Last-Event-ID` accepted. */
const MAX_EVENT_ID = 64 * 1024;

type Position = Map<number, { s: number; i: number }>;

/** Encodes positions as `c1,<p>:<s>[.<i>],...` (base 36; `i` = -1 written as `.-1`, `i` absent = after the whole write). */
export function encodePosition(pos: Position, afterWrite = AFTER_WRITE): string {
  const parts: string[] = [];
  for (const [p, c] of [...pos].sort((a, b) => a[0] - b[0])) {
    parts.push(`${p.toString(36)}:${c.s.toString(36)}${c.i === afterWrite ? "" : "." + c.i.toString(36)}`);
  }
  return "c1," + parts.join(",");
}

/** Decodes `encodePosition`'s format. @returns null when malformed */
export function decodePosition(id: string, afterWrite = AFTER_WRITE, partitionCount = MAX_PARTITIONS): Position | null {
  if (id.length > MAX_EVENT_ID || !id.startsWith("c1,")) return null;
  const out: Position = new Map();
  if (id === "c1,") return out;
  for (const part of id.slice(3).split(",")) {
    const m = /^([0-9a-z]{1,4}):([0-9a-z]{1,11})(?:\.(-1|[0-9a-z]{1,5}))?$/.exec(part);
    if (!m) return null;
    const p = parseInt(m[1], 36);
    const s = parseInt(m[2], 36);
    const i = m[3] === undefined ? afterWrite : parseInt(m[3], 36);
    if (p >= partitionCount || !Number.isSafeInteger(s) || out.has(p)) return null;
    out.set(p, { s, i });
  }
  return out;
}

/**
 * Open map-event streams per member: each holds one of the member's entry listeners (256), so
 * streams alone cannot take them all from the application (a read token could, before).
 */
export const MAX_MAP_EVENT_STREAMS = 64;

/** Adds `GET /maps/:map/events` to `app` (before `/maps/:map/:key`); a quiet stream sends a comment every `keepaliveMs`. */
export function mountMapEventRoutes(app: Hono, node: ShoalNode, keepaliveMs = 15_000): void {
  const afterWrite = AFTER_WRITE;
  let open = 0;
  app.get("/maps/:map/events", async (c) => {
    const map = c.req.param("map");
    if (map.length === 0 || map.length > maxMapNameLength) {
      return jsonError(c, 400, `Map name must be 1 to ${maxMapNameLength} characters`, "INVALID_ARGUMENT");
    }
    const key = queryOnce(c, "key");
    if (key instanceof Response) return key;
    if (key !== undefined && (key.length === 0 || key.length > maxKeyLength)) {
      return jsonError(c, 400, `Key must be 1 to ${maxKeyLength} characters`, "INVALID_ARGUMENT");
    }
    const iv = queryOnce(c, "includeValue");
    if (iv instanceof Response) return iv;
    if (iv !== undefined && iv !== "true" && iv !== "false") {
      return jsonError(c, 400, "includeValue must be true or false", "INVALID_ARGUMENT");
    }
    const lastQuery = queryOnce(c, "lastEventId");
    if (lastQuery instanceof Response) return lastQuery;
    const lastId = c.req.header("last-event-id") ?? lastQuery;
    let from: Position | undefined;
    if (lastId !== undefined && lastId !== "") {
      const pos = decodePosition(lastId);
      if (!pos) return jsonError(c, 400, "Malformed Last-Event-ID", "INVALID_ARGUMENT");
      from = pos;
    }
    if (open >= MAX_MAP_EVENT_STREAMS) return jsonError(c, 503, "Too many open map event streams", "OVERLOADED");
    open++;
    let sub;
    try {
      sub = await node.getMap<string, unknown>(map).openEvents({ key, includeValue: iv !== "false", from });
    } catch (err) {
      open--;
      return errorResponse(c, err);
    }
    const position: Position = new Map(sub.start);
    keepStreamOpen(c);
    let ended = false;
    let stream: Parameters<Parameters<typeof streamSSE>[1]>[0] | undefined;
    const end = () => {
      if (ended) return;
      ended = true;
      open--;
      clearInterval(keepalive);
      sub.close();
    };
    const keepalive = setInterval(() => void stream?.write(": keepalive\n\n").catch(end), keepaliveMs);
    return streamSSE(c, async (s) => {
      stream = s;
      s.onAbort(end);
      try {
        // A comment at once, so the response (and its headers) goes out before the first event.
        await s.write(": listening\n\n");
        for await (const e of sub) {
          if (s.aborted || s.closed) break;
          await s.writeSSE(toSSE(e, position, afterWrite));
        }
      } finally {
        end();
      }
    });
  });
}

function toSSE(
  e: EntryEvent<string, unknown> | GapEvent,
  position: Position,
  afterWrite: number,
): { event: string; data: string; id: string } {
  if (e.type === "gap") {
    position.set(e.partition, { s: e.toSeq, i: afterWrite });
    const data = JSON.stringify({ partition: e.partition, fromSeq: e.fromSeq, toSeq: e.toSeq });
    return { event: "gap", data, id: encodePosition(position, afterWrite) };
  }
  position.set(e.partition, { s: e.seq, i: e.index });
  const body: Record<string, unknown> = { key: e.key, partition: e.partition, seq: e.seq, index: e.index };
  if (e.value !== undefined) body.value = e.value;
  if (e.oldValue !== undefined) body.oldValue = e.oldValue;
  // A key or value JSON cannot express (a BigInt) ended the stream for good, resumes too: named instead.
  return { event: e.type, data: jsonFields(body), id: encodePosition(position, afterWrite) };
}
