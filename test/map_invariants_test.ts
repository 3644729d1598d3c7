/**
 * The map layer's loud invariant: a replica applies write `seq` only right after `seq - 1`.
 * A backup guards first (a gap makes it pull, never apply); applying out of order anyway
 * fails an assert().
 */
import { describe, expect, test } from "bun:test";
import { PartitionData } from "../src/map/partition_data.ts";
import { Kind } from "../src/wire/kinds.ts";
import { GridHarness } from "./support/grid_harness.ts";

const put = (seq: number) => ({
  seq,
  r: null,
  e: [{ m: "m", k: new Uint8Array([seq]), v: new Uint8Array([1]), at: 0 }],
});

describe("a replica applies writes in sequence", () => {
  test("applying seq 3 after 1 fails an assertion and changes nothing", () => {
    const d = new PartitionData(0);
    d.applyEntry(put(1));
    expect(() => d.applyEntry(put(3))).toThrow(/Assertion failed: partition 0 applies seq 3 after 1/);
    expect(d.seq).toBe(1);
    expect(d.entryCount).toBe(1);
  });

  test("a backup that receives a gap from its primary pulls instead of applying", async () => {
    const h = new GridHarness({ config: { partitionCount: 7 } });
    await h.add("a");
    const b = await h.add("b");
    await h.run(3000);
    const t = b.grid.partitions.table;
    const p = t.replicas.findIndex((r) => r[0] === "a" && r.includes("b"));
    expect(p).toBeGreaterThanOrEqual(0);
    const primary = h.members.get("a")!;
    const mine = primary.grid.maps.debugReplicas().find((r) => r.p === p)!;
    const before = b.grid.maps.debugReplicas().find((r) => r.p === p)!;
    const pulls = b.grid.maps.counters.pulls;
    primary.transport.send("b", {
      t: Kind.MapBackupOps,
      p,
      e: t.epochs[p],
      l: mine.lineage,
      ops: [put(before.seq + 2)],
    });
    await h.run(5);
    expect(h.handlerErrors).toEqual([]);
    expect(b.grid.maps.counters.pulls).toBe(pulls + 1);
    expect(b.grid.maps.debugReplicas().find((r) => r.p === p)!.seq).toBe(before.seq);
    h.stop();
  });
});
