import { describe, expect, test } from "bun:test";
import { clusterSimulation, type SimMember, startMember, viewDisagreement } from "../../src/sim/cluster_sim.ts";
import type { Simulation } from "../../src/sim/simulation.ts";
import { withSeed } from "../../src/sim/seed.ts";
import { Status } from "../../src/cluster/messages.ts";
import { Kind } from "../../src/wire/kinds.ts";
import { formCluster as formClusterIn } from "../support/form_cluster.ts";

const FILE = "test/sim/cluster_links_test.ts";

/** A linked cluster whose members have forgotten the events of forming it. */
async function formCluster(seed: number, n: number): Promise<Simulation<SimMember>> {
  const sim = await formClusterIn(seed, n);
  for (const x of sim.liveNodes()) x.events.length = 0;
  return sim;
}

/**
 * Failure detection as README states it (~2–4 s): the time by which a member has suspected
 * a crashed peer.
 */
const DETECTION_MS = 4_000;

/**
 * `first` alone, then `others` (members started 3 s apart), then two members `b` and `c`
 * that cannot link to each other (a symmetric NAT without TURN, say), joining through
 * `first`; resolves once each routes the other through a relay.
 */
async function relayedPair(seed: number, others: number) {
  const sim = clusterSimulation({ seed, encode: true });
  const first = sim.spawn();
  startMember(first, []);
  for (let i = 0; i < others; i++) {
    await sim.run(3_000);
    startMember(sim.spawn(), [first.id]);
  }
  await sim.run(3_000);
  const [b, c] = [sim.spawn(), sim.spawn()];
  sim.blockOneWay(b.id, c.id);
  sim.blockOneWay(c.id, b.id);
  startMember(b, [first.id]);
  startMember(c, [first.id]);
  const n = others + 3;
  const via = (x: SimMember, peer: SimMember) =>
    x.m.links().find((l) => l.peer === peer.id && l.kind === "relayed")?.via;
  await sim.until(
    () => b.m.members().length === n && c.m.members().length === n && !!via(b, c) && !!via(c, b),
    120_000,
  );
  await sim.run(3_000);
  return { sim, b, c, via };
}

/**
 * Runs `check` for four seeds from `first`, each right after the relay of a {@link relayedPair}
 * (with `others` more members) crashed.
 */
function afterRelayCrash(
  first: number,
  others: number,
  check: (
    k: Awaited<ReturnType<typeof relayedPair>> & { seed: number; relay: string; killedAt: number },
  ) => Promise<void>,
): Promise<void> {
  return withSeed(FILE, first, async (base) => {
    for (let seed = base; seed < base + 4; seed++) {
      const pair = await relayedPair(seed, others);
      const relay = pair.via(pair.b, pair.c)!;
      expect({ seed, relay: pair.via(pair.c, pair.b) }).toEqual({ seed, relay });
      for (const x of pair.sim.liveNodes()) x.events.length = 0;
      pair.sim.crash(relay);
      await check({ ...pair, seed, relay, killedAt: pair.sim.clock.now() });
    }
  });
}

/**
 * Runs `check` for `count` seeds from `first`, each right after member d started joining a
 * linked cluster of three (through a) with its next `lost` link set-ups to b lost silently
 * (an answer gone missing, ICE checks that never complete): the joiner must give such a
 * set-up up once it made no progress for `linkStallMs` and make it again (relayed by a
 * member that reaches the peer) instead of waiting out the 10 s connect timeout.
 */
