// What the coordinator does with job state a split brain or a lost partition left behind,
// over the simulated cluster (real membership, real partitioned IMaps, virtual time):
// a coordinator record from the other side of a healed split does not leave the cluster
// without a coordinator, and a job whose state records are gone is not run again.
import { describe, expect, test } from "bun:test";
import {
  coordinatorKey,
  type CoordinatorRecord,
  JobMaps,
  jobStateKey,
  taskStateKey,
} from "../../src/jobs/map_names.ts";
import { mapJob, reader, status, waitStatus } from "./jobs_scenarios.ts";
import { withJobCluster } from "./jobs_cluster.ts";

describe("job state left behind by a split or a lost partition", () => {
  test(
    "a coordinator record from a newer master epoch of a member that is not master is claimed after a while",
    async () => {
      await withJobCluster({ seed: 61 }, async (sim) => {
        const master = sim.master()!;
        const other = sim.live().find((m) => m !== master)!;
        const states = reader(sim).maps.getMap(JobMaps.jobStates);
        const term = master.jobs.coordinator.term;
        // What a healed split leaves: the other side's master (now a plain member here) wrote
        // the record with a higher term and a master epoch this side never counted to.
        const foreign: CoordinatorRecord = { member: other.id, term: term + 1, epoch: 1_000, since: sim.clock.now() };
        await sim.until(states.set(coordinatorKey, foreign));
        // The master steps down at its next fence check ...
        await sim.runUntil(() => !master.jobs.coordinator.active, 5_000);
        // ... and, still master while nobody else coordinates, claims the record back.
        const took = await sim.runUntil(() => master.jobs.coordinator.active, 30_000);
        expect(took).toBeGreaterThan(0);
        const rec = (await sim.until(states.get(coordinatorKey))) as CoordinatorRecord;
        expect(rec.member).toBe(master.id);
        expect(rec.term).toBe(term + 2);
        // And it coordinates: a job submitted now finishes.
        const id = await sim.until(other.jobs.submit(mapJob("after-split", 3000), "after-split"));
        expect((await waitStatus(sim, id, (s) => s === "FINISHED" || s === "FAILED")).status).toBe("FINISHED");
      });
    },
    120_000,
  );

  test("a job whose state records are lost is not started again", async () => {
    await withJobCluster({ seed: 62 }, async (sim) => {
      const master = sim.master()!;
      const id = await sim.until(master.jobs.submit(mapJob("lost", 3000), "job-lost"));
      await waitStatus(sim, id, (s) => s === "FINISHED");
      const states = reader(sim).maps.getMap(JobMaps.jobStates);
      const entry = (await sim.until(reader(sim).jobs.entry(id)))!;
      const taskIds = entry.plan.pipelines.flatMap((p) => p.taskGroups.flatMap((g) => g.tasks.map((t) => t.id)));
      // Every replica of the partitions holding the job's states died: the records are gone,
      // the job entry (another partition) is still there.
      await sim.until(states.delete(jobStateKey(id)));
      for (const t of taskIds) await sim.until(states.delete(taskStateKey(t)));
      // A new coordinator scans the maps and finds the entry.
      sim.crash(master.id);
      await sim.runUntil(() => !!sim.master() && sim.master()!.jobs.coordinator.active, 15_000);
      await sim.run(5_000);
      const info = (await status(sim, id))!;
      // Nothing ran it again: no task was scheduled, no state was recreated.
      expect(info.tasks.every((t) => t.state === "CREATED" && t.worker === null)).toBe(true);
      expect(await sim.until(states.get(jobStateKey(id)))).toBeUndefined();
    });
  }, 120_000);
});
