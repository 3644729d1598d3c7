/**
 * A member holding the secret lies in the job protocol (found by floods of random job-layer
 * messages while two jobs ran). Coordinator messages with a far-future term: a worker took
 * the highest term heard from anyone as the coordinator's and dropped every later deploy of the
 * real coordinator, so the jobs never finished; workers now take coordinator messages only from
 * their master (the coordinator runs there and resends each until answered). A cancel notice
 * for jobs nobody asked to cancel: the master cancelled them; it now looks for the cancel record.
 * Reports of task ends under worker ids the liar does not run: the master ended running tasks
 * and a job FINISHED with 573 of its 6,000 records; only the assigned worker's report counts now.
 */
import { describe, expect, test } from "bun:test";
import { Kind } from "../../src/wire/kinds.ts";
import { withJobCluster } from "./jobs_cluster.ts";
import { addLiar, checkPairOutput, logJob, mapJob, status, waitEnded, waitStatus } from "./jobs_scenarios.ts";

describe("a member that sends the workers coordinator messages of a far-future term", () => {
  test("the workers ignore them; both jobs finish with exact output", async () => {
    await withJobCluster({ seed: 1 }, async (sim) => {
      const liar = await sim.addMember();
      const honest = sim.live().filter((m) => m !== liar);
      const term = Number.MAX_SAFE_INTEGER;
      for (const w of honest) {
        liar.transport.send(w.id, { t: Kind.JobCancelTask, taskId: "none/p0/t0", attempt: 1, term });
        liar.transport.send(w.id, { t: Kind.JobTaskQuery, reqId: 1, term, taskIds: ["none/p0/t0"] });
      }
      // And a hello in its own name under an id its worker does not run, with many slots (the
      // tasks go there): its worker, told of the other id by a deploy, says hello again.
      liar.transport.send(sim.master()!.id, { t: Kind.JobWorkerHello, workerId: "forged", slots: 4096 });
      await sim.run(100);
      const submitter = honest[1];
      const a = await sim.until(submitter.jobs.submit(mapJob("a"), "job-a"));
      const b = await sim.until(submitter.jobs.submit(logJob("b"), "job-b"));
      const [fa, fb] = await waitEnded(sim, a, b);
      expect([fa.status, fa.error]).toEqual(["FINISHED", undefined]);
      expect([fb.status, fb.error]).toEqual(["FINISHED", undefined]);
      await checkPairOutput(sim, "out-a", "log-b", b);
    });
  }, 60_000);
});

describe("a member that tells the master to cancel jobs nobody asked to cancel", () => {
  test("the master finds no cancel request and goes on; a real cancel still works", async () => {
    await withJobCluster({ seed: 2 }, async (sim) => {
      const { liar, master, submitter } = await addLiar(sim);
      const a = await sim.until(submitter.jobs.submit(mapJob("a"), "job-a"));
      const b = await sim.until(submitter.jobs.submit(logJob("b"), "job-b"));
      const c = await sim.until(submitter.jobs.submit(mapJob("c"), "job-c"));
      await waitStatus(sim, a, (s) => s === "RUNNING");
      for (const id of [a, b, c]) liar.transport.send(master.id, { t: Kind.JobNotify, jobId: id, what: "cancel" });
      await sim.until(submitter.jobs.cancel(c));
      const [fa, fb] = await waitEnded(sim, a, b);
      expect([fa.status, fa.error]).toEqual(["FINISHED", undefined]);
      expect([fb.status, fb.error]).toEqual(["FINISHED", undefined]);
      await checkPairOutput(sim, "out-a", "log-b", b);
      expect((await waitStatus(sim, c, (s) => s === "CANCELED")).status).toBe("CANCELED");
    });
  }, 60_000);
});

describe("a member that reports the end of tasks under worker ids it does not run", () => {
  test("the master drops the reports; both jobs finish with exact output", async () => {
    await withJobCluster({ seed: 3 }, async (sim) => {
      const { liar, master, submitter } = await addLiar(sim);
      const a = await sim.until(submitter.jobs.submit(mapJob("a"), "job-a"));
      const b = await sim.until(submitter.jobs.submit(logJob("b"), "job-b"));
      await waitStatus(sim, a, (s) => s === "RUNNING");
      const tasks = [...(await status(sim, a))!.tasks, ...(await status(sim, b))!.tasks];
      for (const t of tasks) {
        liar.transport.send(master.id, {
          t: Kind.JobTaskDone,
          jobId: t.id.slice(0, t.id.lastIndexOf("/p")),
          taskId: t.id,
          attempt: t.attempt,
          workerId: "w",
          state: "FINISHED",
          recordsRead: 1,
          recordsWritten: 1,
        });
      }
      const [fa, fb] = await waitEnded(sim, a, b);
      expect([fa.status, fb.status]).toEqual(["FINISHED", "FINISHED"]);
      await checkPairOutput(sim, "out-a", "log-b", b);
      expect(master.jobs.coordinator.stats.foreignReports).toBeGreaterThan(0);
    });
  }, 60_000);
});
