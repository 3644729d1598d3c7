/**
 * `GET /maps/:map/events` on a real member over real HTTP, read with a streaming `fetch`:
 * events of writes and expiries, the key filter and `includeValue=false`, and a resume with
 * `Last-Event-ID` that delivers what was written while the client was away, exactly once.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { decodePosition, encodePosition } from "../src/http/map_events.ts";
import { startNode } from "../src/node.ts";
import type { ShoalNode } from "../src/node_api.ts";
import { readSse, type SseEvent } from "./support/sse.ts";

let node: ShoalNode & { httpUrl?: string; shutdown(): Promise<void> };
let base = "";

beforeAll(async () => {
  node = await startNode({ secret: "s", http: "127.0.0.1:0", logLevel: "silent", partitionCount: 7 }) as typeof node;
  base = node.httpUrl!;
}, 60_000);
afterAll(async () => {
  await node?.shutdown();
});

/** Opens an SSE stream and collects its events until `close()`. */
async function open(path: string, lastEventId?: string) {
  const ac = new AbortController();
  const headers: Record<string, string> = { accept: "text/event-stream" };
  if (lastEventId) headers["last-event-id"] = lastEventId;
  const res = await fetch(base + path, { signal: ac.signal, headers });
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toContain("text/event-stream");
  const events: SseEvent[] = [];
  const reading = readSse(res, events);
  return {
    events,
    async close() {
      ac.abort();
      await reading;
    },
  };
}

async function until(pred: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred() && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  expect(pred()).toBe(true);
}

const put = (path: string, v: unknown) =>
  fetch(base + path, { method: "PUT", body: JSON.stringify(v), headers: { "content-type": "application/json" } });

