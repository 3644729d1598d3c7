/**
 * A value stored through the IMap, queue or topic API that JSON cannot express (a BigInt: CBOR
 * keeps it) was handled by `GET /maps/:map/:key` (422 UNREPRESENTABLE) only. Every other route
 * that echoes a stored value failed on it (found by an internal review): PUT and DELETE
 * answered 500 although the write was applied, a queue poll answered 500 after taking the item
 * (lost), a processor call answered 500 after its write, and the map-event and topic streams
 * ended at that event for good, resumes too. Such a field is now left out and named in
 * `unrepresentable`, a queue poll puts such an item back at the tail (422), and the topic stream sends an
 * `unrepresentable` event for the message.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startNode } from "../src/node.ts";
import type { ShoalNode } from "../src/node_api.ts";

let node: ShoalNode & { httpUrl?: string; shutdown(): Promise<void> };
let base = "";

beforeAll(async () => {
  node = await startNode({ secret: "s", http: "127.0.0.1:0", logLevel: "silent", partitionCount: 7 }) as typeof node;
  base = node.httpUrl!;
}, 60_000);
afterAll(async () => {
  await node?.shutdown();
});

const big = 2n ** 70n;

/** Reads a streaming body as text for `ms` (or until it ends or errors). */
async function readFor(res: Response, ms: number, stopWhen?: (text: string) => boolean): Promise<string> {
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  let text = "";
  const end = Date.now() + ms;
  try {
    while (Date.now() < end && !(stopWhen?.(text))) {
      const r = await Promise.race([reader.read(), new Promise<null>((r) => setTimeout(() => r(null), 100))]);
      if (r === null) continue;
      if (r.done) break;
      text += dec.decode(r.value, { stream: true });
    }
  } catch {
    // the stream errored (ECONNRESET): what arrived so far is the answer
  }
  await reader.cancel().catch(() => {});
  return text;
}

/** Collects a streaming body as text in the background. */
function collect(res: Response): { text: string; ended: boolean } {
  const out = { text: "", ended: false };
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  (async () => {
    try {
      for (;;) {
        const r = await reader.read();
        if (r.done) break;
        out.text += dec.decode(r.value, { stream: true });
      }
    } catch {
      // errored or aborted
    }
    out.ended = true;
  })();
  return out;
}

async function waitFor(pred: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!pred() && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
}

