// Ended jobs' records are deleted once the history retention (JobServiceOptions.historyMs, the CLI's
// --job-history-minutes) runs out, by whichever member coordinates then; before, nothing removed a
// finished job and the job maps grew with every job ever run. A job still within its retention stays,
// a purge leaves no record of the job in any job map, and the id can be used again.
import { describe, expect, test } from "bun:test";
import { JobMaps, jobStateKey } from "../../src/jobs/map_names.ts";
import type { JobSim } from "./jobs_sim.ts";
import { withJobCluster } from "./jobs_cluster.ts";
import { jobRecordKeys, reader, waitStatus } from "./jobs_scenarios.ts";

const HISTORY_MS = 20_000;

function smallJob(name: string) {
  return {
    name,
    source: { type: "sequence", count: 300, parallelism: 2, ratePerSecond: 1000 },
    sink: { type: "map", map: `out-${name}` },
    checkpointIntervalMs: 200,
  };
}

/** Every record of job `id` (parallelism 2) that is still in the job maps, as `map:key`. */
async function recordsOf(sim: JobSim, id: string): Promise<string[]> {
  const keys: Array<[string, string]> = [
    [JobMaps.jobs, id],
    [JobMaps.jobStates, jobStateKey(id)],
    ...jobRecordKeys(id, 2),
  ];
  const left: string[] = [];
  for (const [m, k] of keys) {
    if (await sim.until(reader(sim).maps.getMap(m).containsKey(k))) left.push(`${m}:${k}`);
  }
  return left;
}

async function runToEnd(sim: JobSim, id: string, cancel = false): Promise<number> {
  await sim.until(reader(sim).jobs.submit(smallJob(id), id));
  if (cancel) await sim.until(reader(sim).jobs.cancel(id));
  const info = await waitStatus(sim, id, (s) => s === "FINISHED" || s === "CANCELED" || s === "FAILED", 60_000);
  expect(info.status).toBe(cancel ? "CANCELED" : "FINISHED");
  return sim.clock.now();
}

describe("ended jobs' history", () => {
  test("records go once the retention ran out, not before; the id can run again", async () => {
    await withJobCluster({ seed: 11, historyMs: HISTORY_MS }, async (sim) => {
      await runToEnd(sim, "a");
      await runToEnd(sim, "b", true);
      const atEnd = await recordsOf(sim, "a");
      // Everything a finished job leaves: entry, states, assignments, checkpoints, metrics.
      expect(atEnd.length).toBeGreaterThanOrEqual(10);
      await sim.run(HISTORY_MS / 2);
      expect(await recordsOf(sim, "a")).toEqual(atEnd);
      expect((await sim.until(reader(sim).jobs.list())).map((j) => j.id).sort()).toEqual(["a", "b"]);
      await runToEnd(sim, "c");
      await sim.run(HISTORY_MS / 2 + 5_000);
      expect(await recordsOf(sim, "a")).toEqual([]);
      expect(await recordsOf(sim, "b")).toEqual([]);
      expect(await sim.until(reader(sim).jobs.get("a"))).toBeUndefined();
      // c ended later: still within its retention.
      expect((await sim.until(reader(sim).jobs.list())).map((j) => j.id)).toEqual(["c"]);
      // The id of a purged job runs again from the start.
      await sim.until(reader(sim).maps.getMap("out-a").destroy());
      await runToEnd(sim, "a");
      expect(await sim.until(reader(sim).maps.getMap("out-a").size())).toBe(300);
    });
  }, 300_000);

  test("a new master purges the jobs that ended under the old one", async () => {
    await withJobCluster({ seed: 12, historyMs: HISTORY_MS }, async (sim) => {
      await runToEnd(sim, "x");
      await runToEnd(sim, "y");
      sim.crash(sim.master()!.id);
      await sim.run(HISTORY_MS + 70_000); // the walk that learns ended jobs runs every 30 scans
      expect(await recordsOf(sim, "x")).toEqual([]);
      expect(await recordsOf(sim, "y")).toEqual([]);
    });
  }, 300_000);

  test("historyMs 0 keeps ended jobs", async () => {
    await withJobCluster({ seed: 13, historyMs: 0 }, async (sim) => {
      await runToEnd(sim, "k");
      const atEnd = await recordsOf(sim, "k");
      await sim.run(90_000);
      expect(await recordsOf(sim, "k")).toEqual(atEnd);
    });
  }, 300_000);

  test("a submit over the state a cut-short purge left (no entry) runs the job afresh", async () => {
    await withJobCluster({ seed: 14 }, async (sim) => {
      const states = reader(sim).maps.getMap(JobMaps.jobStates);
      await sim.until(
        states.set(jobStateKey("o"), { state: "FINISHED", timestamps: { FINISHED: 1 }, term: 1, epoch: 1 }),
      );
      await runToEnd(sim, "o");
      expect(await sim.until(reader(sim).maps.getMap("out-o").size())).toBe(300);
    });
  }, 300_000);
});
