// Ended jobs' records are purged after the history retention, and the id may be submitted again.
// The purge leaves the job's output alone, and a log sink's per-task list there keeps `applied`
// (the last checkpoint appended) under the task id, which derives from the job id: the job run
// again numbered its checkpoints from 1, every segment up to the old run's last checkpoint was
// taken as applied and dropped, and the second run FINISHED with its output missing (found by an
// internal review). The sink now names the run (the entry's createdAt) with each segment.
import { describe, expect, test } from "bun:test";
import type { LogList } from "../../src/jobs/sink_log.ts";
import { withJobCluster } from "./jobs_cluster.ts";
import { reader, taskIdsOf, waitStatus } from "./jobs_scenarios.ts";

const HISTORY_MS = 20_000;

const logJob = {
  name: "log-reuse",
  source: { type: "sequence", count: 300, parallelism: 1, ratePerSecond: 1000 },
  sink: { type: "log", map: "log-reuse" },
  checkpointIntervalMs: 200,
};

describe("an id reused after its job was purged", () => {
  test("a log-sink job run again under a purged id appends its records", async () => {
    await withJobCluster({ seed: 21, historyMs: HISTORY_MS }, async (sim) => {
      const jobs = () => reader(sim).jobs;
      const log = () => reader(sim).maps.getMap("log-reuse");
      await sim.until(jobs().submit(logJob, "L"));
      expect((await waitStatus(sim, "L", (s) => s === "FINISHED" || s === "FAILED", 60_000)).status).toBe("FINISHED");
      const [task] = await taskIdsOf(sim, "L");
      const first = (await sim.until(log().get(task))) as LogList;
      expect(first.entries.length).toBe(300);
      // The retention runs out: the job is purged, its id free again.
      await sim.run(HISTORY_MS + 10_000);
      expect(await sim.until(jobs().get("L"))).toBeUndefined();
      await sim.until(jobs().submit(logJob, "L"));
      expect((await waitStatus(sim, "L", (s) => s === "FINISHED" || s === "FAILED", 60_000)).status).toBe("FINISHED");
      const second = (await sim.until(log().get(task))) as LogList;
      expect(second.entries.length).toBe(600);
    });
  }, 300_000);
});
