/**
 * `clear()` and `destroy()` with a key locked by another member. The write fence refused both
 * with LOCKED in the lock's partition, and the proxy stopped at that first failure: clear left
 * 516 of 600 entries, an arbitrary part of the map, and destroy left 15 of 50 (found by an
 * internal review). Now clear runs on every partition and leaves whole only the one with the lock
 * (then fails with LOCKED), and destroy removes everything whatever the locks (as Hazelcast's).
 */
import { describe, expect, test } from "bun:test";
import type { ShoalError } from "../src/core/errors.ts";
import { partitionOf } from "../src/partition/partition_of.ts";
import { gridStarter } from "./support/grid_harness.ts";

const P = 271;
const start = gridStarter(P);

describe("clear and destroy with a key locked by another member", () => {
  test("clear empties every partition but the locked key's, then fails with LOCKED", async () => {
    const h = await start(2);
    const a = h.members.get("n0")!.grid.getMap<string, number>("m");
    const b = h.members.get("n1")!.grid.getMap<string, number>("m");
    const keys = Array.from({ length: 600 }, (_, i) => `k${i}`);
    await h.until(a.putAll(keys.map((k, i) => [k, i] as [string, number])));
    const locked = keys.reduce((x, y) => partitionOf(x, P) <= partitionOf(y, P) ? x : y);
    const sameP = keys.filter((k) => partitionOf(k, P) === partitionOf(locked, P)).length;
    await h.until(b.lock(locked));
    const err = await h.until(a.clear()).then(() => null, (e) => e as ShoalError);
    expect(err?.code).toBe("LOCKED");
    expect(await h.until(a.size())).toBe(sameP);
    h.stop();
  });

  test("destroy removes every entry whatever the locks; the lock stays with its holder", async () => {
    const h = await start(2);
    const a = h.members.get("n0")!.grid.getMap<string, number>("m");
    const b = h.members.get("n1")!.grid.getMap<string, number>("m");
    for (let i = 0; i < 50; i++) await h.until(a.set(`k${i}`, i));
    await h.until(b.lock("k1"));
    await h.until(a.destroy());
    expect(await h.until(a.size())).toBe(0);
    expect(await h.until(a.isLocked("k1"))).toBe(true);
    h.stop();
  });
});
