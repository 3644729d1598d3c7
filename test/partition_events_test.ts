import { describe, expect, test } from "bun:test";
import { partitionEvents } from "../src/partition/partition_events.ts";
import type { PartitionTable } from "../src/partition/partition_table.ts";
import { GridHarness } from "./support/grid_harness.ts";

const table = (replicas: string[][], epochs = replicas.map(() => 1)): PartitionTable =>
  ({
    version: 1,
    term: 1,
    partitionCount: replicas.length,
    replicas,
    epochs,
    migrations: new Map(),
  }) as unknown as PartitionTable;

describe("partition events", () => {
  test("a changed row is a migration, a promotion when the new primary was a backup; an emptied row is lost", () => {
    const prev = table([["a", "b"], ["b", "c"], ["c", "a"], ["a"]]);
    const next = table([["a", "b"], ["c", "d"], ["d", "c"], []], [1, 2, 2, 1]);
    expect(partitionEvents(prev, next)).toEqual([
      { type: "migrated", partition: 1, from: ["b", "c"], to: ["c", "d"], promoted: true, epoch: 2 },
      { type: "migrated", partition: 2, from: ["c", "a"], to: ["d", "c"], promoted: false, epoch: 2 },
      { type: "lost", partition: 3, lostReplicas: ["a"] },
    ]);
    expect(partitionEvents(prev, prev)).toEqual([]);
  });

  test("a member's crash is seen by a listener on another member as promotions of the dead member's primaries", async () => {
    const h = new GridHarness({ config: { partitionCount: 13 } });
    for (const id of ["n0", "n1", "n2"]) await h.add(id);
    await h.run(3000);
    const events: string[] = [];
    const off = h.members.get("n2")!.grid.addPartitionListener((e) => {
      if (e.type === "migrated" && e.from[0] === "n0") events.push(`${e.partition}:${e.promoted}`);
    });
    const owned = h.members.get("n2")!.grid.partitions.table.replicas.filter((r) => r[0] === "n0").length;
    h.crash("n0", 500);
    await h.run(5000);
    expect(events.length).toBe(owned);
    expect(events.every((e) => e.endsWith(":true"))).toBe(true);
    off();
    h.stop();
  });
});
