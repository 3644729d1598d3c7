/**
 * ≥ 200 seeded chaos runs of the partitioned IMap over real Membership and a lossy
 * MemoryNetwork (see imap_chaos.ts). A failing run prints its seed and the replay command;
 * `SEED=n bun test test/sim/imap_chaos_test.ts` replays one run with a narrated trace.
 * A run in which membership splits the cluster (two members act as master at once, after a
 * false death verdict) is AP: both sides keep serving, so its per-key history checks are
 * skipped; it must still converge to full, agreeing replicas. Such runs must stay rare.
 */
import { describe, expect, test } from "bun:test";
import { runChaos, splitRun } from "./imap_chaos.ts";
import { replayChaosSeed } from "./imap_chaos_replay.ts";

const FILE = "test/sim/imap_chaos_test.ts";
const RUNS = 200;
const BATCH = 50;

describe("IMap chaos simulation", () => {
  if (replayChaosSeed()) return;
  for (let from = 1; from <= RUNS; from += BATCH) {
    const to = Math.min(RUNS, from + BATCH - 1);
    test(
      `seeds ${from}–${to}: no acknowledged write lost, no invariant violated, full replicas afterwards`,
      async () => {
        const failures: string[] = [];
        let acked = 0, crashes = 0, splitRuns = 0, unmeasured = 0;
        for (let seed = from; seed <= to; seed++) {
          const r = await runChaos({ seed });
          acked += r.stats.ackedWrites;
          unmeasured += r.stats.copiesUnmeasured;
          crashes += r.stats.crashes;
          if (splitRun(r.stats)) {
            splitRuns++;
            console.warn(
              `seed ${seed}: membership split the cluster (two masters or a merge); per-key checks skipped, convergence still required`,
            );
          }
          if (!r.ok) {
            const msg = `seed ${seed} failed (replay: SEED=${seed} bun test ${FILE}): ${
              r.problems.slice(0, 3).join("; ")
            }`;
            console.error(msg);
            failures.push(msg);
          }
        }
        console.log(
          `seeds ${from}–${to}: ${acked} acknowledged writes (${unmeasured} puts' copies not measured), ${crashes} crashes, ${splitRuns} split runs, ${failures.length} failed runs`,
        );
        expect(failures).toEqual([]);
        // Splits come only from membership false positives at 5 % loss; they must stay rare.
        expect(splitRuns).toBeLessThanOrEqual(1);
        expect(crashes).toBeGreaterThan(to - from);
      },
      300_000,
    );
  }
});
