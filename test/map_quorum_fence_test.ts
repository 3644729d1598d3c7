/**
 * The fence of new primaries under split-brain protection (Quorum.fenceCleared): every primary a
 * table appoints without a handoff waits out its predecessor's lease once, and the partitions
 * that table appointed end their wait together. And the mark on tables a master publishes
 * without its quorum (PartitionTable.nq), which a new master's collect passes over. In virtual time.
 */
import { describe, expect, test } from "bun:test";
import { partitionOf } from "../src/partition/partition_of.ts";
import { incompleteReplication, startGrid } from "./support/grid_harness.ts";

const P = 16;
const LEASE = 1000;

describe("the fence of primaries promoted by one table", () => {
  test(
    "ends for all of them at once: a partition whose wait another one ended does not wait a lease again",
    async () => {
      const h = await startGrid(5, P, { seed: 7, config: { minClusterSize: 3, leaseMs: LEASE } });
      expect(await h.runUntil(() => incompleteReplication(h, P) === null, 20_000)).toBe(true);
      // One key per partition.
      const keys: string[] = [];
      for (let i = 0; keys.length < P; i++) {
        const k = `k${i}`;
        if (!keys.some((x) => partitionOf(x, P) === partitionOf(k, P))) keys.push(k);
      }
      const table = () => h.live()[0].grid.partitions.table;
      const master = h.live().find((m) => m.grid.partitions.masterActive)!.id;
      // A data member that leads some partitions (not the master) is killed: its backups are promoted
      // without a handoff, fenced by the table that appoints them.
      const victim = h.live().find((m) => m.id !== master && table().replicas.some((r) => r[0] === m.id))!.id;
      const led = table().replicas.flatMap((r, p) => r[0] === victim ? [p] : []);
      expect(led.length).toBeGreaterThan(1);
      h.crash(victim, 500);
      expect(await h.runUntil(() => !table().replicas.some((r) => r.includes(victim)), 10_000, 5)).toBe(true);
      const fenced = h.live().flatMap((m) => led.filter((p) => m.grid.maps.fenceOf(p) !== null).map((p) => ({ p, m })));
      // Several promoted partitions share one member and one appointing table.
      const byStamp = new Map<string, number[]>();
      for (const { p, m } of fenced) {
        const f = m.grid.maps.fenceOf(p)!;
        const key = `${m.id}:${f.term}:${f.version}`;
        byStamp.set(key, [...(byStamp.get(key) ?? []), p]);
      }
      const shared = [...byStamp.values()].find((ps) => ps.length > 1);
      expect(shared).toBeDefined();
      // A write to each of them, one after another, from a member that survived.
      const map = h.members.get(master)!.grid.getMap<string, string>("m");
      const t0 = h.clock.now();
      const took: number[] = [];
      for (const p of shared!) {
        const k = keys.find((x) => partitionOf(x, P) === p)!;
        const start = h.clock.now();
        await h.until(map.set(k, "after"), 30_000);
        took.push(h.clock.now() - start);
      }
      // The first waits out the lease (plus its margin and a round of pings); the others find that
      // wait over. Before, each one after the first waited a whole lease again.
      expect(took[0]).toBeLessThanOrEqual(LEASE + 500);
      for (const ms of took.slice(1)) expect(ms).toBeLessThan(200);
      expect(h.clock.now() - t0).toBeLessThan(LEASE + 1000);
      h.stop();
    },
    60_000,
  );
});

describe("tables a master publishes without its quorum", () => {
  test("are marked, and the mark goes once the quorum is back", async () => {
    const h = await startGrid(3, P, { seed: 3, config: { minClusterSize: 3, leaseMs: LEASE } });
    expect(await h.runUntil(() => incompleteReplication(h, P) === null, 20_000)).toBe(true);
    const master = h.live().find((m) => m.grid.partitions.masterActive)!;
    expect(master.grid.partitions.table.nq).toBeUndefined();
    // 2 of 3 left: no quorum. The master still repairs its table, and marks what it publishes.
    const victim = h.live().find((m) => m !== master)!.id;
    const before = master.grid.partitions.table.version;
    h.crash(victim, 500);
    expect(await h.runUntil(() => master.grid.partitions.table.version > before, 10_000, 5)).toBe(true);
    expect(master.grid.quorum.refusal()).not.toBeNull();
    expect(master.grid.partitions.table.nq).toBe(true);
    // The other survivor holds the mark too (a collect would pass this table over).
    const other = h.live().find((m) => m !== master)!;
    expect(await h.runUntil(() => other.grid.partitions.table.nq === true, 5_000, 5)).toBe(true);
    // A third member again: the quorum is back, and the master's next table is unmarked.
    await h.add("n9");
    expect(await h.runUntil(() => master.grid.quorum.refusal() === null, 10_000)).toBe(true);
    expect(await h.runUntil(() => h.live().every((m) => m.grid.partitions.table.nq === undefined), 10_000)).toBe(true);
    h.stop();
  }, 60_000);
});
