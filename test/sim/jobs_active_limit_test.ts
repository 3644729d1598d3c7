/**
 * The limit of active jobs holds for jobs the coordinator hears of from a submit: only its
 * periodic scan checked it, and every submit that reached the master was loaded and reconciled
 * on every tick (found by an internal review). Here the limit is 2 (1,000 by default).
 */
import { describe, expect, test } from "bun:test";
import { withJobCluster } from "./jobs_cluster.ts";
import { reader, status } from "./jobs_scenarios.ts";

describe("the active-job limit", () => {
  test("holds for jobs the coordinator is told about; the others wait in CREATED, then run", async () => {
    await withJobCluster({ seed: 12 }, async (sim) => {
      const master = sim.master()!;
      (master.jobs.coordinator.opts as { maxActiveJobs?: number }).maxActiveJobs = 2;
      const r = reader(sim);
      for (let i = 0; i < 4; i++) {
        await sim.until(r.jobs.submit({
          name: `j${i}`,
          source: { type: "sequence", count: 100, ratePerSecond: 100 },
          sink: { type: "map", map: `o${i}` },
        }, `j${i}`));
      }
      await sim.run(500);
      const states = async () => {
        const out: string[] = [];
        for (let i = 0; i < 4; i++) out.push((await status(sim, `j${i}`))!.status);
        return out;
      };
      expect((await states()).filter((s) => s !== "CREATED").length).toBeLessThanOrEqual(2);
      // The two left wait, and run once the first two ended.
      await sim.runUntil(async () => (await states()).every((s) => s === "FINISHED"), 60_000);
    });
  }, 120_000);
});
