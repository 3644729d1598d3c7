/**
 * Seeded chaos runs of the IMap (see imap_chaos.ts) in which half of the puts carry a short
 * TTL: expiries happen on primaries, during crashes, promotions and migrations, and the
 * history checker (which models each TTL's expiry window) must still find every key's
 * history linearizable with no acknowledged write lost. An entry listener on a member that is
 * never crashed must hear every acknowledged put exactly once, in order per key (or be told
 * of a gap) through the crashes, promotions and migrations.
 * `SEED=n bun test test/sim/imap_expiry_chaos_test.ts` replays one run with a narrated trace.
 */
import { describe, expect, test } from "bun:test";
import { runChaos, splitRun } from "./imap_chaos.ts";
import { replayChaosSeed } from "./imap_chaos_replay.ts";

const FILE = "test/sim/imap_expiry_chaos_test.ts";
const RUNS = 30;
const TTL_MS = 400;

describe("IMap chaos simulation with TTLs", () => {
  if (replayChaosSeed({ ttlMs: TTL_MS, listen: true })) return;
  test(
    `seeds 1–${RUNS}: expiries linearizable per key, no acknowledged write lost, full replicas afterwards`,
    async () => {
      const failures: string[] = [];
      for (let seed = 1; seed <= RUNS; seed++) {
        const r = await runChaos({ seed, ttlMs: TTL_MS, listen: true });
        if (!r.ok && !splitRun(r.stats)) {
          failures.push(`seed ${seed}: ${r.problems.slice(0, 3).join("; ")} (replay: SEED=${seed} bun test ${FILE})`);
        }
      }
      expect(failures).toEqual([]);
    },
    600_000,
  );
});
