/**
 * Migrations and snapshot transfers must make progress again after a stretch in which a
 * replica's answers are lost or late (a busy event loop, a congested link): a transfer the
 * primary gave up on must be restarted, never left waiting forever.
 */
import { describe, expect, test } from "bun:test";
import { type GridHarness as H, GridHarness } from "./support/grid_harness.ts";

const P = 8;

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

describe("migration under lost replica answers", () => {
  test("a snapshot transfer the primary dropped is restarted: the joining member gets its partitions", async () => {
    // Small chunks so a partition's snapshot takes many chunks (more than the window).
    const h = new GridHarness({ seed: 3, config: { partitionCount: P, map: { snapshotChunkBytes: 512 } } });
    await h.add("a");
    await h.add("b");
    await h.run(2000);
    const map = h.members.get("a")!.grid.getMap<string, string>("m");
    const entries: Array<[string, string]> = Array.from({ length: 2000 }, (_, i) => [`k${i}`, `value-${i}-${"x".repeat(40)}`]);
    await h.until(map.putAll(entries));
    expect(incomplete(h)).toBeNull();

    // A third member joins; as soon as the first snapshot chunks flow to it, everything it
    // sends is lost for 5 s (longer than a primary keeps a transfer without progress).
    const sent0 = h.live().reduce((s, m) => s + m.grid.maps.counters.snapshotsSent, 0);
    await h.add("c");
    const started = await runUntil(h, () => h.live().reduce((s, m) => s + m.grid.maps.counters.snapshotsSent, 0) > sent0, 5000, 1);
    expect(started).toBe(true);
    h.net.setLink("c", "a", { blocked: true });
    h.net.setLink("c", "b", { blocked: true });
    await h.run(5000);
    h.net.setLink("c", "a", { blocked: false });
    h.net.setLink("c", "b", { blocked: false });

    const ok = await runUntil(h, () => incomplete(h) === null && Object.keys(h.members.get("a")!.grid.partitionSummary().owners).length === 3, 60_000);
    expect(incomplete(h)).toBeNull();
    expect(ok).toBe(true);
    const got = await h.until(h.members.get("c")!.grid.getMap<string, string>("m").getAll(entries.map(([k]) => k)));
    expect(got.size).toBe(entries.length);
    h.stop();
  }, 60_000);
});

describe("migration target copies", () => {
  test("a caught-up target that hears nothing for longer than the migration timeout keeps its copy while the table lists the migration", async () => {
    const h = new GridHarness({ seed: 5, config: { partitionCount: P } });
    await h.add("a");
    await h.add("b");
    await h.run(2000);
    const map = h.members.get("a")!.grid.getMap<string, string>("m");
    const entries: Array<[string, string]> = Array.from({ length: 400 }, (_, i) => [`k${i}`, `v${i}`]);
    await h.until(map.putAll(entries));
    await h.add("c");
    // The moment a primary counts c caught up on a partition c is to become primary of,
    // everything a and b send to c is lost for 20 s (c's timers still run): the commit and
    // every touch of the copy miss c.
    const caughtUp = () => {
      const t = h.members.get("a")!.grid.partitions.table;
      for (const m of h.live()) {
        for (const r of m.grid.maps.debugReplicas()) {
          if (!r.primary || t.migrations.get(r.p)?.[0] !== "c") continue;
          if (r.followers?.some((f) => f.id === "c" && f.confirmed && f.acked >= r.seq) && (r.entries > 0)) return true;
        }
      }
      return false;
    };
    expect(await runUntil(h, caughtUp, 10_000, 1)).toBe(true);
    h.net.setLink("a", "c", { blocked: true });
    h.net.setLink("b", "c", { blocked: true });
    await h.run(20_000);
    h.net.setLink("a", "c", { blocked: false });
    h.net.setLink("b", "c", { blocked: false });
    await runUntil(h, () => incomplete(h) === null && Object.keys(h.members.get("a")!.grid.partitionSummary().owners).length === 3, 60_000);
    expect(incomplete(h)).toBeNull();
    const got = await h.until(h.members.get("b")!.grid.getMap<string, string>("m").getAll(entries.map(([k]) => k)));
    expect(entries.filter(([k, v]) => got.get(k) !== v).map(([k]) => k)).toEqual([]);
    h.stop();
  }, 60_000);
});
