/**
 * Per-map backup counts in the simulator: 4 members whose node default is 1 backup, map
 * "two" with backupCount 2 and map "zero" with backupCount 0 (so every row holds 3
 * replicas). Clients load all three maps; the history checker holds every acknowledged
 * write to its own map's count of copies (invariant 10 per map); each copy holds exactly
 * the maps of its rank; then the primary of the most partitions is killed (-9) while the
 * load runs. Acknowledged writes of "two" and "one" survive (linearizable histories, nothing
 * lost); "zero" had no backup, so its entries on the dead member are gone, as documented.
 */
import { describe, expect, test } from "bun:test";
import { withSeed } from "../../src/sim/seed.ts";
import { checkAckCopies, checkLinearizable, checkNoLostWrites } from "../support/history_checker.ts";
import { runChaos } from "./imap_chaos.ts";
import { formedImapSimulation, fullReplicas, type ImapSimNode, SimLoad } from "./imap_sim.ts";

const FILE = "test/sim/imap_map_backups_test.ts";
const P = 61;

/**
 * Copies that hold a map other than their rank allows ("p map rank member"), and how many
 * copies of each rank hold each map ("map@rank" → copies).
 */
function placement(nodes: ImapSimNode[]): { wrong: string[]; held: Record<string, number> } {
  const wrong: string[] = [];
  const held: Record<string, number> = {};
  const t = nodes[0].grid.partitions.table;
  for (let p = 0; p < P; p++) {
    t.replicas[p].forEach((id, rank) => {
      const n = nodes.find((x) => x.id === id);
      for (const m of n?.grid.maps.debugMapsOf(p)?.maps ?? []) {
        held[`${m}@${rank}`] = (held[`${m}@${rank}`] ?? 0) + 1;
        const c = n!.grid.maps.backupCountsOf(m);
        if (rank > c.backupCount + c.asyncBackupCount) wrong.push(`${p} ${m} rank ${rank} ${id}`);
      }
    });
  }
  return { wrong, held };
}

async function scenario(seed: number) {
  const problems: string[] = [];
  const sim = await formedImapSimulation({
    seed,
    link: { delayMs: 0.3, jitterMs: 0.7 },
    tickMs: 5,
    grid: { partitionCount: P, maps: { two: { backupCount: 2 }, zero: { backupCount: 0 } } },
    problems,
  }, 4);
  const first = sim.liveNodes()[0];
  const rows = first.grid.partitions.table.replicas.map((r) => r.length);
  const loads = ["two", "one", "zero"].map((map, i) =>
    new SimLoad(sim, sim.rng.fork(), {
      map,
      keys: 200,
      mix: { put: 0.6, get: 0.9 },
      pauseMs: 4 + i,
      copies: { viewers: () => sim.liveNodes() },
    })
  );
  for (const l of loads) for (const n of sim.liveNodes()) l.start(n);
  await sim.run(1500);
  const placedBefore = placement(sim.liveNodes());
  // kill -9 of the member that is primary of the most partitions.
  const t = first.grid.partitions.table;
  const victim = sim.liveNodes().map((n) => ({ n, k: t.replicas.filter((r) => r[0] === n.id).length }))
    .sort((a, b) => b.k - a.k)[0];
  const victimPrimaries = victim.k;
  sim.crash(victim.n.id);
  await sim.run(1500);
  for (const l of loads) await Promise.race([l.stop(), sim.run(60_000)]);
  await sim.until(() => fullReplicas(sim.liveNodes()), 60_000, 50, () => "no full replicas after the crash");
  await sim.run(2000);
  const placedAfter = placement(sim.liveNodes());
  const rowsAfter = sim.liveNodes()[0].grid.partitions.table.replicas.map((r) => r.length);
  for (const n of sim.liveNodes()) n.stop();
  console.log(
    `seed ${seed}: held before ${JSON.stringify(placedBefore.held)}, ops ${
      loads.map((l) => l.history.ops.length)
    }, victim was primary of ${victimPrimaries}`,
  );
  return { rows, rowsAfter, placedBefore, placedAfter, loads, problems };
}

describe("IMap: per-map backup counts", () => {
  for (const seed of [1, 2, 3]) {
    test(
      `seed ${seed}: each map replicates to its own ranks, acknowledges on its own count, survives kill -9 of a primary`,
      () =>
        withSeed(FILE, seed, async (s) => {
          const r = await scenario(s);
          expect(r.rows.every((n) => n === 3)).toBe(true);
          expect(r.rowsAfter.every((n) => n === 3)).toBe(true);
          for (const pl of [r.placedBefore, r.placedAfter]) {
            expect(pl.wrong).toEqual([]);
            // Most partitions hold every map on the ranks it replicates to.
            expect(pl.held["two@2"]).toBeGreaterThan(P / 2);
            expect(pl.held["one@1"]).toBeGreaterThan(P / 2);
            expect(pl.held["zero@0"]).toBeGreaterThan(P / 2);
          }
          const [two, one, zero] = r.loads.map((l) => l.history);
          for (const h of [two, one, zero]) {
            const copies = checkAckCopies(h);
            expect(copies.problems.slice(0, 5)).toEqual([]);
            expect(h.ops.filter((o) => o.status === "ok" && o.copies !== undefined).length).toBeGreaterThan(50);
          }
          // Writes to "two" needed all 3 copies, to "zero" one.
          expect(two.ops.some((o) => o.needed === 3)).toBe(true);
          expect(zero.ops.every((o) => o.needed === undefined || o.needed === 1)).toBe(true);
          for (const h of [two, one]) {
            expect(checkNoLostWrites(h).problems.slice(0, 5)).toEqual([]);
            expect(checkLinearizable(h).problems.slice(0, 5)).toEqual([]);
          }
          expect(r.problems).toEqual([]);
        }),
      120_000,
    );
  }

  test(
    "chaos (crashes, joins, 5 % loss) with the chaos map on 1 backup among maps with 2: seeds 1–20 lose nothing",
    async () => {
      // Every partition holds 3 replicas; the chaos map lives on the first two only, so the third
      // gets its writes as empty entries and every rank change re-checks a copy at its new level.
      const failures: string[] = [];
      let acked = 0, crashes = 0;
      for (let seed = 1; seed <= 20; seed++) {
        const r = await runChaos({
          seed,
          backupCount: 1,
          maps: { "*": { backupCount: 2 }, chaos: { backupCount: 1 } },
        });
        acked += r.stats.ackedWrites;
        crashes += r.stats.crashes;
        if (!r.ok) failures.push(`seed ${seed}: ${r.problems.slice(0, 3).join("; ")}`);
      }
      console.log(
        `per-map chaos seeds 1–20: ${acked} acknowledged writes, ${crashes} crashes, ${failures.length} failed`,
      );
      expect(failures).toEqual([]);
      expect(crashes).toBeGreaterThan(19);
    },
    300_000,
  );
});