describe("values JSON cannot express, stored through the API", () => {
  test("PUT over such a value is applied, so it must not answer 500", async () => {
    await node.getMap<string, unknown>("big-put").set("n", big);
    const res = await fetch(`${base}/maps/big-put/n`, {
      method: "PUT",
      body: "1",
      headers: { "content-type": "application/json" },
    });
    const text = await res.text();
    expect(await node.getMap<string, unknown>("big-put").get("n")).toBe(1); // the write happened
    expect({ status: res.status, text }).toMatchObject({ status: 200 });
  });

  test("DELETE of such a value is applied, so it must not answer 500", async () => {
    await node.getMap<string, unknown>("big-del").set("n", big);
    const res = await fetch(`${base}/maps/big-del/n`, { method: "DELETE" });
    const text = await res.text();
    expect(await node.getMap<string, unknown>("big-del").get("n")).toBeUndefined(); // the remove happened
    expect({ status: res.status, text }).toMatchObject({ status: 200 });
  });

  test("polling such a queue item must not take it and then answer 500 (the item is lost)", async () => {
    await node.getQueue<unknown>("big-q").offer(big);
    const res = await fetch(`${base}/queues/big-q/poll`, { method: "POST" });
    const text = await res.text();
    const left = (await node.getQueue<unknown>("big-q").info()).size;
    // Either the client got the item (200) or it is still in the queue.
    expect({ status: res.status, text, left }).toSatisfy((r) => r.status === 200 || r.left === 1);
  });

  test("a long poll of an empty queue that takes such an item while it waits puts it back", async () => {
    const q = node.getQueue<unknown>("big-wait");
    const poll = fetch(`${base}/queues/big-wait/poll?timeoutMs=5000`, { method: "POST" });
    await new Promise((r) => setTimeout(r, 500)); // the poll is waiting on the empty queue
    await q.offer(big);
    const res = await poll;
    await res.text();
    expect(res.status).toBe(422);
    expect(await q.poll()).toBe(big);
  });

  test("such an item does not block REST consumers from the items behind it", async () => {
    const q = node.getQueue<unknown>("big-head");
    await q.offer(big);
    await q.offer("next");
    const first = await fetch(`${base}/queues/big-head/poll`, { method: "POST" });
    expect(first.status).toBe(422);
    const second = await fetch(`${base}/queues/big-head/poll`, { method: "POST" });
    expect(await second.json()).toEqual({ item: "next" });
    expect(await q.poll()).toBe(big);
  });

  test("a processor that changed such an entry must not answer 500 after applying the change", async () => {
    await node.getMap<string, unknown>("big-exec").set("list", [big]);
    const res = await fetch(`${base}/maps/big-exec/list/execute`, {
      method: "POST",
      body: JSON.stringify({ processor: "append", arg: 2 }),
      headers: { "content-type": "application/json" },
    });
    const text = await res.text();
    expect(await node.getMap<string, unknown>("big-exec").get("list")).toEqual([big, 2]); // applied
    expect({ status: res.status, text }).toMatchObject({ status: 200 });
  });

  test("a map-event stream carries on past such an event, live and on resume", async () => {
    const m = node.getMap<string, unknown>("big-ev");
    const ac = new AbortController();
    const res = await fetch(`${base}/maps/big-ev/events`, { signal: ac.signal });
    expect(res.status).toBe(200);
    const live = collect(res);
    await m.set("before", 1);
    await waitFor(() => live.text.includes('"key":"before"'), 5000); // "before" went out on its own
    await m.set("bad", big);
    await m.set("after", 2);
    await waitFor(() => live.text.includes('"key":"after"') || live.ended, 5000);
    ac.abort();
    // Live: the event after the BigInt one must still arrive.
    expect(live.text).toContain('"key":"after"');

    // Resume right after "before" (as EventSource does with Last-Event-ID): must get past "bad" too.
    const lastId = /"key":"before".*\nid: (.*)\n/.exec(live.text)?.[1];
    expect(lastId).toBeDefined();
    const ac2 = new AbortController();
    const res2 = await fetch(`${base}/maps/big-ev/events`, {
      signal: ac2.signal,
      headers: { "last-event-id": lastId! },
    });
    expect(res2.status).toBe(200);
    const resumed = collect(res2);
    await waitFor(() => resumed.text.includes('"key":"after"') || resumed.ended, 5000);
    ac2.abort();
    expect(resumed.text).toContain('"key":"after"');
  }, 30_000);

  test("a topic stream carries on past such a message, live and on resume", async () => {
    const t = node.getReliableTopic<unknown>("big-topic");
    const ac = new AbortController();
    const res = await fetch(`${base}/topics/big-topic/events?from=0`, { signal: ac.signal });
    expect(res.status).toBe(200);
    await t.publish("before"); // seq 0
    await new Promise((r) => setTimeout(r, 500)); // "before" goes out on its own
    await t.publish(big); // seq 1
    await t.publish("after"); // seq 2
    const text = await readFor(res, 3000, (s) => s.includes('"after"'));
    ac.abort();
    expect(text).toContain('data: "before"');
    expect(text).toContain('data: "after"');

    const ac2 = new AbortController();
    const res2 = await fetch(`${base}/topics/big-topic/events`, {
      signal: ac2.signal,
      headers: { "last-event-id": "0" },
    });
    const text2 = await readFor(res2, 3000, (s) => s.includes('"after"'));
    ac2.abort();
    expect(text2).toContain('data: "after"');
  }, 20_000);

  test("increment past the float64 range is refused, not stored as Infinity (which JSON writes as null)", async () => {
    const h = { "content-type": "application/json" };
    expect((await fetch(`${base}/maps/overflow/k`, { method: "PUT", body: "1.7e308", headers: h })).status).toBe(200);
    const exec = await fetch(`${base}/maps/overflow/k/execute`, {
      method: "POST",
      body: JSON.stringify({ processor: "increment", arg: 1.7e308 }),
      headers: h,
    });
    expect(exec.status).toBe(422);
    expect(await node.getMap<string, unknown>("overflow").get("k")).toBe(1.7e308);
  });
});
