import { describe, expect, test } from "bun:test";
import { IndeterminateResultError } from "../src/core/errors.ts";
import { bystanderOf, gridStarter, incompleteReplication, replicasOf } from "./support/grid_harness.ts";

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

  for (const seed of [1, 3]) {
    test(`seed ${seed}: producers and consumers on different members, the queue's primary killed: every acknowledged offer delivered exactly once`, async () => {
      const h = await cluster(5, {
        seed,
        loss: 0.01,
        config: { invoke: { attemptTimeoutMs: 300, callTimeoutMs: 8000 } },
      });
      const name = "work";
      const primary = replicasOf(h, name)[0];
      const others = h.live().map((m) => m.id).filter((id) => id !== primary);
      const producers = others.slice(0, 2);
      const consumers = others.slice(2);
      const acked = new Set<string>();
      const maybe = new Set<string>();
      const delivered: string[] = [];
      let stopProducing = false;
      let n = 0;
      const prod = producers.map(async (id) => {
        const q = h.members.get(id)!.grid.getQueue<string>(name);
        while (!stopProducing) {
          await new Promise((r) => h.clock.setTimer(10, () => r(null)));
          const item = `i${n++}`;
          try {
            if (await q.offer(item)) acked.add(item);
          } catch (e) {
            if (e instanceof IndeterminateResultError) maybe.add(item);
            else throw e;
          }
        }
      });
      let stopConsuming = false;
      const cons = consumers.map(async (id) => {
        const q = h.members.get(id)!.grid.getQueue<string>(name);
        while (!stopConsuming) {
          try {
            const item = await q.poll({ timeoutMs: 200 });
            if (item !== undefined) delivered.push(item);
          } catch (e) {
            if (!(e instanceof IndeterminateResultError)) throw e;
            delivered.push("?indeterminate");
          }
        }
      });
      await h.run(1500);
      h.crash(primary, 1000);
      await h.run(3000);
      stopProducing = true;
      await h.until(Promise.all(prod));
      await h.run(2000);
      stopConsuming = true;
      await h.until(Promise.all(cons));
      const rest = await h.until(h.members.get(consumers[0])!.grid.getQueue<string>(name).drain());
      const all = [...delivered.filter((x) => x !== "?indeterminate"), ...rest];
      expect(delivered.filter((x) => x === "?indeterminate")).toEqual([]);
      expect(new Set(all).size).toBe(all.length); // nothing twice
      for (const item of acked) expect(all).toContain(item); // every acknowledged offer
      for (const item of all) expect(acked.has(item) || maybe.has(item)).toBe(true); // nothing invented
      expect(acked.size).toBeGreaterThan(200);
      await h.run(3000);
      expect(incompleteReplication(h, P)).toBeNull();
      h.stop();
    });
  }
});
