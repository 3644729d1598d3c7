// The job REST routes over a simulated 3-member cluster with real membership and IMaps:
// idempotent submit by id, reads from any member, cancel, and SeaTunnel REST v2 field names.
import { expect, test } from "bun:test";
import { Hono } from "hono";
import { mountJobRoutes } from "../../src/jobs/job_routes.ts";
import { JobSim } from "./jobs_sim.ts";
import { simMapLayer } from "./jobs_cluster.ts";
import { mapJob, waitStatus } from "./jobs_scenarios.ts";

test("REST: submit retried with the same id applies once; every member answers; SeaTunnel v2 reads", async () => {
  const sim = new JobSim({
    seed: 61,
    mapLayer: simMapLayer,
    tuning: { taskTickMs: 50, batchMax: 200, resendIntervalMs: 300 },
  });
  try {
    for (let i = 0; i < 3; i++) await sim.addMember();
    await sim.runUntil(() => !!sim.master()?.jobs.coordinator.active, 30_000);
    const apps = sim.live().map((m) => {
      const a = new Hono();
      mountJobRoutes(a, m.jobs);
      return a;
    });
    const req = (i: number, path: string, init?: RequestInit) =>
      sim.until(
        Promise.resolve(apps[i].request(path, init)).then(async (r) => ({ status: r.status, body: await r.json() })),
      );
    const body = JSON.stringify({ ...mapJob("r", 3000), id: "rest-1" });
    const post = { method: "POST", body, headers: { "content-type": "application/json" } };
    const first = await req(1, "/jobs", post);
    const again = await req(2, "/jobs", post);
    expect(first).toEqual({ status: 201, body: { id: "rest-1" } });
    expect(again).toEqual({ status: 201, body: { id: "rest-1" } });
    const clash = await req(0, "/jobs", { ...post, body: JSON.stringify({ ...mapJob("other"), id: "rest-1" }) });
    expect(clash.status).toBe(409);
    const list = await req(0, "/jobs");
    expect(list.body).toHaveLength(1);
    expect(list.body[0]).toMatchObject({ id: "rest-1", name: "copy-r" });

    await waitStatus(sim, "rest-1", (s) => s === "RUNNING");
    const running = await req(2, "/running-jobs");
    expect(running.body[0]).toMatchObject({
      jobId: "rest-1",
      jobName: "copy-r",
      jobStatus: "RUNNING",
      isStartWithSavePoint: false,
      pluginJarsUrls: [],
    });
    expect(Object.keys(running.body[0])).toEqual(
      expect.arrayContaining(["jobId", "jobName", "jobStatus", "envOptions", "createTime", "jobDag", "metrics"]),
    );
    expect(running.body[0].createTime).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
    expect(running.body[0].jobDag.vertexInfoMap.map((v: { type: string }) => v.type)).toEqual([
      "source",
      "transform",
      "sink",
    ]);

    const done = await waitStatus(sim, "rest-1", (s) => s === "FINISHED");
    const one = await req(0, "/jobs/rest-1");
    expect(one.status).toBe(200);
    expect(one.body.status).toBe("FINISHED");
    expect(one.body.tasks).toHaveLength(3);
    for (const t of one.body.tasks) {
      expect(Object.keys(t).sort()).toEqual(["attempt", "id", "recordsWritten", "state", "worker"]);
    }
    expect(one.body.tasks.reduce((a: number, t: { recordsWritten: number }) => a + t.recordsWritten, 0)).toBe(6000);
    expect(done.metrics.recordsWritten).toBe(6000);

    const info = await req(1, "/job-info/rest-1");
    expect(info.body).toMatchObject({ jobId: "rest-1", jobName: "copy-r", jobStatus: "FINISHED", errorMsg: null });
    expect(info.body.metrics.SinkWriteCount).toBe("6000");
    expect(info.body.metrics.SourceReceivedCount).toBe("6000");
    expect(info.body.finishedTime).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
    expect((await req(1, "/job-info/nope")).body).toEqual({ jobId: "nope" });
    const finished = await req(2, "/finished-jobs/FINISHED");
    expect(finished.body.map((j: { jobId: string }) => j.jobId)).toEqual(["rest-1"]);
    expect(Object.keys(finished.body[0]).sort()).toEqual([
      "createTime",
      "errorMsg",
      "finishTime",
      "jobDag",
      "jobId",
      "jobName",
      "jobStatus",
      "metrics",
    ]);
    expect((await req(2, "/finished-jobs/FAILED")).body).toEqual([]);
    const overview = await req(0, "/overview");
    expect(overview.body).toMatchObject({
      totalSlot: "12",
      unassignedSlot: "12",
      works: "3",
      runningJobs: "0",
      finishedJobs: "1",
      failedJobs: "0",
      cancelledJobs: "0",
    });

    expect((await req(0, "/jobs/none")).status).toBe(404);
    expect((await req(0, "/jobs/none/cancel", { method: "POST" })).status).toBe(404);
    const cancelDone = await req(0, "/jobs/rest-1/cancel", { method: "POST" });
    expect(cancelDone).toEqual({ status: 202, body: { id: "rest-1", status: "FINISHED" } });
  } finally {
    sim.stopAll();
  }
}, 120_000);