describe("map events over SSE", () => {
  test("positions round-trip through an event id", () => {
    const pos = new Map([[0, { s: 5, i: 1_000_000 }], [3, { s: 123456, i: 2 }], [6, { s: 0, i: -1 }]]);
    expect(decodePosition(encodePosition(pos))).toEqual(pos);
    expect(decodePosition("c1,zz")).toBeNull();
    expect(decodePosition("x")).toBeNull();
  });

  test("writes and expiries arrive as named events; a resume with Last-Event-ID continues exactly after", async () => {
    const s1 = await open("/maps/web/events");
    expect((await put("/maps/web/a?ttl=300", { n: 1 })).status).toBe(200);
    expect((await put("/maps/web/b", { n: 2 })).status).toBe(200);
    expect((await put("/maps/web/b", { n: 3 })).status).toBe(200);
    await until(() => s1.events.some((e) => e.event === "expired"));
    // In order per key (partitions are independent streams).
    const of = (k: string) => s1.events.filter((e) => e.data.key === k).map((e) => e.event);
    expect(of("a")).toEqual(["added", "expired"]);
    expect(of("b")).toEqual(["added", "updated"]);
    expect(s1.events.length).toBe(4);
    const upd = s1.events.find((e) => e.event === "updated")!;
    expect(upd.data).toMatchObject({ key: "b", value: { n: 3 }, oldValue: { n: 2 } });
    expect(typeof upd.data.partition).toBe("number");
    expect(typeof upd.data.seq).toBe("number");
    const last = s1.events.at(-1)!.id!;
    await s1.close();

    // Written while no client listens.
    await put("/maps/web/c", 1);
    await fetch(base + "/maps/web/b", { method: "DELETE" });
    const s2 = await open("/maps/web/events", last);
    await until(() => s2.events.length >= 2);
    await put("/maps/web/d", 1);
    await until(() => s2.events.length >= 3);
    expect(s2.events.map((e) => `${e.event}:${e.data.key}`).sort()).toEqual(["added:c", "added:d", "removed:b"]);
    await s2.close();
  }, 30_000);

  test("key= filters to one key and includeValue=false leaves values out", async () => {
    const s = await open("/maps/f/events?key=x&includeValue=false");
    await put("/maps/f/y", 1);
    await put("/maps/f/x", 2);
    await put("/maps/f/x", 3);
    await until(() => s.events.length >= 2);
    await new Promise((r) => setTimeout(r, 200));
    expect(s.events.map((e) => [e.event, e.data.key, "value" in e.data, "oldValue" in e.data])).toEqual([
      ["added", "x", false, false],
      ["updated", "x", false, false],
    ]);
    await s.close();
  }, 30_000);

  test("clear() arrives as a cleared event per partition it emptied, with no key, on key streams too", async () => {
    const all = await open("/maps/cl/events");
    const one = await open("/maps/cl/events?key=a");
    for (const k of ["a", "b", "c", "d"]) await put(`/maps/cl/${k}`, 1);
    await until(() => all.events.length >= 4 && one.events.length >= 1);
    const held = new Set(all.events.map((e) => e.data.partition));
    await node.getMap("cl").clear();
    await until(() => all.events.filter((e) => e.event === "cleared").length >= held.size);
    await until(() => one.events.some((e) => e.event === "cleared"));
    await new Promise((r) => setTimeout(r, 200));
    const cleared = all.events.filter((e) => e.event === "cleared");
    expect(new Set(cleared.map((e) => e.data.partition))).toEqual(held);
    expect(cleared.length).toBe(held.size);
    for (const e of cleared) expect(Object.keys(e.data).sort()).toEqual(["index", "partition", "seq"]);
    expect(one.events.map((e) => e.event)).toEqual(["added", "cleared"]);
    await all.close();
    await one.close();
  }, 30_000);

  test("a Last-Event-ID past the partition's history gets a gap event, then the later writes' events", async () => {
    // Every partition's position at sequence 2^31: far past anything written here.
    const far = new Map(Array.from({ length: 7 }, (_, p) => [p, { s: 2 ** 31, i: 1_000_000 }]));
    const s = await open("/maps/future/events?key=k", encodePosition(far));
    await until(() => s.events.some((e) => e.event === "gap"));
    await put("/maps/future/k", 1);
    await put("/maps/future/k", 2);
    // Before, the stream waited for the sequence to reach the position: no gap, no event, ever.
    await until(() => s.events.filter((e) => e.event !== "gap").length >= 2);
    expect(s.events.filter((e) => e.event !== "gap").map((e) => [e.event, e.data.value])).toEqual([
      ["added", 1],
      ["updated", 2],
    ]);
    const gap = s.events.find((e) => e.event === "gap")!;
    expect(gap.data.toSeq).toBe(2 ** 31);
    await s.close();
  }, 30_000);

  test("bad queries and a malformed Last-Event-ID are refused; PUT validates ttl", async () => {
    expect((await fetch(base + "/maps/f/events?includeValue=maybe")).status).toBe(400);
    expect((await fetch(base + "/maps/f/events", { headers: { "last-event-id": "nonsense" } })).status).toBe(400);
    expect((await put("/maps/f/k?ttl=-5", 1)).status).toBe(400);
    expect((await put("/maps/f/k?maxIdle=1.5", 1)).status).toBe(400);
    expect((await put("/maps/f/k?ttl=0x10", 1)).status).toBe(400);
    expect((await put("/maps/f/k?ttl=10&ttl=20", 1)).status).toBe(400);
    // The position's format starts "c1,"; any other third character was passed over before.
    expect((await fetch(base + "/maps/f/events", { headers: { "last-event-id": "c1;0:0" } })).status).toBe(400);
    expect((await fetch(base + "/maps/f/events?key=a&key=b")).status).toBe(400);
  });
});

describe("map events over SSE with tokens", () => {
  test("follow the read rules: 401 without a token, a stream with the read token", async () => {
    const secured = await startNode({
      secret: "s",
      http: "127.0.0.1:0",
      logLevel: "silent",
      partitionCount: 7,
      token: "full-token",
      readToken: "read-token",
    }) as typeof node;
    try {
      expect((await fetch(`${secured.httpUrl}/maps/m/events`)).status).toBe(401);
      const ac = new AbortController();
      const res = await fetch(`${secured.httpUrl}/maps/m/events`, {
        signal: ac.signal,
        headers: { authorization: "Bearer read-token" },
      });
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toContain("text/event-stream");
      ac.abort();
      await res.body?.cancel().catch(() => {});
    } finally {
      await secured.shutdown();
    }
  }, 60_000);
});
