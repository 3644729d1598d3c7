/**
 * Blocking queue polls and offers and lock waits park on the primary (parked_ops.ts) instead
 * of the caller polling: a waiter is answered as soon as an item, room or the lock comes (not
 * at its next poll), asks at most about once per park time (2 s), follows the partition to a
 * new primary after kill -9 of the old one, and times out cleanly without losing an item.
 */
import { describe, expect, test } from "bun:test";
import { WAITER_STALE_MS } from "../src/map/locks.ts";
import { MAX_PARK_MS } from "../src/map/parked_ops.ts";
import { type GridHarness, replicasOf, startGrid } from "./support/grid_harness.ts";

const P = 13;

/** Members other than the primary of `key`'s partition; the first is not its first backup either. */
function others(h: GridHarness, key: string) {
  const [primary, backup] = replicasOf(h, key);
  const rest = h.live().filter((m) => m.id !== primary);
  return { primary, backup, rest: [...rest.filter((m) => m.id !== backup), ...rest.filter((m) => m.id === backup)] };
}

/** Settles `promise`, also telling when (virtual time) it settled. */
function timed<T>(h: GridHarness, promise: Promise<T>): Promise<{ value: T; at: number }> {
  return promise.then((value) => ({ value, at: h.clock.now() }));
}

describe("waits parked on the primary", () => {
  test("a waiting poll is answered when the item comes, asking about once per park time", async () => {
    const h = await startGrid(3, P);
    const { rest } = others(h, "jobs");
    const [consumer, producer] = rest;
    const q = consumer.grid.getQueue<number>("jobs");
    const callsBefore = consumer.grid.invoker.stats.calls;
    const waiting = timed(h, q.poll({ timeoutMs: 20_000 }));
    await h.run(7000);
    // 7 s of waiting: about 7000 / 2000 asks, not the 35+ of a 200 ms poll loop.
    expect(consumer.grid.invoker.stats.calls - callsBefore).toBeLessThanOrEqual(Math.ceil(7000 / MAX_PARK_MS) + 1);
    const offeredAt = h.clock.now();
    await h.until(producer.grid.getQueue<number>("jobs").offer(42));
    const got = await h.until(waiting);
    expect(got.value).toBe(42);
    expect(got.at - offeredAt).toBeLessThan(100);
    h.stop();
  });

  test("a poll times out cleanly: undefined after its timeout, and an item offered later is kept", async () => {
    const h = await startGrid(3, P);
    const { rest } = others(h, "late");
    const q = rest[0].grid.getQueue<string>("late");
    const start = h.clock.now();
    const r = await h.until(timed(h, q.poll({ timeoutMs: 700 })));
    expect(r.value).toBeUndefined();
    expect(r.at - start).toBeGreaterThanOrEqual(700);
    expect(r.at - start).toBeLessThan(900);
    await h.until(rest[1].grid.getQueue<string>("late").offer("x"));
    expect(await h.until(q.size())).toBe(1);
    expect(await h.until(q.poll())).toBe("x");
    h.stop();
  });

  test("a waiting offer to a full queue is answered when a poll makes room", async () => {
    const h = await startGrid(3, P);
    const { rest } = others(h, "full");
    const q0 = rest[0].grid.getQueue<number>("full", { capacity: 1 });
    const q1 = rest[1].grid.getQueue<number>("full", { capacity: 1 });
    await h.until(q0.offer(1));
    const offer = timed(h, q0.offer(2, { timeoutMs: 10_000 }));
    await h.run(3000);
    const polledAt = h.clock.now();
    expect(await h.until(q1.poll())).toBe(1);
    const r = await h.until(offer);
    expect(r.value).toBe(true);
    expect(r.at - polledAt).toBeLessThan(100);
    expect(await h.until(q1.poll())).toBe(2);
    h.stop();
  });

  test("a parked poll moves to the new primary when the old one is killed", async () => {
    const h = await startGrid(4, P);
    const { primary, rest } = others(h, "moving");
    const q = rest[0].grid.getQueue<string>("moving");
    const waiting = q.poll({ timeoutMs: 30_000 });
    await h.run(500);
    h.crash(primary, 1000);
    await h.run(3000);
    await h.until(rest[1].grid.getQueue<string>("moving").offer("after"));
    expect(await h.until(waiting)).toBe("after");
    expect(await h.until(q.size())).toBe(0);
    h.stop();
  });

  test("a lock waiter is granted on unlock, on the end of the holder's lease, and on the holder's death", async () => {
    const h = await startGrid(4, P);
    const key = "k";
    const { primary, rest } = others(h, key);
    const [m0, m1, m2] = rest.map((m) => m.grid.getMap<string, number>("m"));
    // Unlock.
    const t1 = await h.until(m0.lock(key));
    const callsBefore = rest[1].grid.invoker.stats.calls;
    const waiting = timed(h, m1.tryLock(key, { timeoutMs: 20_000 }));
    await h.run(6000);
    expect(rest[1].grid.invoker.stats.calls - callsBefore).toBeLessThanOrEqual(Math.ceil(6000 / MAX_PARK_MS) + 2);
    const unlockedAt = h.clock.now();
    await h.until(m0.unlock(key));
    const w = await h.until(waiting);
    expect(w.value).toBeGreaterThan(t1);
    expect(w.at - unlockedAt).toBeLessThan(100);
    await h.until(m1.unlock(key));
    // Lease end: the waiter gets it within a tick of it.
    await h.until(m0.lock(key, { leaseMs: 3000 }));
    const leased = h.clock.now();
    const w2 = await h.until(timed(h, m1.tryLock(key, { timeoutMs: 20_000 })));
    expect(w2.value).toBeDefined();
    expect(w2.at - leased).toBeGreaterThanOrEqual(3000);
    expect(w2.at - leased).toBeLessThan(3200);
    // Death of the holder's member (known 1 s after the kill).
    const victim = rest[1];
    const w3 = timed(h, m2.tryLock(key, { timeoutMs: 20_000 }));
    await h.run(1000);
    const killedAt = h.clock.now();
    h.crash(victim.id, 1000);
    const r3 = await h.until(w3);
    expect(r3.value).toBeDefined();
    expect(r3.at - killedAt).toBeLessThan(1300);
    expect(primary).not.toBe(victim.id);
    h.stop();
  });

  test("under split-brain protection a dead holder's lease runs out before its waiter is granted", async () => {
    const h = await startGrid(4, P, { config: { minClusterSize: 3, leaseMs: 1000 } });
    const key = "lease-outlives";
    const { primary, rest } = others(h, key);
    const [m0, , m2] = rest.map((m) => m.grid.getMap<string, number>("m"));
    await h.until(m0.lock(key, { leaseMs: 5000 }));
    const grantedAt = h.clock.now();
    const waiting = timed(h, m2.tryLock(key, { timeoutMs: 20_000 }));
    await h.run(500);
    // The holder's member is removed about 1 s after the kill; the lock stays its until its lease ends.
    h.crash(rest[0].id, 1000);
    const r = await h.until(waiting);
    expect(r.value).toBeDefined();
    expect(r.at - grantedAt).toBeGreaterThan(4900); // the lease runs from the grant, just before its answer arrived
    expect(r.at - grantedAt).toBeLessThan(5300);
    expect(primary).not.toBe(rest[0].id);
    h.stop();
  });

  test("a waiter keeps its place past the staleness limit: first come, first served after 8 s", async () => {
    const h = await startGrid(4, P);
    const key = "fifo";
    const { rest } = others(h, key);
    const [m0, m1, m2] = rest.map((m) => m.grid.getMap<string, number>("m"));
    await h.until(m0.lock(key));
    const first = m1.tryLock(key, { timeoutMs: 30_000 });
    await h.run(WAITER_STALE_MS - 1000);
    const second = m2.tryLock(key, { timeoutMs: 30_000 });
    await h.run(4000);
    await h.until(m0.unlock(key));
    const order: string[] = [];
    void first.then(() => order.push("first"));
    void second.then(() => order.push("second"));
    await h.until(first);
    await h.run(500);
    expect(order).toEqual(["first"]);
    await h.until(m1.unlock(key));
    await h.until(second);
    expect(order).toEqual(["first", "second"]);
    h.stop();
  });

  test("a parked request whose primary lost its quorum is not run there (split-brain protection)", async () => {
    const h = await startGrid(3, P, { config: { minClusterSize: 2, leaseMs: 1000 } });
    const { primary, rest } = others(h, "cut");
    const q = rest[0].grid.getQueue<string>("cut");
    void q.poll({ timeoutMs: 30_000 }).catch(() => {});
    await h.run(300);
    const prim = h.members.get(primary)!.grid;
    const before = prim.maps.counters.writesApplied;
    // The primary is cut off: its lease runs out within 1 s, the parked poll's time 2 s after parking.
    h.net.partition([[primary], rest.map((m) => m.id)]);
    await h.run(MAX_PARK_MS + 1000);
    expect(prim.quorum.check()?.code).toBe("QUORUM");
    expect(prim.maps.counters.writesApplied).toBe(before);
    h.stop();
  });
});
