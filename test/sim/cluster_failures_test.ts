/**
 * A run fails loudly: a message handler that throws (an assertion inside the protocol) fails
 * the seed and names the replay command, and stale news that the guards must drop (an older
 * member list, a lower incarnation) is dropped without tripping an assertion.
 */
import { describe, expect, test } from "bun:test";
import { Status } from "../../src/cluster/messages.ts";
import { assert } from "../../src/core/errors.ts";
import { type SimMember, simMembership, startMember, viewDisagreement } from "../../src/sim/cluster_sim.ts";
import { withSeed } from "../../src/sim/seed.ts";
import { type SimNode, Simulation } from "../../src/sim/simulation.ts";
import type { MemoryTransport } from "../../src/transport/memory.ts";
import { Kind } from "../../src/wire/kinds.ts";
import { seededTest } from "../support/seeded.ts";

const FILE = "test/sim/cluster_failures_test.ts";
const seeded = seededTest(FILE);

interface Probe extends SimNode {
  t: MemoryTransport;
  ownErrors: string[];
}

/** Nodes whose ping handler asserts something false. */
function brokenSim(seed: number, setOwnHandler: boolean): Simulation<Probe> {
  return new Simulation<Probe>({ seed }, (ctx) => {
    const node: Probe = { t: ctx.transport, ownErrors: [] };
    ctx.router.on(Kind.ClusterPing, () => assert(false, "ping handler invariant"));
    if (setOwnHandler) ctx.router.onHandlerError = (kind) => void node.ownErrors.push(kind);
    return node;
  });
}

async function linkAndPing(sim: Simulation<Probe>, a: Probe): Promise<void> {
  let linked = false;
  a.t.connect("n00001").then(() => void (linked = true));
  await sim.until(() => linked, 1000, 5);
}

describe("Simulation records message-handler exceptions as failures", () => {
  test("a throwing handler fails the run with the seed, and withSeed adds the replay command", async () => {
    let seed = -1;
    const err = await withSeed(FILE, 7, async (s) => {
      seed = s;
      const sim = brokenSim(s, false);
      const a = sim.spawn();
      sim.spawn();
      await linkAndPing(sim, a);
      a.t.send("n00001", { t: Kind.ClusterPing, seq: 1, target: "n00001", lv: 0, ms: "", g: [] });
      await sim.run(20);
    }).then(() => null, (e: Error) => e);
    expect(err).not.toBeNull();
    expect(err!.message).toContain(`Simulation with seed ${seed} failed: handler error in ClusterPing on n00001`);
    expect(err!.message).toContain("Assertion failed: ping handler invariant");
    expect(err!.message).toContain(`replay: SEED=${seed} bun test ${FILE}`);
  });

  test("the node's own onHandlerError still runs, and until() fails too", async () => {
    const sim = brokenSim(8, true);
    const a = sim.spawn();
    const b = sim.spawn();
    await linkAndPing(sim, a);
    a.t.send("n00001", { t: Kind.ClusterPing, seq: 1, target: "n00001", lv: 0, ms: "", g: [] });
    await expect(sim.until(() => false, 1000)).rejects.toThrow(/seed 8 failed: handler error in ClusterPing/);
    expect(b.ownErrors).toEqual(["ClusterPing"]);
    expect(sim.failures.list.length).toBe(1);
  });
});

interface Member extends SimMember {
  t: MemoryTransport;
}

async function formCluster(seed: number, n: number): Promise<Simulation<Member>> {
  const sim = new Simulation<Member>({ seed }, (ctx) => {
    const m = simMembership(ctx);
    return { id: ctx.id, m, events: [], stop: () => m.stop(), t: ctx.transport };
  });
  startMember(sim.spawn(), []);
  await sim.run(5);
  for (let i = 1; i < n; i++) startMember(sim.spawn(), [sim.liveIds()[0]]);
  await sim.until(() => viewDisagreement(sim.liveNodes(), sim.liveIds()) === null, 30_000, 50);
  await sim.run(1000);
  return sim;
}

describe("stale news is dropped by the guards, never reaching an assertion", () => {
  seeded("an older member list from the master leaves the installed version as it is", 21, async (seed) => {
    const sim = await formCluster(seed, 4);
    const [master, other] = sim.liveNodes();
    const version = other.m.memberListVersion;
    expect(version).toBeGreaterThan(1);
    const members = other.m.members().slice(0, 2);
    master.t.send(other.id, {
      t: Kind.ClusterMemberList,
      base: 0,
      list: { version: 1, master: master.id, epoch: other.m.masterEpoch, nextJoin: 3, members },
      removed: [],
      g: [],
    });
    await sim.run(500);
    expect(other.m.memberListVersion).toBe(version);
    expect(other.m.members().length).toBe(4);
    expect(sim.failures.list).toEqual([]);
  });

  seeded("gossip with a lower incarnation neither lowers it nor accuses the member", 22, async (seed) => {
    const sim = await formCluster(seed, 4);
    const [master, x, y, z] = sim.liveNodes();
    const ms = master.id;
    // y hears from x that z is alive at incarnation 5 (as after refutations)...
    x.t.send(y.id, { t: Kind.ClusterGossip, ms, g: [{ s: Status.alive, id: z.id, inc: 5 }] });
    await sim.run(50);
    expect(y.m.member(z.id)?.incarnation).toBe(5);
    // ...then stale accusations about z at lower incarnations.
    x.t.send(y.id, { t: Kind.ClusterGossip, ms, g: [{ s: Status.suspect, id: z.id, inc: 2, by: x.id }] });
    x.t.send(y.id, { t: Kind.ClusterGossip, ms, g: [{ s: Status.dead, id: z.id, inc: 3 }] });
    await sim.run(50);
    expect(y.m.memberState(z.id)).toMatchObject({ status: "alive", incarnation: 5 });
    expect(sim.failures.list).toEqual([]);
  });
});
