/**
 * Job submission under split-brain protection (3 members, minClusterSize 2, real membership,
 * IMaps and job services in virtual time): cut off from the others, a member refuses a
 * submission at once with QUORUM; the majority side accepts one; after the heal the member
 * accepts again.
 */
import { expect, test } from "bun:test";
import { ShoalError } from "../../src/core/errors.ts";
import { withSeed } from "../../src/sim/seed.ts";
import { simTuning } from "./jobs_cluster.ts";
import { loadMapLayer } from "./jobs_map_layer.ts";
import { mapJob } from "./jobs_scenarios.ts";
import { JobSim } from "./jobs_sim.ts";

const FILE = "test/sim/jobs_quorum_test.ts";

test(
  "a member cut off from the quorum refuses job submissions with QUORUM, and accepts them after the heal",
  () =>
    withSeed(FILE, 71, async (seed) => {
      const sim = new JobSim({ seed, mapLayer: (await loadMapLayer(2))!, slots: 4, tuning: simTuning });
      try {
        for (let i = 0; i < 3; i++) await sim.addMember();
        await sim.runUntil(() => !!sim.master()?.jobs.coordinator.active, 30_000);
        const [a, b, c] = sim.live();
        expect(await sim.until(a.jobs.submit(mapJob("before", 3000), "before"))).toBe("before");

        sim.net.partition([[a.id, b.id], [c.id]]);
        await sim.run(1500); // past the 1 s lease
        const started = sim.clock.now();
        const refused = await sim.until(c.jobs.submit(mapJob("cut", 3000), "cut").then(() => null, (e) => e));
        expect(refused).toBeInstanceOf(ShoalError);
        expect((refused as ShoalError).code).toBe("QUORUM");
        expect(sim.clock.now() - started).toBeLessThan(50);
        expect(await sim.until(a.jobs.submit(mapJob("majority", 3000), "majority"))).toBe("majority");

        sim.net.heal();
        await sim.runUntil(() => c.maps.gate?.() === null && c.membership.members().length === 3, 60_000);
        expect(await sim.until(c.jobs.submit(mapJob("after", 3000), "after"))).toBe("after");
      } finally {
        sim.stopAll();
      }
    }),
  120_000,
);
