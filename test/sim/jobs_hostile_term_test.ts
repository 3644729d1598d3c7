/**
 * A member holding the secret sends the workers coordinator messages with a far-future term
 * (found by a flood of random job-layer messages while two jobs ran: the jobs never finished).
 * A worker took the highest term it had heard from anyone as the coordinator's, and dropped
 * every later deploy, cancel and query of the real coordinator as a deposed one's: its tasks
 * could never be deployed again. Coordinator messages count only from the master (the
 * coordinator runs there and resends each until it is answered).
 */
import { describe, expect, test } from "bun:test";
import { Kind } from "../../src/wire/kinds.ts";
import { withJobCluster } from "./jobs_cluster.ts";
import { checkPairOutput, logJob, mapJob, waitEnded, waitStatus } from "./jobs_scenarios.ts";

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
      const liar = await sim.addMember();
      const master = sim.master()!;
      const submitter = sim.live().find((m) => m !== master && m !== liar)!;
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
