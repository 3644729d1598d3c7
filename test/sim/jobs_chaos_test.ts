import { expect, test } from "bun:test";
import { type JobChaosRun, runJobChaos } from "./jobs_chaos.ts";

/**
 * Seeds 1–10 (every fault kind among them), and 109 and 193: with `append-once`'s check removed
 * (a segment applied again), these two end with log records twice, so the run fails; seeds
 * 1–10 do not reach that case. `bun run scripts/jobs_sim.ts` sweeps more.
 */
const SEEDS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 109, 193];

test("jobs through seeded crashes and packet loss: both FINISHED with exact output", async () => {
  const runs: JobChaosRun[] = [];
  for (const seed of SEEDS) runs.push(await runJobChaos(seed));
  expect(runs.filter((r) => r.problems.length > 0).map((r) => `seed ${r.seed} (${r.setup}): ${r.problems}`))
    .toEqual([]);
  for (const fault of ["master", "worker", "finishing", "twice"]) {
    expect(runs.some((r) => r.fault === fault)).toBe(true);
  }
}, 120_000);

/**
 * Pauses instead of crashes, with split-brain protection (a majority), seeds 1–12 (both kinds,
 * 2.1–7.4 s: shorter and longer than failure detection), 31 and 32. A worker paused past
 * detection came back into the cluster, but its worker never said hello again (the master had
 * not changed, so nothing reset its hello), and the coordinator never used its slots again:
 * seeds 1, 7, 8, 9 and 12 failed on the slot check. A worker whose member the master's list
 * drops now stops its tasks and says hello once listed again. In 31 and 32 the member was listed
 * again before the coordinator restarted its tasks, which then stayed RUNNING with nothing running
 * them: the worker now also takes a new id, so its old tasks count as lost.
 */
test(
  "jobs through a seeded pause of the master or a worker, with protection: both FINISHED, exact output",
  async () => {
    const runs: JobChaosRun[] = [];
    for (const seed of [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 31, 32]) {
      runs.push(await runJobChaos(seed, { pauses: true, quorum: true }));
    }
    expect(runs.filter((r) => r.problems.length > 0).map((r) => `seed ${r.seed} (${r.setup}): ${r.problems}`))
      .toEqual([]);
    for (const fault of ["pauseMaster", "pauseWorker"]) expect(runs.some((r) => r.fault === fault)).toBe(true);
  },
  180_000,
);

/**
 * Without protection (AP), seeds 1–12 as above, and 27: the paused master woke as a cluster of
 * its own, checkpointed a task on its own copy of the record and merged back; the merge brought
 * that older attempt's record back over the newer attempt's, which found the record no longer
 * its own and ended silently, as if a newer attempt had taken over: the job stayed FINISHING for
 * good. Such an attempt now fails and is restarted. Its output is not exact (AP: the merge
 * brought older job state back, docs/jobs.md), so only that both jobs end is checked there.
 */
test("jobs through a seeded pause without protection: they end, and exact where no older state came back", async () => {
  const runs: JobChaosRun[] = [];
  for (let seed = 1; seed <= 12; seed++) runs.push(await runJobChaos(seed, { pauses: true }));
  expect(runs.filter((r) => r.problems.length > 0).map((r) => `seed ${r.seed} (${r.setup}): ${r.problems}`))
    .toEqual([]);
  const stale = await runJobChaos(27, { pauses: true });
  expect(stale.ended).toHaveLength(2);
}, 180_000);
