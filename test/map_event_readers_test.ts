/**
 * Every partition copy remembers which maps' events listeners read from it (`eventReaders`), so
 * that its snapshots carry those maps' events. Nothing removed an entry: opening and closing a
 * listener (or `GET /maps/<name>/events`) with a new map name each time added one entry per
 * partition for ever (found by an internal review). A copy now remembers at most
 * MAX_EVENT_READERS maps, and forgets those no poll read within EVENT_READERS_MS.
 */
import { expect, test } from "bun:test";
import { startGrid } from "./support/grid_harness.ts";
import { MAX_EVENT_READERS, type PartitionData } from "../src/map/partition_data.ts";

test("entry-listener map names polled long ago are not kept per partition forever", async () => {
  const P = 31, N = 1500;
  const h = await startGrid(2, P);
  try {
    const g = h.members.get("n0")!.grid;
    for (let i = 0; i < N; i++) {
      const m = g.getMap<string, number>(`listened-${i}`);
      const id = await h.until(m.addEntryListener(() => {}));
      m.removeEntryListener(id);
    }
    const count = () => {
      let n = 0;
      for (const mem of h.live()) {
        const held = mem.grid.maps.housekeeping.host.held() as Iterable<PartitionData>;
        for (const d of held) n += d.eventReaders.size;
      }
      return n;
    };
    const peak = count();
    expect(peak).toBeLessThanOrEqual(MAX_EVENT_READERS * P);
    // Two minutes with no listener at all: every entry is older than the 60 s the snapshots look at.
    await h.run(120_000);
    const after = count();
    expect(after).toBe(0);
  } finally {
    h.stop();
  }
}, 300_000);
