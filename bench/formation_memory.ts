/**
 * The formation of bench/formation.ts in one process, on the wall clock: data-grid members
 * over the in-memory network (real frame codec and validation, no WebRTC), so the figure is
 * the protocol plus the CPU it costs, without the transport. Member a starts alone with a
 * lite client that loads N entries (100-byte values, putAll ×5,000), then b and c join at
 * once. Prints, per run, the time from "all members list each other" to "every partition has
 * its backups" (every member's `replicasMissing` 0: backups created in place count once
 * their primary reported them in sync) and to "balanced". Options: --entries N (default 0
 * and 100000), --runs N (default 3).
 */
import { args } from "../src/runtime/process.ts";
import { memoryGrids } from "./_memory_grid.ts";
import { flag, fmtMs, loadAverage, runBench } from "./_cluster.ts";

const argv = args();
const RUNS = Number(flag(argv, "runs", "3"));
const ENTRIES = argv.includes("--entries") ? [Number(flag(argv, "entries", "0"))] : [0, 100_000];
const VALUE = "x".repeat(100);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function once(entries: number, seed: number): Promise<{ backupsMs: number; balancedMs: number }> {
  const g = memoryGrids({ seed });
  const a = await g.add("a");
  const client = await g.add("client", true);
  while (client.partitionSummary().version === 0) await sleep(5);
  const map = client.getMap<string, string>("formation");
  for (let k = 0; k < entries; k += 5000) {
    const part: Array<[string, string]> = [];
    for (let j = k; j < Math.min(entries, k + 5000); j++) part.push([`k${j}`, VALUE]);
    await map.putAll(part);
  }
  await Promise.all([g.add("b"), g.add("c")]);
  const t0 = performance.now();
  const grids = [...g.grids.values()];
  while (!grids.every((x) => x.partitionSummary().replicasMissing === 0)) await sleep(5);
  const backupsMs = performance.now() - t0;
  for (;;) {
    const s = a.partitionSummary();
    if (s.migrating === 0 && s.replicasMissing === 0 && Object.keys(s.owners).length === 3) break;
    await sleep(5);
  }
  const balancedMs = performance.now() - t0;
  for (const x of grids) x.stop();
  return { backupsMs, balancedMs };
}

await runBench(async () => {
  const loadStart = loadAverage();
  console.log(`Formation in one process over the in-memory network, wall clock; backup 1, 271 partitions`);
  for (const entries of ENTRIES) {
    const xs: Array<{ backupsMs: number; balancedMs: number }> = [];
    for (let i = 0; i < RUNS; i++) {
      const r = await once(entries, 42 + i);
      xs.push(r);
      console.log(
        `${entries.toLocaleString("en")} entries, run ${i + 1}: every partition has its backups ${
          fmtMs(r.backupsMs)
        } after all members list each other; balanced after ${fmtMs(r.balancedMs)}`,
      );
    }
    const med = (f: (r: { backupsMs: number; balancedMs: number }) => number) =>
      xs.map(f).sort((p, q) => p - q)[Math.floor(xs.length / 2)];
    console.log(
      `median of ${xs.length}, ${entries.toLocaleString("en")} entries: backups ${fmtMs(med((r) => r.backupsMs))}, ` +
        `balanced ${fmtMs(med((r) => r.balancedMs))}`,
    );
  }
  console.log(`load average at start: ${loadStart}; at end: ${loadAverage()}`);
});
