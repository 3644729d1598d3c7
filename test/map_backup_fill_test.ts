/**
 * Backups created in place (DESIGN.md invariant 10, issue 11): when a second data member
 * joins, the master gives every partition its backup in one table update. A partition the
 * master leads that never held anything has nothing to copy, so its backup is in sync in
 * that same update; only partitions holding entries list their new backup as filling until
 * their primary reports it in sync. Writes to the empty ones still wait for the new backup's
 * ack (two copies) before they are acknowledged.
 */
import { describe, expect, test } from "bun:test";
import { fillingOf, type PartitionTable } from "../src/partition/partition_table.ts";
import { partitionOf } from "../src/partition/partition_of.ts";
import { GridHarness } from "./support/grid_harness.ts";

const P = 31;

describe("backups created in place", () => {
  test("empty partitions' backups are in sync in the table update that creates them", async () => {
    const h = new GridHarness({ seed: 7, config: { partitionCount: P } });
    const n0 = await h.add("n0");
    await h.run(500);
    const m = n0.grid.getMap<string, number>("m");
    const loaded = new Set<number>();
    for (let i = 0; i < 6; i++) {
      await h.until(m.set(`k${i}`, i));
      loaded.add(partitionOf(`k${i}`, P));
    }
    expect(loaded.size).toBeGreaterThan(1);
    const tables: PartitionTable[] = [];
    n0.grid.partitions.onTableChange((t) => tables.push(t));
    await h.add("n1");
    await h.run(1);
    await h.runUntil(() => tables.some((t) => t.replicas.some((r) => r.length === 2)), 1000, 1);
    // The first table naming a backup names one for every partition.
    const first = tables.find((t) => t.replicas.some((r) => r.length === 2))!;
    expect(first.replicas.every((r) => r.length === 2 && r[0] === "n0" && r[1] === "n1")).toBe(true);
    for (let p = 0; p < P; p++) expect([p, fillingOf(first, p).length > 0]).toEqual([p, loaded.has(p)]);
    expect(n0.grid.partitions.stats.backupsCreatedInSync).toBe(P - loaded.size);
    // Right after that update only the loaded partitions lack a backup in sync.
    expect(n0.grid.partitionSummary().replicasMissing).toBe(loaded.size);
    // The loaded ones follow once their primary reports the copies in sync.
    expect(await h.runUntil(() => n0.grid.partitionSummary().replicasMissing === 0, 5000, 5)).toBe(true);
    // A write to a partition that was empty is held by both members when acknowledged.
    const empty = [...Array(200).keys()].map((i) => `e${i}`).find((k) => !loaded.has(partitionOf(k, P)))!;
    await h.until(m.set(empty, 42));
    const p = partitionOf(empty, P);
    const holders = h.live().filter((x) => x.grid.maps.debugReplicas().some((r) => r.p === p && r.seq > 0));
    expect(holders.map((x) => x.id).sort()).toEqual(["n0", "n1"]);
    h.stop();
  });
});
