/**
 * Tombstones (src/map/tombstones.ts) were bounded by count only (4,096 per partition copy),
 * not by bytes, while a key may be up to 4 MiB: every removal of a large key left the whole key
 * in the partition, on the primary and every backup, for 10 minutes (700 removed keys of 64 KiB:
 * 6.9 MiB in one copy; found by an internal review). They are now bounded in bytes too.
 */
import { expect, test } from "bun:test";
import { startGrid } from "./support/grid_harness.ts";
import type { PartitionData } from "../src/map/partition_data.ts";

test("the removed keys a partition copy remembers are bounded in bytes", async () => {
  const P = 7;
  const h = await startGrid(2, P);
  try {
    const g = h.members.get("n0")!.grid;
    const m = g.getMap<string, number>("sessions");
    const KEY = 64 * 1024, N = 700;
    for (let i = 0; i < N; i++) {
      const key = `${i}-`.padEnd(KEY, "k");
      await h.until(m.set(key, i));
      await h.until(m.delete(key));
    }
    expect(await h.until(m.size())).toBe(0);
    let maxCopy = 0, total = 0;
    for (const mem of h.live()) {
      for (const d of mem.grid.maps.housekeeping.host.held() as Iterable<PartitionData>) {
        let b = 0;
        for (const t of d.tombstones.values()) b += t.key.byteLength;
        maxCopy = Math.max(maxCopy, b);
        total += b;
      }
    }
    // At most 256 KiB of keys per copy, and the newest removal always (64 KiB here).
    expect(maxCopy).toBeLessThanOrEqual(256 * 1024 + KEY);
    expect(total).toBeGreaterThan(0);
  } finally {
    h.stop();
  }
}, 120_000);
