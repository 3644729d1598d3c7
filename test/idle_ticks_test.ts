/**
 * The periodic work of an idle grid pays only when there is work (core/tick_pace.ts): the map
 * layer's tick sleeps between anti-entropy rounds and the master skips passes whose inputs did
 * not change. These tests check that what the skipped ticks did still happens: a backup whose
 * copy went wrong while everything slept is repaired by the next round, a write wakes the tick,
 * and a crash still makes the master repair the table at once. In virtual time.
 */
import { describe, expect, test } from "bun:test";
import { partitionOf } from "../src/partition/partition_of.ts";
import { type GridHarness, incompleteReplication, startGrid } from "./support/grid_harness.ts";

const P = 16;
const AE = 2000; // antiEntropyMs (the default)

function runs(h: GridHarness): number {
  return h.live().reduce((n, m) => n + m.grid.maps.tickStats.runs, 0);
}

async function idleGrid(): Promise<GridHarness> {
  const h = await startGrid(3, P, { seed: 11 });
  expect(await h.runUntil(() => incompleteReplication(h, P) === null, 20_000)).toBe(true);
  const map = h.members.get("n0")!.grid.getMap<string, string>("m");
  await h.until(map.putAll(Array.from({ length: 64 }, (_, i) => [`k${i}`, `v${i}`] as [string, string])));
  await h.run(3 * AE);
  return h;
}

describe("idle ticks", () => {
  test("an idle grid's map tick sleeps between anti-entropy rounds, and a write wakes it", async () => {
    const h = await idleGrid();
    const before = runs(h);
    await h.run(10_000);
    const idleRuns = runs(h) - before;
    // At the fixed pace: 3 members × 10 s / 50 ms = 600 runs. Each round (every 2 s) wakes each
    // member a few times: its own round, the checks of the others and their answers.
    expect(idleRuns).toBeLessThan(120);
    expect(idleRuns).toBeGreaterThanOrEqual(3 * 5);
    // A write while everything sleeps: answered as fast as at the usual pace, and replicated.
    const map = h.members.get("n1")!.grid.getMap<string, string>("m");
    const t0 = h.clock.now();
    await h.until(map.set("late", "w"));
    expect(h.clock.now() - t0).toBeLessThan(100);
    expect(incompleteReplication(h, P)).toBeNull();
    h.stop();
  }, 60_000);

  test(
    "a backup whose copy went wrong while the grid was idle is repaired by the next anti-entropy round",
    async () => {
      const h = await idleGrid();
      const p = partitionOf("k1", P);
      const [primary, backup] = h.members.get("n0")!.grid.partitions.table.replicas[p];
      const entries = () => h.members.get(backup)!.grid.maps.debugReplicas().find((r) => r.p === p)?.entries ?? 0;
      const want = entries();
      expect(want).toBeGreaterThan(0);
      const sleeps = h.members.get(primary)!.grid.maps.tickStats.sleeps;
      h.members.get(backup)!.grid.maps.debugLoseCopy(p);
      expect(entries()).toBe(0);
      expect(incompleteReplication(h, P)).not.toBeNull();
      // The next round finds the copy's digest wrong and refills it: within one period (plus the
      // transfer), as when the tick ran every 50 ms.
      const t0 = h.clock.now();
      expect(await h.runUntil(() => incompleteReplication(h, P) === null, 2 * AE, 10)).toBe(true);
      expect(h.clock.now() - t0).toBeLessThanOrEqual(AE + 500);
      expect(entries()).toBe(want);
      // It slept meanwhile.
      expect(h.members.get(primary)!.grid.maps.tickStats.sleeps).toBeGreaterThan(sleeps);
      expect(h.handlerErrors).toEqual([]);
      h.stop();
    },
    60_000,
  );

  test(
    "the master skips passes while nothing changes, and still repairs the table at once when a member dies",
    async () => {
      const h = await idleGrid();
      const master = h.live().find((m) => m.grid.partitions.masterActive)!;
      const s = master.grid.partitions.stats;
      const [passes, skipped] = [s.masterPasses, s.masterPassesSkipped];
      await h.run(5_000);
      expect(s.masterPasses).toBe(passes);
      expect(s.masterPassesSkipped).toBeGreaterThan(skipped);
      const victim = h.live().find((m) => m !== master)!.id;
      h.crash(victim, 500);
      await h.run(600);
      // The view change ran a pass: no row names the dead member any more.
      expect(s.masterPasses).toBeGreaterThan(passes);
      expect(master.grid.partitions.table.replicas.every((r) => !r.includes(victim))).toBe(true);
      expect(await h.runUntil(() => incompleteReplication(h, P) === null, 20_000)).toBe(true);
      h.stop();
    },
    60_000,
  );

  test(
    "after a failover without split-brain protection, the promoted primaries hold no fence and their ticks sleep again",
    async () => {
      const h = await idleGrid();
      const victim = h.live().find((m) => !m.grid.partitions.masterActive)!.id;
      h.crash(victim, 500);
      expect(await h.runUntil(() => incompleteReplication(h, P) === null, 20_000)).toBe(true);
      await h.run(3 * AE);
      // A primary appointed without a handoff waits out its predecessor's lease only under
      // protection; without it the wait used to stay until a request reached the partition, and
      // its primary's tick never went quiet.
      for (const m of h.live()) {
        for (let p = 0; p < P; p++) expect(m.grid.maps.fenceOf(p)).toBeNull();
      }
      const before = runs(h);
      await h.run(10_000);
      // 2 members × 10 s / 50 ms = 400 runs at the fixed pace.
      expect(runs(h) - before).toBeLessThan(80);
      h.stop();
    },
    60_000,
  );
});
