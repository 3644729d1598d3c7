/**
 * Seeded failover runs of the distributed queue, the reliable topic, entry processors and locks
 * (test/sim/structures_chaos.ts).
 *
 *   bun run scripts/structures_sim.ts                        # seeds 1–500 of each
 *   bun run scripts/structures_sim.ts --from 501 --count 1000 --only queue|topic|processor|lock
 *
 * Prints each failing run, and the runs whose violations come with a reported data loss (two
 * crashes before re-replication: beyond the guarantee); exits 1 if any run failed.
 */
import { args as processArgs, exit } from "../src/runtime/process.ts";
import {
  failedRun,
  runLockChaos,
  runProcessorChaos,
  runQueueChaos,
  runTopicChaos,
} from "../test/sim/structures_chaos.ts";

const args = processArgs();
const opt = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const from = Number(opt("from", "1")), count = Number(opt("count", "500"));
const only = opt("only", "");
const started = performance.now();
let failed = 0;
const KINDS = [
  ["queue", runQueueChaos],
  ["topic", runTopicChaos],
  ["processor", runProcessorChaos],
  ["lock", runLockChaos],
] as const;
for (const [kind, run] of KINDS) {
  if (only && only !== kind) continue;
  let acked = 0, reported = 0, bad = 0;
  for (let seed = from; seed < from + count; seed++) {
    const r = await run(seed);
    acked += r.acked;
    if (failedRun(r)) (bad++, console.log(`FAIL ${kind} seed ${seed} (${r.fault}): ${r.problems.join("; ")}`));
    else if (r.problems.length > 0) {
      reported++;
      console.log(`${kind} seed ${seed} (${r.fault}), data loss reported (${r.dataLoss}): ${r.problems.join("; ")}`);
    }
  }
  failed += bad;
  console.log(
    `${kind}: seeds ${from}–${
      from + count - 1
    }, ${bad} failed, ${reported} with a reported data loss, ${acked} acknowledged`,
  );
}
console.log(`${((performance.now() - started) / 1000).toFixed(0)} s`);
exit(failed > 0 ? 1 : 0);