function joinWithLostSetUps(
  first: number,
  count: number,
  lost: number,
  check: (k: { seed: number; sim: Simulation<SimMember>; b: SimMember; d: SimMember; start: number }) => Promise<void>,
): Promise<void> {
  return withSeed(FILE, first, async (base) => {
    for (let seed = base; seed < base + count; seed++) {
      const sim = await formCluster(seed, 3);
      const [a, b] = sim.liveNodes();
      const d = sim.spawn();
      sim.setLink(d.id, b.id, { lostConnects: lost });
      const start = sim.clock.now();
      startMember(d, [a.id]);
      await check({ seed, sim, b, d, start });
    }
  });
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

  test(
    "killing the relay of such a pair: both ends stop reporting the relayed path within detection time, then agree",
    () =>
      afterRelayCrash(44, 0, async ({ seed, sim, b, c, killedAt }) => {
        // Its link stays open (no linkDown on a crash here, as in the NAT lab): only the
        // suspicion of the relay says the route leads nowhere.
        const noPath = (x: SimMember, peer: SimMember) => !x.m.links().some((l) => l.peer === peer.id);
        await sim.until(() => noPath(b, c) && noPath(c, b), DETECTION_MS, 50, () => `seed ${seed}`);
        // The pair cannot link, and nobody else reaches both: each end is left alone. Lifeguard
        // keeps these verdicts slow (nobody can confirm them; see the lone-accuser tests).
        const alone = (x: SimMember) => x.m.members().length === 1 && x.m.links().length === 0;
        await sim.until(() => alone(b) && alone(c), 40_000, 100, () => `seed ${seed}`);
        expect({ seed, b: b.m.memberState(c.id), c: c.m.memberState(b.id) }).toEqual({
          seed,
          b: undefined,
          c: undefined,
        });
        expect(sim.clock.now() - killedAt).toBeGreaterThan(DETECTION_MS);
      }),
    60_000,
  );

  test(
    "killing the relay of such a pair while another member reaches both ends re-routes it within detection time",
    () =>
      afterRelayCrash(45, 1, async ({ seed, sim, b, c, via, relay }) => {
        const other = sim.liveIds().find((id) => id !== b.id && id !== c.id)!;
        await sim.until(() => via(b, c) === other && via(c, b) === other, DETECTION_MS, 50, () => `seed ${seed}`);
        await sim.run(20_000);
        // The relay is removed everywhere, and nobody else anywhere.
        const removed = sim.liveNodes().flatMap((x) =>
          x.events.flatMap((e) => e.type === "memberRemoved" ? [`${x.id}:${e.member.id}`] : [])
        );
        const expected = sim.liveIds().map((id) => `${id}:${relay}`);
        expect({ seed, removed: removed.sort() }).toEqual({ seed, removed: expected.sort() });
        expect({ seed, views: viewDisagreement(sim.liveNodes(), sim.liveIds()) }).toEqual({ seed, views: null });
        expect(via(b, c)).toBe(other);
      }),
    60_000,
  );

  test(
    "a link set-up lost silently is made again: the joiner links to every member within 3 s",
    () =>
      joinWithLostSetUps(46, 4, 1, async ({ seed, sim, d }) => {
        const linked = () => d.m.links().filter((l) => l.kind === "direct").length === 3;
        const ms = await sim.until(linked, 30_000, 10, () => `seed ${seed}: ${JSON.stringify(d.m.links())}`);
        expect({ seed, lost: sim.net.connectsLost }).toEqual({ seed, lost: 1 });
        expect({ seed, ms: ms <= 3_000 }).toEqual({ seed, ms: true });
        expect({ seed, views: viewDisagreement(sim.liveNodes(), sim.liveIds()) }).toEqual({ seed, views: null });
      }),
    60_000,
  );

  /**
   * Every set-up between the joiner and one member is lost: the pair is relayed through
   * another member once two set-ups went silent, and restarts stay bounded (at most
   * `linkStallRetries` in a row before an attempt runs to its 10 s timeout, then the back-off):
   * each end starts at most 3 set-ups per 10 s.
   */
  test(
    "set-ups that are always lost: the pair is relayed within 5 s, and restarts stay bounded",
    () =>
      joinWithLostSetUps(50, 3, 1_000, async ({ seed, sim, b, d, start }) => {
        const relayed = () => d.m.links().some((l) => l.peer === b.id && l.kind === "relayed");
        await sim.until(relayed, 5_000, 10, () => `seed ${seed}: ${JSON.stringify(d.m.links())}`);
        // The first attempt and two restarts (after 1.5 s and 3 s of silence).
        expect({ seed, lost: sim.net.connectsLost }).toEqual({ seed, lost: 3 });
        await sim.run(start + 60_000 - sim.clock.now());
        expect({ seed, bounded: sim.net.connectsLost <= 2 * 3 * 6 }).toEqual({ seed, bounded: true });
        expect({ seed, relayed: relayed() }).toEqual({ seed, relayed: true });
      }),
    120_000,
  );

  /**
   * A false dead verdict tears down the link between two live members at one end only (the
   * other never sees the close: a half-open link). The member refutes and is readmitted; the
   * newer end still believes its link up and opens nothing, so the older end, which closed
   * it, opens it again at once instead of waiting `linkFallbackMs` (12 s) as for a link that
   * never existed. On real processes that wait took one run in about 100 to 12 s.
   */
  test(
    "a link closed at one end only by a false dead verdict is opened again by the older end within 3 s",
    () =>
      withSeed(FILE, 60, async (base) => {
        const times: number[] = [];
        for (let seed = base; seed < base + 4; seed++) {
          const sim = await formCluster(seed, 4);
          const nodes = sim.liveNodes();
          // Oldest first; the master (oldest) is left out so that x, the older of the pair, is not it.
          const order = nodes[0].m.members().map((m) => m.id);
          const [x, y, z] = order.slice(1).map((id) => sim.node(id)!);
          sim.setLink(x.id, y.id, { lostCloses: 1 });
          // y's messages to x are lost for a moment (a notice about a member heard from lately
          // is taken as a suspicion only), then z's false dead notice about y reaches x: x
          // tears its link to y down, and y never sees it.
          sim.setLink(y.id, x.id, { blocked: true });
          await sim.run(1_200);
          sim.setLink(y.id, x.id, { blocked: false });
          const inc = x.m.memberState(y.id)!.incarnation;
          sim.net.node(x.id)!.receive(z.id, {
            t: Kind.ClusterGossip,
            ms: order[0],
            g: [{ s: Status.dead, id: y.id, inc }],
          });
          expect({ seed, xy: sim.net.node(x.id)!.isLinked(y.id), yx: sim.net.node(y.id)!.isLinked(x.id) })
            .toEqual({ seed, xy: false, yx: true });
          const meshed = () =>
            viewDisagreement(sim.liveNodes(), sim.liveIds()) === null &&
            sim.liveNodes().every((n) => n.m.links().filter((l) => l.kind === "direct").length === 3) &&
            sim.net.node(y.id)!.endpointOf(x.id)?.endpointOf(y.id) !== undefined;
          const ms = await sim.until(meshed, 30_000, 10, () => `seed ${seed}: ${JSON.stringify(x.m.links())}`);
          times.push(ms);
          expect({ seed, ms: ms <= 3_000 ? "within 3 s" : ms }).toEqual({ seed, ms: "within 3 s" });
          expect({ seed, deadVerdicts: x.m.stats.deadVerdicts }).toEqual({ seed, deadVerdicts: 1 });
        }
        console.log(`half-open link after a false verdict: fully linked again after ${times.join(", ")} virtual ms`);
      }),
    120_000,
  );
});
