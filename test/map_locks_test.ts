import { describe, expect, test } from "bun:test";
import { ShoalError } from "../src/core/errors.ts";
import {
  executeLockOp,
  keepHighWaters,
  LOCK_HIGH_WATER,
  type LockState,
  normalize,
  WAITER_STALE_MS,
} from "../src/map/locks.ts";
import { executeOp, OpCode, type OpOutcome } from "../src/map/operations.ts";
import { PartitionData } from "../src/map/partition_data.ts";
import { encodeValue } from "../src/wire/codec.ts";
import { type GridHarness, gridStarter, incompleteReplication, replicasOf } from "./support/grid_harness.ts";

const P = 13;

const cluster = gridStarter(P);

const error = (h: GridHarness, p: Promise<unknown>) => h.until(p.then(() => null, (e) => e as ShoalError));

/** A 3-member cluster, `key`'s primary in it, and the two other members (in id order). */
async function clusterAround(key: string) {
  const h = await cluster(3);
  const primary = replicasOf(h, key)[0];
  return { h, primary, others: ["n0", "n1", "n2"].filter((id) => id !== primary) };
}

describe("normalize (the lock as it stands at a time)", () => {
  const all = () => true;
  test("a dead owner's lock goes to the first live waiter with the next token", () => {
    const s: LockState = {
      t: 4,
      o: ["a", ""],
      x: 0,
      w: [["dead", "", 0, 100], ["b", "x", 50, 100], ["c", "", 0, 100]],
    };
    const n = normalize(s, 200, (id) => id !== "a" && id !== "dead");
    expect(n).toEqual({ t: 5, o: ["b", "x"], x: 250, w: [["c", "", 0, 100]] });
  });
  test("a lease that ended frees the lock; a live owner within its lease keeps it", () => {
    const s: LockState = { t: 1, o: ["a", ""], x: 1000, w: [] };
    expect(normalize(s, 999, all).o).toEqual(["a", ""]);
    expect(normalize(s, 1000, all)).toEqual({ t: 1, o: null, x: 0, w: [] });
  });
  test("under split-brain protection a dead owner's lease runs out first; a lock without a lease ends at its death", () => {
    const leased: LockState = { t: 4, o: ["a", ""], x: 1000, w: [["b", "", 0, 900]] };
    const alive = (id: string) => id !== "a";
    // Without protection the death ends the hold at once.
    expect(normalize(leased, 950, alive).o).toEqual(["b", ""]);
    // With it, the owner (perhaps only paused or cut off) keeps the lock until its lease ends…
    expect(normalize(leased, 950, alive, true)).toEqual(leased);
    // …and then the next waiter gets it.
    expect(normalize(leased, 1000, alive, true)).toEqual({ t: 5, o: ["b", ""], x: 0, w: [] });
    const unleased: LockState = { t: 4, o: ["a", ""], x: 0, w: [] };
    expect(normalize(unleased, 950, alive, true).o).toBeNull();
  });
  test("a waiter that stopped polling loses its place", () => {
    const s: LockState = { t: 1, o: ["a", ""], x: 0, w: [["b", "", 0, 0], ["c", "", 0, WAITER_STALE_MS]] };
    expect(normalize(s, WAITER_STALE_MS + 1, all).w).toEqual([["c", "", 0, WAITER_STALE_MS]]);
  });
});

describe("lock records and tombstones", () => {
  test("freeing a lock leaves no tombstone: lock churn keeps a user map's tombstones", () => {
    // A freed lock's record is removed (no record per key ever locked); a removal left a
    // tombstone in the partition's bounded set, so 4,096 lock/unlock pairs pushed out the
    // tombstone that keeps a removed user key removed through a split's merge.
    const d = new PartitionData(0);
    let seq = 0, now = 1_000_000;
    const apply = (e: OpOutcome) => d.applyEntry({ seq: ++seq, c: `c${seq}`, r: e.result, e: e.effects });
    const defaults = () => ({ ttlMs: 0, maxIdleMs: 0 });
    apply(executeOp(d, OpCode.Set, { m: "users", k: encodeValue("alice"), v: encodeValue(1) }, now++, defaults));
    apply(executeOp(d, OpCode.Remove, { m: "users", k: encodeValue("alice") }, now++, defaults));
    for (let i = 0; i < 4096; i++) {
      const k = encodeValue(`order-${i}`);
      apply(executeLockOp(d, OpCode.LockAcquire, { m: "orders", k, h: "w", l: 0 }, now++, "me", () => true));
      apply(executeLockOp(d, OpCode.LockRelease, { m: "orders", k, h: "w" }, now++, "me", () => true));
    }
    expect(d.tombstones.get("users", encodeValue("alice"))).toBeDefined();
    expect(d.tombstones.size).toBe(1);
    // And the tokens still rise for a key locked again.
    const k = encodeValue("order-7");
    const again = executeLockOp(d, OpCode.LockAcquire, { m: "orders", k, h: "w", l: 0 }, now++, "me", () => true);
    expect((again.result as { tok: number }).tok).toBe(4097);
  });
});

