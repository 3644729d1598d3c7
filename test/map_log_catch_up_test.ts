/**
 * A backup that missed writes catches up from the primary's replication log when the log
 * still holds them, and from a snapshot when the log no longer reaches back that far (the log
 * is bounded by bytes, `logBytesPerPartition`, well below what a partition holds). Either
 * way it ends with the primary's content.
 */
import { describe, expect, test } from "bun:test";
import { partitionOf } from "../src/partition/partition_of.ts";
import { decodeValue, encodeValue } from "../src/wire/codec.ts";
import { GridHarness, incompleteReplication } from "./support/grid_harness.ts";

const P = 7;

async function twoMembers() {
  const h = new GridHarness({ seed: 11, config: { partitionCount: P, map: { logBytesPerPartition: 4096 } } });
  await h.add("n0");
  await h.add("n1");
  expect(await h.runUntil(() => incompleteReplication(h, P) === null, 10_000)).toBe(true);
  return h;
}

/** Writes `n` values of `bytes` bytes to keys of one partition while its primary's messages to its backup are lost. */
async function writeWhileCut(h: GridHarness, n: number, bytes: number) {
  const keys = [...Array(500).keys()].map((i) => `k${i}`).filter((k) => partitionOf(k, P) === 3).slice(0, n);
  expect(keys.length).toBe(n);
  const [primary, backup] = h.members.get("n0")!.grid.partitions.table.replicas[3];
  const pm = h.members.get(primary)!, bm = h.members.get(backup)!;
  const before = { ...pm.grid.maps.counters };
  const m = pm.grid.getMap<string, string>("m");
  h.net.setLink(primary, backup, { loss: 1 });
  const writes = keys.map((k, i) => m.set(k, `${i}`.padEnd(bytes, "x")));
  await h.run(200);
  h.net.setLink(primary, backup, { loss: 0 });
  await h.until(Promise.all(writes));
  expect(await h.runUntil(() => incompleteReplication(h, P) === null, 10_000)).toBe(true);
  // Same sequence, lineage and digest on both copies (above); and the backup serves every value.
  for (const [i, k] of keys.entries()) {
    const local = bm.grid.maps.debugLocalValue(3, "m", encodeValue(k));
    expect(local && decodeValue(local)).toBe(`${i}`.padEnd(bytes, "x"));
  }
  const c = pm.grid.maps.counters;
  return { logResends: c.logResends - before.logResends, snapshots: c.snapshotsSent - before.snapshotsSent };
}

describe("catch-up after a gap", () => {
  test("a gap the log holds is re-shipped from the log, without a snapshot", async () => {
    const h = await twoMembers();
    const r = await writeWhileCut(h, 3, 100);
    expect(r.logResends).toBeGreaterThan(0);
    expect(r.snapshots).toBe(0);
    h.stop();
  });

  test("a gap larger than the log's byte limit is filled by a snapshot", async () => {
    const h = await twoMembers();
    // 20 writes of 1 KB: more than the 4 KiB log of the partition holds.
    const r = await writeWhileCut(h, 20, 1000);
    expect(r.snapshots).toBeGreaterThan(0);
    h.stop();
  });
});
