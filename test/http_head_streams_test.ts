/**
 * A HEAD of an event-stream route: Hono answers HEAD by running the GET handler and dropping the
 * body unread, so each HEAD opened a stream and kept its slot for good (map events under both
 * runtimes; topic and dashboard streams under Bun), and after the limit every client got 503 until
 * the member restarted (found by an internal review). A HEAD now answers the headers only.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { startNode } from "../src/node.ts";
import type { ShoalNode } from "../src/node_api.ts";

let node: ShoalNode & { httpUrl?: string; shutdown(): Promise<void> };

beforeAll(async () => {
  node = await startNode({ secret: "s", http: "127.0.0.1:0", logLevel: "silent", partitionCount: 7 }) as typeof node;
}, 60_000);
afterAll(async () => {
  await node?.shutdown();
});

test("HEADs of the event streams hold no stream: a GET after more than their limit still opens one", async () => {
  for (const [path, limit] of [["/maps/m/events", 64], ["/topics/t/events", 64], ["/events", 16]] as const) {
    for (let i = 0; i < limit + 2; i++) {
      const head = await fetch(node.httpUrl + path, { method: "HEAD" });
      expect(head.status).toBe(200);
      expect(head.headers.get("content-type")).toContain("text/event-stream");
    }
    const ac = new AbortController();
    const get = await fetch(node.httpUrl + path, { signal: ac.signal });
    expect({ path, status: get.status }).toEqual({ path, status: 200 });
    ac.abort();
    await get.body?.cancel().catch(() => {});
  }
}, 60_000);
