/**
 * A queue's and a topic's capacity belongs to the structure, as Hazelcast's per-name
 * `max-size` does: a handle given a capacity sets it, a handle without one keeps it. Before,
 * every handle sent its own (the default when it had none) with each offer or publish, so a
 * REST offer without `?capacity=`, or a plain `getTopic` publish, overwrote the capacity an
 * app had set. Also: a topic subscription from past the ring's tail (the ring went back, or a
 * made-up position) starts at the tail; it waited silently for the sequence to get there.
 */
import { expect, test } from "bun:test";
import { createHttpApp } from "../src/http/app.ts";
import { gridStarter } from "./support/grid_harness.ts";
import { startNode } from "../src/node.ts";

const cluster = gridStarter(7);

const post = (body?: unknown) => ({
  method: "POST",
  body: body === undefined ? undefined : JSON.stringify(body),
  headers: { "content-type": "application/json" },
});

test("a REST offer without ?capacity= keeps the capacity the queue was given, and GET reports it", async () => {
  const node = await startNode({ secret: "s", http: false, logLevel: "silent", partitionCount: 7 });
  try {
    const q = node.getQueue<number>("jobs", { capacity: 2 });
    expect(await q.offer(1)).toBe(true);
    expect(await q.offer(2)).toBe(true);
    expect(await q.offer(3)).toBe(false);
    const app = createHttpApp(node);
    const r = await app.request("/queues/jobs", post(4));
    expect(r.status).toBe(503);
    expect((await r.json()).code).toBe("FULL");
    expect(await (await app.request("/queues/jobs")).json()).toEqual({ name: "jobs", size: 2, capacity: 2 });
    // A handle without a capacity keeps it too, and tells it.
    const plain = node.getQueue<number>("jobs");
    expect(plain.capacity).toBeUndefined();
    expect(await plain.offer(5)).toBe(false);
    expect(await plain.info()).toEqual({ size: 2, capacity: 2 });
    // An explicit capacity sets it (REST or API).
    expect((await app.request("/queues/jobs?capacity=3", post(6))).status).toBe(201);
    expect(await plain.info()).toEqual({ size: 3, capacity: 3 });
  } finally {
    await node.shutdown();
  }
});

test("drain(0) takes nothing; a negative or fractional count is refused", async () => {
  const h = await cluster(2);
  try {
    const q = h.members.get("n0")!.grid.getQueue<number>("q");
    await h.until(q.offer(1));
    await h.until(q.offer(2));
    expect(await h.until(q.drain(0))).toEqual([]);
    expect(await h.until(q.size())).toBe(2);
    await expect(q.drain(-1)).rejects.toThrow(RangeError);
    await expect(q.drain(1.5)).rejects.toThrow(RangeError);
    expect(await h.until(q.drain(1))).toEqual([1]);
    expect(await h.until(q.drain(Infinity))).toEqual([2]);
    // A new queue's capacity is the default until one is set.
    expect(await h.until(h.members.get("n1")!.grid.getQueue("fresh").info())).toEqual({ size: 0, capacity: 100_000 });
  } finally {
    h.stop();
  }
});

test("a getTopic publish keeps the ring capacity a reliable topic set", async () => {
  const h = await cluster(2);
  try {
    const g = h.members.get("n0")!.grid;
    const reliable = g.getReliableTopic<number>("news", { capacity: 3 });
    for (let i = 0; i < 3; i++) await h.until(reliable.publish(i));
    // Five publishes through a handle without a capacity: the ring still keeps 3 messages.
    const plain = h.members.get("n1")!.grid.getTopic<number>("news");
    expect(plain.capacity).toBeUndefined();
    for (let i = 3; i < 8; i++) await h.until(plain.publish(i));
    const events: unknown[] = [];
    const stop = new AbortController();
    const sub = plain.subscribe({ from: 0, signal: stop.signal });
    const reading = (async () => {
      for await (const e of sub) {
        events.push(e);
        if (events.length === 4) break;
      }
    })();
    await h.until(reading);
    stop.abort();
    expect(events).toEqual([
      { seq: 0, missed: 5 },
      { seq: 5, message: 5 },
      { seq: 6, message: 6 },
      { seq: 7, message: 7 },
    ]);
  } finally {
    h.stop();
  }
});

test("a subscription from past the ring's tail starts at the tail instead of waiting for the sequence to get there", async () => {
  const h = await cluster(2);
  try {
    const t = h.members.get("n0")!.grid.getReliableTopic<number>("ahead");
    for (let i = 0; i < 3; i++) await h.until(t.publish(i));
    const stop = new AbortController();
    const sub = t.subscribe({ from: 100, signal: stop.signal });
    expect(await h.until(sub.ready)).toBe(3);
    await h.until(t.publish(3));
    const first = await h.until(sub.next());
    stop.abort();
    expect(first.value).toEqual({ seq: 3, message: 3 });
  } finally {
    h.stop();
  }
});
