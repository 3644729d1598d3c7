/**
 * A link wedged below the transport: both ends hold it open and nothing crosses it either
 * way, while both members answer everyone else (seen over werift under packet loss, for
 * minutes: bench/RESULTS.md, "Direct backup acks: the stalls of the reverted default").
 * Failure detection cannot see it (the others vouch for both members), so without
 * `linkSilentResetMs` every call between the two would wait for good. With it, the end whose
 * probes go unanswered over the link closes it and makes it again.
 */
import { describe, expect, test } from "bun:test";
import { withSeed } from "../../src/sim/seed.ts";
import type { Simulation } from "../../src/sim/simulation.ts";
import type { SimMember } from "../../src/sim/cluster_sim.ts";
import { formCluster } from "../support/form_cluster.ts";

const FILE = "test/sim/cluster_wedged_link_test.ts";
const MEMBERS = 4;
/** The reset comes after `linkSilentResetMs` (5 s) plus a probe round or two. */
const RECOVERY_MS = 9_000;

/** Wedges the link between the first two members; resolves with them and the wedge's time. */
function wedge(sim: Simulation<SimMember>) {
  const [a, b] = sim.liveNodes();
  sim.net.wedge(a.id, b.id);
  expect(sim.net.node(a.id)!.isWedged(b.id)).toBe(true);
  return { a, b, at: sim.clock.now() };
}

const healthy = (sim: Simulation<SimMember>, a: SimMember, b: SimMember) => {
  const ta = sim.net.node(a.id)!, tb = sim.net.node(b.id)!;
  return ta.isLinked(b.id) && tb.isLinked(a.id) && !ta.isWedged(b.id) && !tb.isWedged(a.id);
};

const removals = (sim: Simulation<SimMember>) =>
  sim.liveNodes().flatMap((x) => x.events.filter((e) => e.type === "memberRemoved"));

describe("a wedged link (virtual time)", () => {
  test("is closed and made again within 9 s, with no member removed", () =>
    withSeed(FILE, 1, async (seed) => {
      for (let s = seed; s < seed + 8; s++) {
        const sim = await formCluster(s, MEMBERS);
        for (const x of sim.liveNodes()) x.events.length = 0;
        const { a, b, at } = wedge(sim);
        await sim.until(() => healthy(sim, a, b), RECOVERY_MS, 50, () => `seed ${s}`);
        expect({ seed: s, healthy: healthy(sim, a, b) }).toEqual({ seed: s, healthy: true });
        const resets = a.m.stats.silentLinkResets + b.m.stats.silentLinkResets;
        expect(resets).toBeGreaterThanOrEqual(1);
        expect(sim.clock.now() - at).toBeGreaterThanOrEqual(5_000);
        await sim.run(5_000);
        expect(healthy(sim, a, b)).toBe(true);
        expect(removals(sim)).toEqual([]);
        for (const x of sim.liveNodes()) expect(x.m.members().length).toBe(MEMBERS);
      }
    }), 120_000);

  test(
    "a link wedged again as soon as it is made again gets linkSilentResetMs of its own before the next reset",
    () =>
      withSeed(FILE, 10, async (seed) => {
        for (let s = seed; s < seed + 4; s++) {
          const sim = await formCluster(s, MEMBERS);
          const { a, b } = wedge(sim);
          const resets = () => a.m.stats.silentLinkResets + b.m.stats.silentLinkResets;
          await sim.until(() => resets() > 0, RECOVERY_MS, 1, () => `seed ${s}: first reset`);
          const first = sim.clock.now();
          // The new link is wedged the moment it is up, before anything crossed it.
          await sim.until(() => healthy(sim, a, b), RECOVERY_MS, 1, () => `seed ${s}: made again`);
          sim.net.wedge(a.id, b.id);
          const before = resets();
          await sim.until(() => resets() > before, RECOVERY_MS, 1, () => `seed ${s}: second reset`);
          expect(sim.clock.now() - first).toBeGreaterThanOrEqual(5_000);
          await sim.until(() => healthy(sim, a, b), RECOVERY_MS, 50, () => `seed ${s}: made again twice`);
          expect(removals(sim)).toEqual([]);
        }
      }),
    120_000,
  );

  test(
    "without the reset it stays wedged while failure detection sees nothing (the fault this covers)",
    () =>
      withSeed(FILE, 20, async (seed) => {
        const sim = await formCluster(seed, MEMBERS, { config: { linkSilentResetMs: 1e9 } });
        for (const x of sim.liveNodes()) x.events.length = 0;
        const { a, b } = wedge(sim);
        await sim.run(30_000);
        expect(healthy(sim, a, b)).toBe(false);
        expect(sim.net.node(a.id)!.isWedged(b.id)).toBe(true);
        expect(removals(sim)).toEqual([]);
        expect(a.m.stats.silentLinkResets + b.m.stats.silentLinkResets).toBe(0);
      }),
    120_000,
  );
});
