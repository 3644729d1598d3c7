import { describe, expect } from "bun:test";
import {
  clusterSimulation,
  mastersOf,
  startMember,
  stillListing,
  viewDisagreement,
} from "../../src/sim/cluster_sim.ts";
import { seededTest } from "../support/seeded.ts";

const seeded = seededTest("test/sim/cluster_scale_test.ts");

describe("membership at 1,000 members", () => {
  seeded(
    "1,000 members joining in a storm converge to one view with one master; a crash is known everywhere within 5 s",
    1000,
    async (seed) => {
      const n = 1000;
      const sim = clusterSimulation({ seed, encode: false, maxEvents: 20 });
      startMember(sim.spawn(), []);
      await sim.run(5);
      // Join storm: 999 members start within 2 s, each through 3 random members already in.
      for (let i = 1; i < n; i++) {
        sim.clock.setTimer(sim.rng.next() * 2000, () => {
          const inside = sim.liveIds().filter((id) => sim.node(id)!.m.joined);
          startMember(sim.spawn(), Array.from({ length: 3 }, () => sim.rng.pick(inside)));
        });
      }
      await sim.run(2000);
      const convergeMs = await sim.until(
        () => viewDisagreement(sim.liveNodes(), sim.liveIds()) === null,
        60_000,
        100,
        () => viewDisagreement(sim.liveNodes(), sim.liveIds()) ?? "",
      );
      const nodes = sim.liveNodes();
      expect(nodes.length).toBe(n);
      expect(mastersOf(nodes)).toEqual([sim.liveIds()[0]]);
      expect(nodes.filter((x) => x.m.isMaster()).length).toBe(1);
      for (const x of nodes) expect(x.started).toBe("ok");
      console.log(
        `1,000 members: one view ${convergeMs} ms after the storm, version ${nodes[0].m.memberListVersion}`,
      );

      await sim.until(() => nodes.every((x) => x.m.links().length === n - 1), 60_000, 100);
      await sim.run(3000);
      const victim = sim.liveIds()[sim.rng.int(n - 1) + 1];
      sim.crash(victim);
      const knownMs = await sim.until(
        () => stillListing(sim.liveNodes(), victim).length === 0,
        5_000,
        10,
        () => `${stillListing(sim.liveNodes(), victim).length} members still list ${victim}`,
      );
      console.log(`crash of ${victim} known by all 999 survivors after ${knownMs} ms`);
      expect(knownMs).toBeLessThanOrEqual(5_000);
      await sim.until(() => viewDisagreement(sim.liveNodes(), sim.liveIds()) === null, 10_000, 50);
      expect(mastersOf(sim.liveNodes())).toEqual([sim.liveIds()[0]]);
      // No false positives along the way.
      expect(
        sim.liveNodes().every((x) => x.events.every((e) => e.type !== "memberRemoved" || e.member.id === victim)),
      ).toBe(true);
    },
    120_000,
  );
});
