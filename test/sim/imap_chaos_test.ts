/**
 * ≥ 200 seeded chaos runs of the partitioned IMap over real Membership and a lossy
 * MemoryNetwork (see imap_chaos.ts). A failing run prints its seed and the replay command;
 * `SEED=n bun test test/sim/imap_chaos_test.ts` replays one run with a narrated trace.
 */
import { describe, expect, test } from "bun:test";
import { envVar } from "../../src/sim/seed.ts";
import { runChaos } from "./imap_chaos.ts";

const FILE = "test/sim/imap_chaos_test.ts";
const RUNS = 200;
const BATCH = 50;
const single = envVar("SEED");

describe("IMap chaos simulation", () => {
  if (single !== undefined && single !== "") {
    test(`seed ${single}`, async () => {
      const r = await runChaos({ seed: Number(single), verbose: true });
      console.log(JSON.stringify(r.stats));
      expect(r.problems).toEqual([]);
    }, 120_000);
    return;
  }
  for (let from = 1; from <= RUNS; from += BATCH) {
    const to = Math.min(RUNS, from + BATCH - 1);
    test(`seeds ${from}–${to}: no acknowledged write lost, no invariant violated, full replicas afterwards`, async () => {
      const failures: string[] = [];
      let acked = 0, crashes = 0;
      for (let seed = from; seed <= to; seed++) {
        const r = await runChaos({ seed });
        acked += r.stats.ackedWrites;
        crashes += r.stats.crashes;
        if (!r.ok) {
          const msg = `seed ${seed} failed (replay: SEED=${seed} bun test ${FILE}): ${r.problems.slice(0, 3).join("; ")}`;
          console.error(msg);
          failures.push(msg);
        }
      }
      console.log(`seeds ${from}–${to}: ${acked} acknowledged writes, ${crashes} crashes, ${failures.length} failed runs`);
      expect(failures).toEqual([]);
      expect(crashes).toBeGreaterThan(to - from);
    }, 300_000);
  }
});
