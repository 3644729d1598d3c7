import { describe, expect } from "bun:test";
import { Membership } from "../../src/cluster/membership.ts";
import { ShoalError } from "../../src/core/errors.ts";
import { MessageRouter } from "../../src/transport/router.ts";
import { mastersOf, startMember, stillListing, viewDisagreement } from "../../src/sim/cluster_sim.ts";
import { formCluster as formClusterIn } from "../support/form_cluster.ts";
import { seededTest } from "../support/seeded.ts";

const seeded = seededTest("test/sim/cluster_basic_test.ts");

const formCluster = (seed: number, n: number) =>
  formClusterIn(seed, n, { aloneMs: 10, linked: false, timeoutMs: 20_000, stepMs: 50 });

describe("membership in a small simulated cluster", () => {
  seeded("five members join through seeds and agree on one view with the oldest as master", 1, async (seed) => {
    const sim = await formCluster(seed, 5);
    const nodes = sim.liveNodes();
    expect(mastersOf(nodes)).toEqual([nodes[0].id]);
    expect(nodes[0].m.isMaster()).toBe(true);
    // Age order is admission order, and the master is the oldest.
    expect(nodes[0].m.members().map((x) => x.id).sort()).toEqual(sim.liveIds());
    expect(nodes[0].m.members()[0].id).toBe(nodes[0].id);
    const joined = nodes[0].m.members().map((x) => x.joinedAt);
    expect([...joined].sort((a, b) => a - b)).toEqual(joined);
    // Full mesh of direct links.
    await sim.until(() => nodes.every((n) => n.m.links().filter((l) => l.kind === "direct").length === 4), 10_000);
    for (const n of nodes) expect(n.started).toBe("ok");
  });

  seeded("a crashed member is declared dead by every survivor and removed from the list", 2, async (seed) => {
    const sim = await formCluster(seed, 5);
    const victim = sim.liveIds()[3];
    sim.crash(victim);
    const t = await sim.until(() => stillListing(sim.liveNodes(), victim).length === 0, 10_000, 20);
    expect(t).toBeLessThan(5_000);
    await sim.until(() => viewDisagreement(sim.liveNodes(), sim.liveIds()) === null, 5_000);
    for (const n of sim.liveNodes()) {
      expect(n.events.some((e) => e.type === "memberRemoved" && e.member.id === victim && e.reason === "dead")).toBe(
        true,
      );
    }
  });

  seeded("when the master crashes the oldest survivor becomes master and the epoch rises", 3, async (seed) => {
    const sim = await formCluster(seed, 5);
    const [oldMaster, next] = sim.liveIds();
    const epochBefore = sim.node(next)!.m.masterEpoch;
    sim.crash(oldMaster);
    await sim.until(
      () => mastersOf(sim.liveNodes()).length === 1 && mastersOf(sim.liveNodes())[0] === next,
      10_000,
      20,
    );
    await sim.until(() => viewDisagreement(sim.liveNodes(), sim.liveIds()) === null, 5_000);
    for (const n of sim.liveNodes()) {
      expect(n.m.masterEpoch).toBeGreaterThan(epochBefore);
      expect(n.events.some((e) => e.type === "masterChanged" && e.master === next && e.previous === oldMaster)).toBe(
        true,
      );
    }
    expect(new Set(sim.liveNodes().map((n) => n.m.masterEpoch)).size).toBe(1);
    // The new master admits joiners.
    const late = sim.spawn();
    startMember(late, [sim.liveIds()[2]]);
    await sim.until(() => viewDisagreement(sim.liveNodes(), sim.liveIds()) === null, 10_000);
    expect(late.m.master()).toBe(next);
  });

  seeded("a graceful leave removes the member at once, without suspicion", 4, async (seed) => {
    const sim = await formCluster(seed, 4);
    const leaver = sim.node(sim.liveIds()[0])!; // the master leaves
    const p = leaver.m.leave();
    await sim.run(60);
    await p;
    sim.crash(leaver.id);
    const rest = sim.liveNodes();
    for (const n of rest) {
      expect(n.m.member(leaver.id)).toBeUndefined();
      expect(n.events.some((e) => e.type === "memberRemoved" && e.member.id === leaver.id && e.reason === "left"))
        .toBe(true);
    }
    await sim.until(() => viewDisagreement(rest, sim.liveIds()) === null, 3_000);
    expect(mastersOf(rest)).toEqual([sim.liveIds()[0]]);
  });

  seeded("a node with the wrong secret or cluster name is refused with a clear reason", 5, async (seed) => {
    const sim = await formCluster(seed, 3);
    const make = (id: string, cluster: string, secret: string) => {
      const transport = sim.net.attach(id);
      return new Membership({
        self: id,
        transport,
        router: new MessageRouter(transport),
        clock: sim.clock,
        rng: sim.rng.fork(),
        config: { cluster, secret },
      });
    };
    const results: unknown[] = [];
    make("intruder", "sim", "wrong").start([sim.liveIds()[1]]).catch((e) => results.push(e));
    make("stranger", "other", "sim-secret").start([sim.liveIds()[2]]).catch((e) => results.push(e));
    await sim.run(5_000);
    expect(results.length).toBe(2);
    const codes = results.map((e) => (e as ShoalError).code).sort();
    expect(codes).toEqual(["AUTH_FAILED", "REFUSED"]);
    expect(String((results.find((e) => (e as ShoalError).code === "AUTH_FAILED") as Error).message)).toContain(
      "secret",
    );
    for (const n of sim.liveNodes()) expect(n.m.members().length).toBe(3);
    expect(sim.liveNodes().reduce((s, n) => s + n.m.stats.joinsRefused, 0)).toBe(2);
  });
});
