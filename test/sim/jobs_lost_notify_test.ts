// A job whose submit notification never reached the coordinator still runs: the next scan
// finds it in the active-jobs index (one read per scan), and a job the index does not name is
// found by the walk of `jobs`, which runs only every `walkEveryScans` scans (30 by default;
// it was every fifth, and its call per partition made most of an idle cluster's messages).
// Over the simulated cluster (real membership, real partitioned IMaps, virtual time).
import { describe, expect, test } from "bun:test";
import { activeJobsKey, JobMaps } from "../../src/jobs/map_names.ts";
import { Kind } from "../../src/wire/kinds.ts";
import { simTuning, withJobCluster } from "./jobs_cluster.ts";
import { mapJob, reader, status, waitStatus } from "./jobs_scenarios.ts";
import type { SimMember } from "./jobs_sim.ts";

/** From now on the JobNotify messages `m` sends are lost. */
function loseNotifications(m: SimMember): void {
  const send = m.transport.send.bind(m.transport);
  m.transport.send = (to, msg) => msg.t === Kind.JobNotify ? true : send(to, msg);
}

describe("jobs whose submit notification was lost", () => {
  test("are found in the index by the next scan, or, when the index misses them, by the next walk", async () => {
    await withJobCluster({ seed: 71 }, async (sim) => {
      const scanMs = simTuning.scanIntervalMs!;
      const master = sim.master()!;
      const stats = master.jobs.coordinator.stats;
      const other = sim.live().find((m) => m !== master)!;
      loseNotifications(other);
      // Right after a walk: the next one is 30 scans away.
      let walks = stats.walks;
      await sim.runUntil(() => stats.walks > walks, 40 * scanMs);
      walks = stats.walks;
      const indexed = await sim.until(other.jobs.submit(mapJob("indexed", 3000), "indexed"));
      const t0 = sim.clock.now();
      await waitStatus(sim, indexed, (s) => s !== "CREATED", 3 * scanMs);
      expect(sim.clock.now() - t0).toBeLessThanOrEqual(2 * scanMs + 500);
      expect(stats.walks).toBe(walks);
      expect((await waitStatus(sim, indexed, (s) => s === "FINISHED" || s === "FAILED")).status).toBe("FINISHED");

      // A job the index does not name (its update failed, or the index was full).
      await sim.runUntil(() => stats.walks > walks, 40 * scanMs);
      walks = stats.walks;
      const hidden = await sim.until(other.jobs.submit(mapJob("hidden", 3000), "hidden"));
      await sim.until(reader(sim).maps.getMap(JobMaps.jobStates).set(activeJobsKey, { ids: [] }));
      expect((await status(sim, hidden))!.status).toBe("CREATED");
      // Scans go on without walking: nothing finds it for a while ...
      await sim.run(10 * scanMs);
      expect((await status(sim, hidden))!.status).toBe("CREATED");
      expect(stats.walks).toBe(walks);
      // ... until the next walk, 30 scans after the last.
      await waitStatus(sim, hidden, (s) => s !== "CREATED", 25 * scanMs);
      expect(stats.walks).toBe(walks + 1);
      expect((await waitStatus(sim, hidden, (s) => s === "FINISHED" || s === "FAILED")).status).toBe("FINISHED");
    });
  }, 180_000);
});
