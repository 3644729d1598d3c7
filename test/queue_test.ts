import { describe, expect, test } from "bun:test";
import { bystanderOf, gridStarter, replicasOf } from "./support/grid_harness.ts";

const P = 13;

const cluster = gridStarter(P);

describe("distributed queue", () => {
  test("FIFO across members; capacity; peek, size, drain; waiting poll and offer", async () => {
    const h = await cluster(3);
    const q0 = h.members.get("n0")!.grid.getQueue<number>("jobs", { capacity: 3 });
    const q1 = h.members.get("n1")!.grid.getQueue<number>("jobs", { capacity: 3 });
    expect(await h.until(q1.poll())).toBeUndefined();
    for (const i of [1, 2, 3]) expect(await h.until(q0.offer(i))).toBe(true);
    expect(await h.until(q1.offer(4))).toBe(false);
    expect(await h.until(q1.size())).toBe(3);
    expect(await h.until(q1.peek())).toBe(1);
    expect(await h.until(q1.poll())).toBe(1);
    expect(await h.until(q0.drain(10))).toEqual([2, 3]);
    // A waiting poll gets an item offered later; a waiting offer gets room freed later.
    const waiting = q1.poll({ timeoutMs: 5000 });
    await h.run(500);
    await h.until(q0.offer(5));
    expect(await h.until(waiting)).toBe(5);
    for (const i of [6, 7, 8]) await h.until(q0.offer(i));
    const full = q0.offer(9, { timeoutMs: 5000 });
    await h.run(300);
    expect(await h.until(q1.poll())).toBe(6);
    expect(await h.until(full)).toBe(true);
    expect(await h.until(q1.drain())).toEqual([7, 8, 9]);
    expect(await h.until(q1.poll({ timeoutMs: 300 }))).toBeUndefined();
    h.stop();
  });

  test("a wait of NaN ms is refused at once; a negative one is no wait", async () => {
    // NaN made a deadline nothing reaches: the call asked again and again for ever, without a
    // pause (found by an internal review).
    const h = await cluster(2);
    const q = h.members.get("n0")!.grid.getQueue<number>("nan", { capacity: 1 });
    const settle = (p: Promise<unknown>) => h.until(p.then((v) => ({ v }), (e) => ({ e })), 5_000);
    const polled = await settle(q.poll({ timeoutMs: NaN }));
    expect("e" in polled && polled.e).toBeInstanceOf(RangeError);
    expect(await h.until(q.offer(1))).toBe(true);
    const offered = await settle(q.offer(2, { timeoutMs: NaN }));
    expect("e" in offered && offered.e).toBeInstanceOf(RangeError);
    expect(await settle(q.offer(2, { timeoutMs: -5 }))).toEqual({ v: false });
    expect(await h.until(q.drain())).toEqual([1]);
    h.stop();
  });

  test("a poll whose answer was lost, retried after the primary died, gets the same item; none is lost", async () => {
    const h = await cluster(3);
    const name = "lost-answer";
    const [primary, backup] = replicasOf(h, name);
    const client = bystanderOf(h, name);
    const q = client.grid.getQueue<string>(name);
    await h.until(q.offer("a"));
    await h.until(q.offer("b"));
    // The answer is lost: the backup answers a write such as a poll.
    h.net.setLink(backup, client.id, { blocked: true });
    const poll = q.poll();
    await h.run(50);
    const before = h.members.get(backup)!.grid.maps.counters.dedupeHits;
    h.crash(primary, 1000);
    h.net.setLink(backup, client.id, { blocked: false });
    expect(await h.until(poll)).toBe("a");
    expect(h.members.get(backup)!.grid.maps.counters.dedupeHits).toBeGreaterThan(before);
    expect(await h.until(q.poll())).toBe("b");
    expect(await h.until(q.poll())).toBeUndefined();
    h.stop();
  });
  // Producers and consumers through failovers of the queue's primary, with packet loss:
  // test/sim/structures_chaos_test.ts (every acknowledged offer delivered exactly once).
});