describe("a merge and the lock high-water record", () => {
  test("whatever the policy, a merge never lowers or removes the high-water token", () => {
    const d = new PartitionData(0);
    const lm = "\u0001lock:orders";
    d.applyEntry({ seq: 1, c: "c1", r: null, e: [{ m: lm, k: LOCK_HIGH_WATER, v: encodeValue(10), at: 1 }] });
    const hw = (v: number | null) => ({ m: lm, k: LOCK_HIGH_WATER, v: v === null ? null : encodeValue(v), at: 5 });
    const other = { m: lm, k: encodeValue("k"), v: encodeValue({ t: 3, o: null, x: 0, w: [] }), at: 5 };
    const user = { m: "orders", k: encodeValue("k"), v: encodeValue(1), at: 5 };
    expect(keepHighWaters(d, [hw(5), hw(null), other, user])).toEqual([other, user]);
    expect(keepHighWaters(d, [hw(12)])).toEqual([hw(12)]);
  });
});

describe("locks on the grid", () => {
  test("tokens rise with every acquisition; others cannot take, unlock or write a held lock", async () => {
    const h = await cluster(3);
    const [m0, m1] = ["n0", "n1"].map((id) => h.members.get(id)!.grid.getMap<string, number>("m"));
    const t1 = await h.until(m0.lock("k"));
    expect(await h.until(m0.isLocked("k"))).toBe(true);
    expect(await h.until(m1.isLocked("k"))).toBe(true);
    expect(await h.until(m1.tryLock("k"))).toBeUndefined();
    expect((await error(h, m1.unlock("k")))?.code).toBe("CONFLICT");
    // Writes to the key from another member fail with LOCKED; from the owner's member they pass.
    expect((await error(h, m1.set("k", 1)))?.code).toBe("LOCKED");
    expect((await error(h, m1.executeOnKey("k", "increment")))?.code).toBe("LOCKED");
    await h.until(m0.set("k", 7));
    expect(await h.until(m1.get("k"))).toBe(7);
    await h.until(m0.unlock("k"));
    expect(await h.until(m1.isLocked("k"))).toBe(false);
    await h.until(m1.set("k", 8));
    const t2 = await h.until(m1.lock("k"));
    expect(t2).toBeGreaterThan(t1);
    await h.until(m0.forceUnlock("k"));
    const t3 = await h.until(m0.lock("k"));
    expect(t3).toBeGreaterThan(t2);
    h.stop();
  });

  test("waiters are served first come, first served", async () => {
    const h = await cluster(3);
    const maps = [0, 1, 2].map((i) => h.members.get(`n${i}`)!.grid.getMap<string, number>("m"));
    await h.until(maps[0].lock("q"));
    const order: string[] = [];
    const waiter = async (i: number, owner: string) => {
      const tok = await maps[i].lock("q", { owner });
      order.push(owner);
      await new Promise((r) => h.clock.setTimer(50, () => r(null)));
      await maps[i].unlock("q", { owner });
      return tok;
    };
    const w1 = waiter(2, "first");
    await h.run(100);
    const w2 = waiter(1, "second");
    await h.run(100);
    const w3 = waiter(2, "third");
    await h.run(100);
    await h.until(maps[0].unlock("q"));
    const toks = await h.until(Promise.all([w1, w2, w3]));
    expect(order).toEqual(["first", "second", "third"]);
    expect(toks[0] < toks[1] && toks[1] < toks[2]).toBe(true);
    h.stop();
  });

  test("a lock held by a killed member is released within detection time; the next owner gets a higher token", async () => {
    const key = "dead-owner";
    const { h, others: [owner, next] } = await clusterAround(key);
    const tok = await h.until(h.members.get(owner)!.grid.getMap("m").lock(key));
    const waiting = h.members.get(next)!.grid.getMap("m").tryLock(key, { timeoutMs: 10_000 });
    await h.run(300);
    const killedAt = h.clock.now();
    h.crash(owner, 1000);
    const tok2 = await h.until(waiting);
    expect(tok2).toBeGreaterThan(tok);
    expect(h.clock.now() - killedAt).toBeLessThan(1000 + 500);
    h.stop();
  });

  test("under split-brain protection a killed holder's leased lock holds everywhere until the lease ends or forceUnlock", async () => {
    const h = await cluster(5, { config: { minClusterSize: 3, leaseMs: 1000 } });
    const key = "dead-leased";
    const [primary] = replicasOf(h, key);
    const [holder, b, c] = [...h.members.keys()].filter((id) => id !== primary);
    const map = (id: string) => h.members.get(id)!.grid.getMap<string, number>("m");
    await h.until(map(holder).lock(key, { leaseMs: 8000 }));
    h.crash(holder, 1000);
    await h.run(3000); // the holder's member is out of the list
    expect(await h.until(map(b).isLocked(key))).toBe(true);
    expect((await error(h, map(b).put(key, 1)))?.code).toBe("LOCKED");
    // The lock's primary fails over while the dead holder's lease runs: still held there.
    h.crash(primary, 1000);
    await h.run(3000);
    expect(await h.until(map(c).isLocked(key))).toBe(true);
    const waiting = map(b).tryLock(key, { timeoutMs: 20_000 });
    await h.run(500);
    await h.until(map(c).forceUnlock(key));
    expect(typeof (await h.until(waiting))).toBe("number");
    h.stop();
  });

  test("a negative, fractional or NaN lease is refused, not taken for no lease", async () => {
    const h = await cluster(2);
    const m = h.members.get("n0")!.grid.getMap("m");
    for (const leaseMs of [-1, 0.5, NaN, 2 ** 32 * 1000]) {
      await expect(m.tryLock("k", { leaseMs })).rejects.toThrow(RangeError);
    }
    expect(await h.until(m.isLocked("k"))).toBe(false);
    h.stop();
  });

  test("a lease ends the lock", async () => {
    const h = await cluster(2);
    const m = h.members.get("n0")!.grid.getMap("m");
    const t1 = await h.until(m.lock("l", { leaseMs: 500 }));
    expect(await h.until(h.members.get("n1")!.grid.getMap("m").tryLock("l"))).toBeUndefined();
    await h.run(600);
    expect(await h.until(m.isLocked("l"))).toBe(false);
    expect(await h.until(h.members.get("n1")!.grid.getMap("m").tryLock("l"))).toBeGreaterThan(t1);
    h.stop();
  });

  test("the holder asking again gets its token with its lease restarted from that request", async () => {
    // A lock handed on from the queue while its waiter was not waiting (its cancel failed) is
    // answered to that waiter's next tryLock: the lease it counts from its request must hold
    // (before, it ran from the hand-over, and another owner got the lock within that lease).
    const h = await cluster(2);
    const m = h.members.get("n0")!.grid.getMap("m");
    const other = h.members.get("n1")!.grid.getMap("m");
    const t1 = await h.until(m.lock("r", { leaseMs: 500 }));
    await h.run(400);
    expect(await h.until(m.tryLock("r", { leaseMs: 500 }))).toBe(t1);
    await h.run(300);
    expect(await h.until(m.isLocked("r"))).toBe(true);
    expect(await h.until(other.tryLock("r"))).toBeUndefined();
    await h.run(300);
    expect(await h.until(other.tryLock("r"))).toBeGreaterThan(t1);
    h.stop();
  });

  test("a lock held by a survivor stays held across failover of its primary and across a migration", async () => {
    const key = "kept";
    const { h, primary, others: [owner, other] } = await clusterAround(key);
    const tok = await h.until(h.members.get(owner)!.grid.getMap("m").lock(key));
    h.crash(primary, 1000);
    await h.run(5000);
    const om = h.members.get(other)!.grid.getMap("m");
    expect(await h.until(om.isLocked(key))).toBe(true);
    expect(await h.until(om.tryLock(key))).toBeUndefined();
    await h.add("n3");
    await h.run(8000);
    expect(incompleteReplication(h, P)).toBeNull();
    expect(await h.until(h.members.get("n3")!.grid.getMap("m").isLocked(key))).toBe(true);
    await h.until(h.members.get(owner)!.grid.getMap("m").unlock(key));
    expect(await h.until(om.lock(key))).toBeGreaterThan(tok);
    h.stop();
  });

  test("a lock left free keeps no record; a key locked again, also after a failover, gets a higher token", async () => {
    // Each key ever locked used to keep its record forever (300 unlocked keys: 600 records on 2
    // members). Now a free lock with no waiter keeps none, and its token raises the lock map's
    // high-water record of the partition, which a key without a record starts from.
    const { h, primary, others: [a, b] } = await clusterAround("k0");
    const m = h.members.get(a)!.grid.getMap<string, number>("sessions");
    const first = new Map<string, number>();
    for (let i = 0; i < 60; i++) {
      first.set(`k${i}`, await h.until(m.lock(`k${i}`)));
      await h.until(m.set(`k${i}`, i));
      await h.until(m.unlock(`k${i}`));
    }
    await h.run(1000);
    const records = () => {
      let n = 0;
      for (const x of h.live()) {
        for (let p = 0; p < P; p++) {
          for (let i = 0; i < 60; i++) {
            if (x.grid.maps.debugLocalValue(p, "\u0001lock:sessions", encodeValue(`k${i}`)) !== undefined) n++;
          }
        }
      }
      return n;
    };
    expect(records()).toBe(0);
    h.crash(primary, 1000);
    await h.run(5000);
    const mb = h.members.get(b)!.grid.getMap<string, number>("sessions");
    for (let i = 0; i < 60; i++) {
      const tok = await h.until(mb.lock(`k${i}`));
      expect(tok).toBeGreaterThan(first.get(`k${i}`)!);
      await h.until(mb.unlock(`k${i}`));
    }
    // A held lock keeps its record; a waiter's record stays until the lock is free with none.
    const held = await h.until(m.lock("k1"));
    expect(await h.until(mb.isLocked("k1"))).toBe(true);
    await h.until(m.unlock("k1"));
    expect(await h.until(mb.lock("k1"))).toBeGreaterThan(held);
    await h.until(mb.unlock("k1"));
    await h.run(1000);
    expect(records()).toBe(0);
    h.stop();
  });

  test("3 members contend: never two holders at once, every increment under the lock counted, tokens rise", async () => {
    const h = await cluster(3, { loss: 0.01 });
    let holders = 0;
    let maxHolders = 0;
    let done = 0;
    const tokens: number[] = [];
    let stop = false;
    const loops = ["n0", "n1", "n2"].map(async (id) => {
      const map = h.members.get(id)!.grid.getMap<string, number>("m");
      while (!stop) {
        const tok = await map.lock("c");
        holders++;
        maxHolders = Math.max(maxHolders, holders);
        tokens.push(tok);
        const v = (await map.get("counter")) ?? 0;
        await map.set("counter", v + 1);
        done++;
        holders--;
        await map.unlock("c");
      }
    });
    await h.run(8000);
    stop = true;
    await h.until(Promise.all(loops));
    expect(maxHolders).toBe(1);
    expect(done).toBeGreaterThan(20);
    expect(await h.until(h.members.get("n0")!.grid.getMap("m").get("counter"))).toBe(done);
    expect(tokens.every((t, i) => i === 0 || t > tokens[i - 1])).toBe(true);
    h.stop();
  });

  test("lock records stay out of map listings; reserved and over-long names are refused", async () => {
    const h = await cluster(2);
    const g = h.members.get("n0")!.grid;
    await h.until(g.getMap("users").lock("a"));
    await h.until(g.getMap("users").set("a", 1));
    await h.run(500);
    const names = [...h.live().flatMap((m) => m.grid.localMaps().map((x) => x.name))];
    expect(names.every((n) => n === "users")).toBe(true);
    expect(h.live().flatMap((m) => m.grid.localMapEntries().map((x) => x.name)).every((n) => n === "users")).toBe(
      true,
    );
    expect(() => g.getMap("\u0001lock:users")).toThrow(/reserved/);
    expect((await error(h, g.getMap("x".repeat(256)).lock("a")))?.code).toBe("INVALID_ARGUMENT");
    h.stop();
  });
});
