// Nothing removes a finished job (no retention), and list() stops reading the `jobs` map after
// 10,000 entries in partition order. Once a cluster had run 10,000 jobs, newly submitted running
// jobs vanished from GET /jobs, /running-jobs and /overview (found by an internal review). Active
// jobs are now listed from the active-jobs index, whatever the walk reached.
import { describe, expect, test } from "bun:test";
import { buildPlan } from "../../src/jobs/job_plan.ts";
import { overview, runningJobs } from "../../src/jobs/seatunnel_api.ts";
import { JobMaps, jobStateKey } from "../../src/jobs/map_names.ts";
import { withJobCluster } from "./jobs_cluster.ts";
import { reader } from "./jobs_scenarios.ts";

describe("many old jobs", () => {
  test("running jobs stay listed after 12,000 finished ones", async () => {
    await withJobCluster({ seed: 3 }, async (sim) => {
      const r = reader(sim);
      const jobs = r.maps.getMap(JobMaps.jobs);
      const states = r.maps.getMap(JobMaps.jobStates);
      const def = r.jobs.registry.normalizeDefinition({
        name: "old",
        source: { type: "sequence", count: 10 },
        sink: { type: "map", map: "old-out" },
      });
      // 12,000 jobs that ran and FINISHED earlier (as the coordinator leaves them: nothing is removed).
      for (let b = 0; b < 12; b++) {
        const es: [unknown, unknown][] = [], ss: [unknown, unknown][] = [];
        for (let i = 0; i < 1000; i++) {
          const id = `old-${b}-${i}`;
          es.push([id, { id, definition: def, plan: buildPlan(id, def), createdAt: i }]);
          ss.push([jobStateKey(id), { state: "FINISHED", timestamps: { FINISHED: 1 }, term: 1, epoch: 1 }]);
        }
        await sim.until(states.putAll(ss));
        await sim.until(jobs.putAll(es));
      }
      const ids: string[] = [];
      for (let i = 0; i < 20; i++) {
        ids.push(
          await sim.until(r.jobs.submit({
            name: `new-${i}`,
            source: { type: "sequence", count: 100000, ratePerSecond: 10 },
            sink: { type: "map", map: `new-out-${i}` },
          }, `new-${i}`)),
        );
      }
      await sim.run(3000);
      const listed = new Set((await sim.until(r.jobs.list())).map((j) => j.id));
      const running = (await sim.until(runningJobs(r.jobs))).map((j) => j.jobId);
      const ov = await sim.until(overview(r.jobs));
      const missing = ids.filter((id) => !listed.has(id));
      expect(missing).toEqual([]);
      expect(running.length).toBe(20);
      expect(ov.runningJobs).toBe("20");
    });
  }, 300_000);
});
