/**
 * Migrations and snapshot transfers must make progress again after a stretch in which a
 * replica's answers are lost or late (a busy event loop, a congested link): a transfer the
 * primary gave up on must be restarted, never left waiting forever.
 */
import { describe, expect, test } from "bun:test";
import { GridHarness, incompleteReplication, migratedTo, putPadded } from "./support/grid_harness.ts";

const P = 8;

describe("migration under lost replica answers", () => {
  test("a snapshot transfer the primary dropped is restarted: the joining member gets its partitions", async () => {
    // Small chunks so a partition's snapshot takes many chunks (more than the window).
    const h = new GridHarness({ seed: 3, config: { partitionCount: P, map: { snapshotChunkBytes: 512 } } });
    await h.add("a");
    await h.add("b");
    await h.run(2000);
    const entries = await putPadded(h, "a", 2000, 40);
    expect(incompleteReplication(h, P)).toBeNull();

    // A third member joins; as soon as the first snapshot chunks flow to it, everything it
    // sends is lost for 5 s (longer than a primary keeps a transfer without progress).
    const sent0 = h.live().reduce((s, m) => s + m.grid.maps.counters.snapshotsSent, 0);
    await h.add("c");
    const started = await h.runUntil(
      () => h.live().reduce((s, m) => s + m.grid.maps.counters.snapshotsSent, 0) > sent0,
      5000,
      1,
    );
    expect(started).toBe(true);
    h.net.setLink("c", "a", { blocked: true });
    h.net.setLink("c", "b", { blocked: true });
    await h.run(5000);
    h.net.setLink("c", "a", { blocked: false });
    h.net.setLink("c", "b", { blocked: false });

    const ok = await h.runUntil(() => migratedTo(h, 3), 60_000);
    expect(incompleteReplication(h, P)).toBeNull();
    expect(ok).toBe(true);
    const got = await h.until(h.members.get("c")!.grid.getMap<string, string>("m").getAll(entries.map(([k]) => k)));
    expect(got.size).toBe(entries.length);
    h.stop();
  }, 60_000);
});

describe("migration target copies", () => {
  test(
    "a caught-up target that hears nothing for longer than the migration timeout keeps its copy while the table lists the migration",
    async () => {
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
            if (r.followers?.some((f) => f.id === "c" && f.confirmed && f.acked >= r.seq) && (r.entries > 0)) {
              return true;
            }
          }
        }
        return false;
      };
      expect(await h.runUntil(caughtUp, 10_000, 1)).toBe(true);
      h.net.setLink("a", "c", { blocked: true });
      h.net.setLink("b", "c", { blocked: true });
      await h.run(20_000);
      h.net.setLink("a", "c", { blocked: false });
      h.net.setLink("b", "c", { blocked: false });
      await h.runUntil(
        () =>
          incompleteReplication(h, P) === null &&
          Object.keys(h.members.get("a")!.grid.partitionSummary().owners).length === 3,
        60_000,
      );
      expect(incompleteReplication(h, P)).toBeNull();
      const got = await h.until(h.members.get("b")!.grid.getMap<string, string>("m").getAll(entries.map(([k]) => k)));
      expect(entries.filter(([k, v]) => got.get(k) !== v).map(([k]) => k)).toEqual([]);
      h.stop();
    },
    60_000,
  );
});
