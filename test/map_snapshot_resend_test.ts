/**
 * Snapshot chunks are resent only when one was lost, not because the receiver is slow: a
 * member joining over slow links (acks take longer than the retransmit interval) gets its
 * partitions with almost no chunk sent twice, and with lossy links the migration still
 * completes (lost chunks are resent).
 */
import { describe, expect, test } from "bun:test";
import type { MapService } from "../src/map/map_service.ts";
import {
  GridHarness,
  type GridHarness as H,
  incompleteReplication,
  migratedTo,
  putPadded,
} from "./support/grid_harness.ts";

const P = 16;
const MEMBERS = ["a", "b", "c"];

function sum(h: H, f: (c: MapService["counters"]) => number): number {
  return h.live().reduce((s, m) => s + f(m.grid.maps.counters), 0);
}

/**
 * Three members hold 3,000 entries (several chunks per partition); a fourth joins over links
 * with `delayMs` each way (and `loss` on them). Returns the harness once the migration is done.
 */
async function joinOverSlowLinks(
  seed: number,
  delayMs: number,
  loss: number,
): Promise<{ h: H; entries: Array<[string, string]>; done: boolean }> {
  const h = new GridHarness({ seed, config: { partitionCount: P, map: { snapshotChunkBytes: 2048 } } });
  for (const id of MEMBERS) await h.add(id);
  await h.run(2000);
  const entries = await putPadded(h, "a", 3000, 60);
  expect(incompleteReplication(h, P)).toBeNull();
  for (const id of MEMBERS) {
    h.net.setLink(id, "d", { delayMs, loss });
    h.net.setLink("d", id, { delayMs, loss });
  }
  await h.add("d");
  const done = await h.runUntil(() => migratedTo(h, 4), 120_000);
  for (const id of MEMBERS) {
    h.net.setLink(id, "d", { loss: 0 });
    h.net.setLink("d", id, { loss: 0 });
  }
  return { h, entries, done };
}

describe("snapshot chunk resends", () => {
  test(
    "a member joining over slow lossless links (ack round trip ~800 ms, retransmit interval 300 ms): resent chunk bytes stay under 5 % of those sent",
    async () => {
      const { h, entries, done } = await joinOverSlowLinks(11, 400, 0);
      expect(incompleteReplication(h, P)).toBeNull();
      expect(done).toBe(true);
      const sentBytes = sum(h, (c) => c.snapshotChunkBytesSent);
      const resentBytes = sum(h, (c) => c.snapshotChunkBytesResent);
      // Enough chunks moved to make the ratio meaningful (several per partition given to d).
      expect(sum(h, (c) => c.snapshotChunksSent)).toBeGreaterThan(50);
      expect(resentBytes).toBeLessThanOrEqual(0.05 * sentBytes);
      expect(sum(h, (c) => c.snapshotFastResends)).toBe(0);
      expect(sum(h, (c) => c.snapshotsRestarted)).toBe(0);
      const got = await h.until(h.members.get("d")!.grid.getMap<string, string>("m").getAll(entries.map(([k]) => k)));
      expect(entries.filter(([k, v]) => got.get(k) !== v).length).toBe(0);
      h.stop();
    },
    60_000,
  );

  test("with 10 % loss on the slow links the migration still completes: lost chunks are resent", async () => {
    const { h, entries, done } = await joinOverSlowLinks(12, 400, 0.1);
    expect(incompleteReplication(h, P)).toBeNull();
    expect(done).toBe(true);
    expect(sum(h, (c) => c.snapshotChunksResent)).toBeGreaterThan(0);
    const got = await h.until(h.members.get("d")!.grid.getMap<string, string>("m").getAll(entries.map(([k]) => k)));
    expect(entries.filter(([k, v]) => got.get(k) !== v).length).toBe(0);
    h.stop();
  }, 60_000);
});
