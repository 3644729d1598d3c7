/**
 * The formation of bench/formation.ts in the simulator (virtual time, 1 ± 1 ms links, no
 * bandwidth limit): member a alone (holding N entries), then b and c join it. Prints the
 * virtual time from "all three list each other" to "every partition has its backups" (the
 * master's `replicasMissing` 0, every backup confirmed) and to "balanced" (no migration, every
 * replica caught up). Options: --entries N (default 0 and 20000), --seed N (default 1).
 */
import { args } from "../src/runtime/process.ts";
import { replicationComplete } from "../test/sim/imap_chaos.ts";
import { imapSimulation } from "../test/sim/imap_sim.ts";
import { flag, runBench } from "./_cluster.ts";

const argv = args();
const SEED = Number(flag(argv, "seed", "1"));
const ENTRIES = argv.includes("--entries") ? [Number(flag(argv, "entries", "0"))] : [0, 20_000];

async function once(entries: number): Promise<{ backupsMs: number; balancedMs: number }> {
  const sim = imapSimulation({
    seed: SEED,
    link: { delayMs: 1, jitterMs: 1 },
    tickMs: 10,
    grid: { partitionCount: 271, backupCount: 1, asyncBackupCount: 0, lite: false },
  });
  const a = sim.spawn();
  void a.m.start([]);
  await sim.until(() => a.m.joined && a.grid.partitions.table.version > 0, 10_000);
  const map = a.grid.getMap<string, string>("m");
  for (let i = 0; i < entries; i += 500) {
    const puts: Promise<unknown>[] = [];
    for (let j = i; j < Math.min(entries, i + 500); j++) puts.push(map.put(`k${j}`, "v".repeat(20)));
    let done = false;
    void Promise.all(puts).then(() => (done = true));
    await sim.until(() => done, 60_000, 10);
  }
  const b = sim.spawn(), c = sim.spawn();
  void b.m.start([a.id]);
  void c.m.start([a.id]);
  const nodes = [a, b, c];
  await sim.until(() => nodes.every((n) => n.m.joined && n.m.members().length === 3), 30_000, 1);
  const t0 = sim.clock.now();
  await sim.until(
    () => {
      if (a.grid.partitionSummary().replicasMissing > 0) return false;
      return nodes.every((n) =>
        n.grid.maps.debugReplicas().every((r) =>
          !r.primary || (!r.catchingUp && r.followers!.every((f) => f.role === "async" || f.confirmed))
        )
      );
    },
    60_000,
    1,
  );
  const backupsMs = sim.clock.now() - t0;
  await sim.until(() => replicationComplete(nodes, 271, 1) === null, 60_000, 5);
  const balancedMs = sim.clock.now() - t0;
  for (const n of nodes) n.stop();
  return { backupsMs, balancedMs };
}

await runBench(async () => {
  console.log(`Formation in the simulator (seed ${SEED}): a, then b and c join; backup 1, 271 partitions`);
  for (const entries of ENTRIES) {
    const r = await once(entries);
    console.log(
      `${entries.toLocaleString("en")} entries: every partition has its backups ${r.backupsMs.toFixed(0)} ms ` +
        `(virtual) after all members list each other; balanced after ${r.balancedMs.toFixed(0)} ms`,
    );
  }
});
