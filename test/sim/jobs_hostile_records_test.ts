/**
 * A member holding the secret writes forged records into the job maps with plain map ops (they
 * are ordinary maps: any member can write them). It can spoil the jobs whose records it forges;
 * the question here is whether one forged record breaks the coordinator for every job.
 */
import { describe, expect, test } from "bun:test";
import { activeJobsKey, coordinatorKey, JobMaps, taskStateKey, type WorkerEntry } from "../../src/jobs/map_names.ts";
import { withJobCluster } from "./jobs_cluster.ts";
import { addLiar, checkMapOutput, mapJob, waitEnded } from "./jobs_scenarios.ts";

const far = Number.MAX_SAFE_INTEGER;

describe("a forged coordinator record at term 2^53 - 1", () => {
  test("the coordinator's next term stays on the wire; a job submitted after it finishes", async () => {
    await withJobCluster({ seed: 11 }, async (sim) => {
      const liar = await sim.addMember();
      const master = sim.master()!;
      await sim.until(
        liar.maps.getMap(JobMaps.jobStates).set(coordinatorKey, { member: liar.id, term: far, epoch: 0, since: 0 }),
      );
      await sim.run(5000);
      const submitter = sim.live().find((m) => m !== master && m !== liar)!;
      const a = await sim.until(submitter.jobs.submit(mapJob("a"), "job-a"));
      const [fa] = await waitEnded(sim, a);
      expect([fa.status, fa.error]).toEqual(["FINISHED", undefined]);
      expect(Number.isSafeInteger(master.jobs.coordinator.term)).toBe(true);
      await checkMapOutput(sim, "out-a", (v) => v * 2);
    });
  }, 120_000);
});

describe("a forged workers entry of an honest member at term 2^53 - 1", () => {
  test("the coordinator keeps coordinating; the job finishes", async () => {
    await withJobCluster({ seed: 12 }, async (sim) => {
      const { liar, master, submitter } = await addLiar(sim);
      const forged: WorkerEntry = {
        member: submitter.id,
        workerId: "w-forged",
        total: 4,
        free: 4,
        tasks: [],
        term: far,
        updatedAt: 0,
      };
      await sim.until(liar.maps.getMap(JobMaps.workers).set(submitter.id, forged));
      const a = await sim.until(submitter.jobs.submit(mapJob("a"), "job-a"));
      const [fa] = await waitEnded(sim, a);
      expect([fa.status, fa.error]).toEqual(["FINISHED", undefined]);
      expect(master.jobs.coordinator.active).toBe(true);
    });
  }, 120_000);
});

describe("a forged task state record of the liar's own job at a term above the coordinator's", () => {
  test("only that job is affected; an honest job finishes", async () => {
    await withJobCluster({ seed: 13 }, async (sim) => {
      const { liar, master, submitter } = await addLiar(sim);
      const x = await sim.until(liar.jobs.submit(mapJob("x", 10), "job-x"));
      await sim.run(2000);
      const states = liar.maps.getMap(JobMaps.jobStates);
      const key = taskStateKey(`${x}/p0/t0`);
      const cur = (await sim.until(states.get(key))) as Record<string, unknown>;
      await sim.until(states.set(key, { ...cur, term: far }));
      await sim.until(liar.jobs.cancel(x)); // the coordinator writes the forged record now
      const a = await sim.until(submitter.jobs.submit(mapJob("a"), "job-a"));
      const [fa] = await waitEnded(sim, a);
      expect([fa.status, fa.error]).toEqual(["FINISHED", undefined]);
      expect(master.jobs.coordinator.active).toBe(true);
    });
  }, 120_000);
});

describe("a forged active-jobs index and a forged job entry", () => {
  test("takeovers, scans, submits and listings go on; a job submitted after them finishes", async () => {
    await withJobCluster({ seed: 14 }, async (sim) => {
      const liar = await sim.addMember();
      const states = liar.maps.getMap(JobMaps.jobStates);
      // An index that is no list of ids, then one naming an entry whose parallelism would make
      // the master build a plan without end.
      await sim.until(states.set(activeJobsKey, { ids: 5 }));
      const submitter = sim.live().find((m) => m !== sim.master() && m !== liar)!;
      const a = await sim.until(submitter.jobs.submit(mapJob("a"), "job-a"));
      expect((await waitEnded(sim, a))[0].status).toBe("FINISHED");
      const forged = {
        id: "forged",
        createdAt: 0,
        plan: { pipelines: [] },
        definition: { ...mapJob("f"), parallelism: far },
      };
      await sim.until(liar.maps.getMap(JobMaps.jobs).set("forged", forged));
      await sim.until(states.set(activeJobsKey, { ids: ["forged", 7, a] }));
      // The master dies: the next one takes over from the index.
      const old = sim.master()!;
      sim.crash(old.id);
      await sim.runUntil(
        () => sim.master() !== undefined && sim.master() !== old && sim.master()!.jobs.coordinator.active,
        30_000,
      );
      const b = await sim.until(submitter.jobs.submit(mapJob("b"), "job-b"));
      const [fb] = await waitEnded(sim, b);
      expect([fb.status, fb.error]).toEqual(["FINISHED", undefined]);
      await checkMapOutput(sim, "out-b", (v) => v * 2);
      const listed = (await sim.until(submitter.jobs.list())).map((j) => j.id).sort();
      expect(listed).toEqual(["job-a", "job-b"]);
    });
  }, 120_000);
});
