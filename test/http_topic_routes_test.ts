import { describe, expect, test } from "bun:test";
import { createHttpApp } from "../src/http/app.ts";
import { createTestNode } from "./support/test_node.ts";

const post = (body: unknown) => ({
  method: "POST",
  body: JSON.stringify(body),
  headers: { "content-type": "application/json" },
});

/** Reads the stream until `n` events arrived (or 2 s passed), then closes it. */
async function events(res: Response, n: number): Promise<string[]> {
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  let text = "";
  const end = Date.now() + 2000;
  while (Date.now() < end && text.split("\n\n").filter((b) => b.includes("event:")).length < n) {
    const r = await Promise.race([reader.read(), new Promise<null>((r) => setTimeout(() => r(null), 100))]);
    if (r && !r.done) text += dec.decode(r.value);
  }
  await reader.cancel();
  return text.split("\n\n").filter((b) => b.includes("event:"));
}

describe("topic routes", () => {
  test("publish 201 { seq }; the SSE stream resumes after Last-Event-ID", async () => {
    const app = createHttpApp(createTestNode());
    for (const [i, m] of ["a", "b", "c"].entries()) {
      const r = await app.request("/topics/news", post({ m }));
      expect(r.status).toBe(201);
      expect(await r.json()).toEqual({ seq: i });
    }
    const res = await app.request("/topics/news/events", { headers: { "last-event-id": "0" } });
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    expect(await events(res, 3)).toEqual([
      'event: ready\ndata: {"seq":1}',
      'event: message\nid: 1\ndata: {"m":"b"}',
      'event: message\nid: 2\ndata: {"m":"c"}',
    ]);
  });

  test("without a position the stream starts with the next message: its ready event says which, and every later one follows", async () => {
    const app = createHttpApp(createTestNode());
    await app.request("/topics/live", post("old"));
    const res = await app.request("/topics/live/events");
    const reader = res.body!.getReader();
    const dec = new TextDecoder();
    let text = "";
    while (!text.includes("event: ready")) text += dec.decode((await reader.read()).value);
    expect(text).toContain('event: ready\ndata: {"seq":1}');
    await app.request("/topics/live", post("new"));
    while (!text.includes("event: message")) text += dec.decode((await reader.read()).value);
    await reader.cancel();
    expect(text).toContain('event: message\nid: 1\ndata: "new"');
    expect(text).not.toContain("old");
  });

  test("bad names, sequences and capacities are 400", async () => {
    const app = createHttpApp(createTestNode());
    expect((await app.request(`/topics/${"x".repeat(300)}`, post(1))).status).toBe(400);
    expect((await app.request("/topics/t?capacity=0", post(1))).status).toBe(400);
    expect((await app.request("/topics/t/events", { headers: { "last-event-id": "x" } })).status).toBe(400);
    expect((await app.request("/topics/t/events?from=-2")).status).toBe(400);
    expect((await app.request("/topics/t?capacity=0x10", post(1))).status).toBe(400);
    expect((await app.request("/topics/t?capacity=4&capacity=5", post(1))).status).toBe(400);
    expect((await app.request("/topics/t/events?from=%201")).status).toBe(400);
    expect((await app.request("/topics/t/events?from=1&from=2")).status).toBe(400);
    expect((await app.request("/topics/t/events", { headers: { "last-event-id": "1e2" } })).status).toBe(400);
    // The largest safe integer: resuming after it would ask for an unsafe one (the stream failed mid-way before).
    const top = String(Number.MAX_SAFE_INTEGER);
    expect((await app.request("/topics/t/events", { headers: { "last-event-id": top } })).status).toBe(400);
  });
});
