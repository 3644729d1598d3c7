import { describe, expect, test } from "bun:test";
import { type SimMember, startMember, viewDisagreement } from "../../src/sim/cluster_sim.ts";
import type { Simulation } from "../../src/sim/simulation.ts";
import { withSeed } from "../../src/sim/seed.ts";
import { formCluster as formClusterIn } from "../support/form_cluster.ts";

const FILE = "test/sim/cluster_links_test.ts";

/** A linked cluster whose members have forgotten the events of forming it. */
async function formCluster(seed: number, n: number): Promise<Simulation<SimMember>> {
  const sim = await formClusterIn(seed, n);
  for (const x of sim.liveNodes()) x.events.length = 0;
  return sim;
}

const removals = (sim: Simulation<SimMember>) =>
  sim.liveNodes().flatMap((x) => x.events.filter((e) => e.type === "memberRemoved").map(() => x.id));

describe("links", () => {
  test(
    "asymmetric link failures cause no false positives (indirect probes get through)",
    () =>
      withSeed(FILE, 41, async (seed) => {
        const sim = await formCluster(seed, 10);
        const ids = sim.liveIds();
        sim.blockOneWay(ids[0], ids[3]); // the master cannot send to one member
        sim.blockOneWay(ids[5], ids[6]);
        sim.blockOneWay(ids[7], ids[2]);
        sim.blockOneWay(ids[2], ids[8]);
        await sim.run(120_000);
        expect(removals(sim)).toEqual([]);
        expect(viewDisagreement(sim.liveNodes(), ids)).toBeNull();
        // A crash is still detected while the asymmetric failures last.
        sim.crash(ids[4]);
        await sim.until(() => sim.liveNodes().every((x) => x.m.member(ids[4]) === undefined), 10_000, 20);
        expect(removals(sim).length).toBe(9);
      }),
    60_000,
  );

  test(
    "a closed link only triggers a probe: nobody is declared dead and the link comes back",
    () =>
      withSeed(FILE, 42, async (seed) => {
        const sim = await formCluster(seed, 6);
        const [a, b] = [sim.liveIds()[1], sim.liveIds()[4]];
        sim.net.node(a)!.disconnect(b);
        expect(sim.net.node(a)!.isLinked(b)).toBe(false);
        await sim.until(() => sim.net.node(a)!.isLinked(b), 20_000, 50);
        await sim.run(10_000);
        expect(removals(sim)).toEqual([]);
        expect(sim.liveNodes().every((x) => x.m.stats.deadVerdicts === 0)).toBe(true);
      }),
    60_000,
  );

  test(
    "a pair that cannot link directly talks through a relay and neither is declared dead",
    () =>
      withSeed(FILE, 43, async (seed) => {
        const sim = await formCluster(seed, 6);
        const x = sim.liveIds()[2];
        const j = sim.spawn();
        // No direct link is possible between j and x (a symmetric NAT without TURN, say).
        sim.blockOneWay(j.id, x);
        sim.blockOneWay(x, j.id);
        startMember(j, [sim.liveIds()[0]]);
        await sim.until(() => viewDisagreement(sim.liveNodes(), sim.liveIds()) === null, 20_000, 50);
        await sim.until(
          () =>
            j.m.links().some((l) => l.peer === x && l.kind === "relayed") &&
            sim.node(x)!.m.links().some((l) => l.peer === j.id && l.kind === "relayed"),
          30_000,
          100,
        );
        const relay = j.m.links().find((l) => l.peer === x)!.via!;
        expect(sim.net.node(relay)!.stats().forwarded).toBeGreaterThan(0);
        await sim.run(60_000);
        expect(removals(sim)).toEqual([]);
        expect(j.m.links().filter((l) => l.kind === "direct").length).toBe(5);
        expect(viewDisagreement(sim.liveNodes(), sim.liveIds())).toBeNull();
      }),
    60_000,
  );
});
