/**
 * Snapshot chunks are resent only when one was lost, not because the receiver is slow: a
 * member joining over slow links (acks take longer than the retransmit interval) gets its
 * partitions with almost no chunk sent twice, and with lossy links the migration still
 * completes (lost chunks are resent).
 */
import { describe, expect, test } from "bun:test";
import type { MapService } from "../src/map/map_service.ts";
import { type GridHarness as H, GridHarness } from "./support/grid_harness.ts";

const P = 16;
const MEMBERS = ["a", "b", "c"];

/** Null when every partition has 2 agreeing replicas, no migration is in flight and every member holds the master's table. */
function incomplete(h: H): string | null {
  const members = h.live();
  const master = members.find((m) => m.grid.partitions.masterActive);
  if (!master) return "no active master";
  const t = master.grid.partitions.table;
  if (t.migrations.size > 0) return `${t.migrations.size} migrations in flight`;
  for (const m of members) if (m.grid.partitions.table.version !== t.version) return `${m.id} holds table ${m.grid.partitions.table.version}, master ${t.version}`;
  for (let p = 0; p < P; p++) {
    const row = t.replicas[p];
    if (row.length !== 2) return `partition ${p} has ${row.length} replicas`;
    const reps = row.map((id) => h.members.get(id)?.grid.maps.debugReplicas().find((r) => r.p === p));
    if (reps.some((r) => !r)) return `partition ${p}: a replica holds nothing`;
    const [a, b] = reps as NonNullable<(typeof reps)[number]>[];
    if (!a.primary || a.seq !== b.seq || a.digest[0] !== b.digest[0] || a.digest[1] !== b.digest[1] || a.lineage !== b.lineage) {
      return `partition ${p}: replicas disagree (${a.lineage}/${a.seq} vs ${b.lineage}/${b.seq})`;
    }
  }
  return null;
}

async function runUntil(h: H, pred: () => boolean, maxMs: number, stepMs = 50): Promise<boolean> {
  for (let t = 0; t < maxMs; t += stepMs) {
    if (pred()) return true;
    await h.run(stepMs);
  }
  return pred();
}

function sum(h: H, f: (c: MapService["counters"]) => number): number {
  return h.live().reduce((s, m) => s + f(m.grid.maps.counters), 0);
}

/**
 * Three members hold 3,000 entries (several chunks per partition); a fourth joins over links
 * with `delayMs` each way (and `loss` on them). Returns the harness once the migration is done.
 */
async function joinOverSlowLinks(seed: number, delayMs: number, loss: number): Promise<{ h: H; entries: Array<[string, string]>; done: boolean }> {
  const h = new GridHarness({ seed, config: { partitionCount: P, map: { snapshotChunkBytes: 2048 } } });
  for (const id of MEMBERS) await h.add(id);
  await h.run(2000);
  const map = h.members.get("a")!.grid.getMap<string, string>("m");
  const entries: Array<[string, string]> = Array.from({ length: 3000 }, (_, i) => [`k${i}`, `value-${i}-${"x".repeat(60)}`]);
  await h.until(map.putAll(entries));
  expect(incomplete(h)).toBeNull();
  for (const id of MEMBERS) {
    h.net.setLink(id, "d", { delayMs, loss });
    h.net.setLink("d", id, { delayMs, loss });
  }
  await h.add("d");
  const done = await runUntil(h, () => incomplete(h) === null && Object.keys(h.members.get("a")!.grid.partitionSummary().owners).length === 4, 120_000);
  for (const id of MEMBERS) {
    h.net.setLink(id, "d", { loss: 0 });
    h.net.setLink("d", id, { loss: 0 });
  }
  return { h, entries, done };
}

describe("snapshot chunk resends", () => {
  test("a member joining over slow lossless links (ack round trip ~800 ms, retransmit interval 300 ms): resent chunk bytes stay under 5 % of those sent", async () => {
    const { h, entries, done } = await joinOverSlowLinks(11, 400, 0);
    expect(incomplete(h)).toBeNull();
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
  }, 60_000);

  test("with 10 % loss on the slow links the migration still completes: lost chunks are resent", async () => {
    const { h, entries, done } = await joinOverSlowLinks(12, 400, 0.1);
    expect(incomplete(h)).toBeNull();
    expect(done).toBe(true);
    expect(sum(h, (c) => c.snapshotChunksResent)).toBeGreaterThan(0);
    const got = await h.until(h.members.get("d")!.grid.getMap<string, string>("m").getAll(entries.map(([k]) => k)));
    expect(entries.filter(([k, v]) => got.get(k) !== v).length).toBe(0);
    h.stop();
  }, 60_000);
});
