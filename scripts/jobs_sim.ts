/**
 * Seeded failover runs of the job coordinator (test/sim/jobs_chaos.ts): crashes of the master,
 * a worker, or two masters in turn, under packet loss; both jobs must finish with exact output.
 *
 *   bun run scripts/jobs_sim.ts                        # seeds 1–200
 *   bun run scripts/jobs_sim.ts --from 201 --count 500
 *   bun run scripts/jobs_sim.ts --pauses            # a pause of the master or a worker instead of a crash
 *   bun run scripts/jobs_sim.ts --pauses --quorum   # the same with split-brain protection (a majority)
 *
 * Prints each failing run with its set-up; exits 1 if any failed.
 */
import { args as processArgs, exit } from "../src/runtime/process.ts";
import { runJobChaos } from "../test/sim/jobs_chaos.ts";

const args = processArgs();
const opt = (name: string, dflt: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const from = opt("from", 1), count = opt("count", 200);
const pauses = args.includes("--pauses"), quorum = args.includes("--quorum");
const started = performance.now();
const byFault = new Map<string, number>();
let failed = 0;
for (let seed = from; seed < from + count; seed++) {
  const r = await runJobChaos(seed, { pauses, quorum });
  byFault.set(r.fault, (byFault.get(r.fault) ?? 0) + 1);
  if (r.problems.length > 0) (failed++, console.log(`FAIL seed ${seed} (${r.setup}): ${r.problems.join("; ")}`));
  if ((seed - from + 1) % 50 === 0) console.log(`${seed - from + 1}/${count} runs, ${failed} failed`);
}
console.log(
  `seeds ${from}–${from + count - 1}: ${failed} failed; runs by fault ${JSON.stringify(Object.fromEntries(byFault))}; ${
    ((performance.now() - started) / 1000).toFixed(0)
  } s`,
);
exit(failed > 0 ? 1 : 0);
