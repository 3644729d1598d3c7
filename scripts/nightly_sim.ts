/**
 * Nightly-style IMap chaos run: 1,000 seeded simulations (see test/sim/imap_chaos.ts).
 *
 *   bun run scripts/nightly_sim.ts                 # seeds 1–1000
 *   bun run scripts/nightly_sim.ts --from 1001 --count 500
 *   bun run scripts/nightly_sim.ts --seed 4242     # one run, narrated
 *
 * Prints each failing seed with its replay command; exits 1 if any run failed.
 */
import { args as processArgs, exit } from "../src/runtime/process.ts";
import { runChaos, splitRun } from "../test/sim/imap_chaos.ts";

const args = processArgs();
const opt = (name: string, dflt: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};

const single = opt("seed", -1);
const from = single >= 0 ? single : opt("from", 1);
const count = single >= 0 ? 1 : opt("count", 1000);
const started = performance.now();
let failed = 0, acked = 0, crashes = 0, splitRuns = 0, falsePositives = 0;
for (let seed = from; seed < from + count; seed++) {
  const r = await runChaos({ seed, verbose: single >= 0 });
  acked += r.stats.ackedWrites;
  crashes += r.stats.crashes;
  falsePositives += r.stats.falsePositives;
  // Runs where membership split the cluster (two masters, or a side merged back): per-key
  // history checks are skipped (AP).
  if (splitRun(r.stats)) splitRuns++;
  if (!r.ok) {
    failed++;
    console.log(`FAIL seed ${seed}: ${r.problems.slice(0, 3).join("; ")}`);
    console.log(
      `  replay: SEED=${seed} bun test test/sim/imap_chaos_test.ts   or   bun run scripts/nightly_sim.ts --seed ${seed}`,
    );
  }
  if ((seed - from + 1) % 100 === 0) {
    console.log(`${seed - from + 1}/${count} runs, ${failed} failed, ${splitRuns} split runs`);
  }
}
console.log(
  JSON.stringify({
    runs: count,
    failed,
    splitRuns,
    falsePositives,
    ackedWrites: acked,
    crashes,
    seconds: Math.round((performance.now() - started) / 1000),
  }),
);
if (failed > 0) {
  exit(1);
}
