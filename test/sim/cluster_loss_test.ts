import { describe, expect } from "bun:test";
import { clusterSimulation, mastersOf, startMember, viewDisagreement } from "../../src/sim/cluster_sim.ts";
import { seededTest } from "../support/seeded.ts";

const seeded = seededTest("test/sim/cluster_loss_test.ts");

describe("failure detection under message loss", () => {
  // 100 members, 5 % loss on every link in both directions, 10 minutes of virtual time.
  seeded("no false positive over 10 virtual minutes at 5 % loss (100 members)", 7, async (seed) => {
    const n = 100;
    const sim = clusterSimulation({ seed, encode: false });
    startMember(sim.spawn(), []);
    await sim.run(5);
    for (let i = 1; i < n; i++) startMember(sim.spawn(), [sim.liveIds()[sim.rng.int(i)]]);
    await sim.until(() => viewDisagreement(sim.liveNodes(), sim.liveIds()) === null, 30_000, 100);
    await sim.until(() => sim.liveNodes().every((x) => x.m.links().length === n - 1), 30_000, 100);
    const version = sim.liveNodes()[0].m.memberListVersion;
    for (const x of sim.liveNodes()) x.events.length = 0;

    sim.setLoss(0.05);
    await sim.run(10 * 60_000);

    const nodes = sim.liveNodes();
    const removed = nodes.flatMap((x) =>
      x.events.filter((e) => e.type === "memberRemoved").map((e) =>
        `${x.id} removed ${e.type === "memberRemoved" && e.member.id}`
      )
    );
    expect(removed).toEqual([]);
    expect(nodes.reduce((s, x) => s + x.m.stats.deadVerdicts, 0)).toBe(0);
    // Suspicions did happen (so the test exercised refutation), and were refuted.
    const suspicions = nodes.reduce((s, x) => s + x.m.stats.suspicions, 0);
    const refutations = nodes.reduce((s, x) => s + x.m.stats.refutations, 0);
    console.log(
      `5 % loss, ${n} members, 10 min: ${suspicions} suspicions, ${refutations} refutations, ${sim.net.lost} messages lost`,
    );
    expect(refutations).toBeGreaterThan(0);
    expect(mastersOf(nodes)).toEqual([sim.liveIds()[0]]);
    expect(viewDisagreement(nodes, sim.liveIds())).toBeNull();
    expect(nodes[0].m.memberListVersion).toBe(version);
  }, 120_000);
});
