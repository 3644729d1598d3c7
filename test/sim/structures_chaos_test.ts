import { describe, expect, test } from "bun:test";
import {
  failedRun,
  runLockChaos,
  runProcessorChaos,
  runQueueChaos,
  runTopicChaos,
  type StructureRun,
} from "./structures_chaos.ts";

/**
 * Seeds 1–40 of each (1–20 of the processor and lock runs; the faults cycle
 * with the seed); `bun run scripts/structures_sim.ts` sweeps more.
 */
const SEEDS = Array.from({ length: 40 }, (_, i) => i + 1);

/** @param busy acknowledged operations a run counts as busy (a lock hand-off takes several round trips) */
function check(runs: StructureRun[], busy = 50): void {
  const failed = runs.filter(failedRun).map((r) => `seed ${r.seed} (${r.fault}): ${r.problems.join("; ")}`);
  expect(failed).toEqual([]);
  // The runs did something: every fault kind ran with acknowledged traffic.
  for (const fault of ["primary", "backup", "twice", "fastPrimary"]) {
    expect(runs.filter((r) => r.fault === fault && r.acked > busy).length).toBeGreaterThan(3);
  }
  // Lost entries are only ever those of two crashes before re-replication, and reported.
  for (const r of runs) if (r.problems.length > 0) expect(r.fault).toBe("twice");
}

describe("queue, topic, entry processors and locks through failovers (seeded)", () => {
  test("queue: every acknowledged offer delivered exactly once", async () => {
    const runs: StructureRun[] = [];
    for (const seed of SEEDS) runs.push(await runQueueChaos(seed));
    check(runs);
  }, 120_000);

  test("topic: every acknowledged publish seen by each subscriber that awaited ready, in order", async () => {
    const runs: StructureRun[] = [];
    for (const seed of SEEDS) runs.push(await runTopicChaos(seed));
    check(runs);
  }, 120_000);

  test("entry processor: every acknowledged append once, at the position its answer named", async () => {
    const runs: StructureRun[] = [];
    // 577 and 832: a retried append reaches a primary that lost the history of its first run.
    for (const seed of [...SEEDS.slice(0, 20), 577, 832]) runs.push(await runProcessorChaos(seed));
    check(runs);
  }, 120_000);

  test("lock: never two holders at once, tokens rising, every acknowledged increment counted", async () => {
    const runs: StructureRun[] = [];
    for (const seed of SEEDS.slice(0, 20)) runs.push(await runLockChaos(seed));
    check(runs, 20);
  }, 120_000);
});
