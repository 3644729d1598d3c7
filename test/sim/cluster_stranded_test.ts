/**
 * No member stranded when its seed dies (issue 11), in the simulator with signaling
 * endpoints modelled (a link opened without a relay needs a live endpoint where both ends are
 * registered; an attempt whose signaling path dies hangs until its timeout, as a WebRTC
 * offer sent into a dead relay or server does). Members b, c and d join through a's
 * endpoint; d's links to b and c are slow to set up (a loaded machine), so when a is killed
 * 0–2 s after all four list each other, d's only link is to a and its attempts to b and c
 * are still being signalled through a. The survivors must agree on the new view and be
 * linked to each other (directly or relayed) within 3 s of virtual time, d through the
 * other members' own endpoints.
 */
import { afterAll, describe, expect } from "bun:test";
import { clusterSimulation, type SimMember, startMember, viewDisagreement } from "../../src/sim/cluster_sim.ts";
import type { Simulation } from "../../src/sim/simulation.ts";
import { seededTest } from "../support/seeded.ts";

const seeded = seededTest("test/sim/cluster_stranded_test.ts");
const RUNS = 20;
/** The target: survivors agree and are fully linked this soon after the kill. */
const TARGET_MS = 3_000;

/**
 * Starts `n`, registered at the signaling endpoint of `seed` (its join URL), joining through
 * `seed` itself (a real node picks any member registered there; here the seed, whose death
 * then takes the joiner's only link).
 */
function joinThrough(n: SimMember, seed: SimMember): void {
  expect(n.signal!.joinThrough(seed.id)).toContain(seed.id);
  startMember(n, [seed.id]);
}

function disagreement(nodes: SimMember[]): string | null {
  const ids = nodes.map((n) => n.id);
  const view = viewDisagreement(nodes, ids);
  if (view) return view;
  const unlinked = nodes.find((n) => n.m.links().length !== nodes.length - 1);
  return unlinked ? `${unlinked.id} reaches ${JSON.stringify(unlinked.m.links())}` : null;
}

const setConnectMs = (sim: Simulation<SimMember>, x: string, y: string, connectMs: number) => {
  sim.setLink(x, y, { connectMs });
  sim.setLink(y, x, { connectMs });
};

/** One run. @returns virtual ms from the kill until the survivors agree and are fully linked */
async function strandedRun(
  seed: number,
  freezeFirst = false,
): Promise<{ ms: number; killAfterMs: number; paths: number }> {
  const sim = clusterSimulation({
    seed,
    signaling: true,
    link: { delayMs: 1, jitterMs: 1 },
    logLevel: process.env.SIM_LOG as "debug" | undefined,
  });
  const a = sim.spawn();
  startMember(a, []);
  await sim.run(5);
  const [b, c] = [sim.spawn(), sim.spawn()];
  joinThrough(b, a);
  joinThrough(c, a);
  await sim.until(() => disagreement([a, b, c]) === null, 30_000, 20, () => disagreement([a, b, c])!);
  const d = sim.spawn();
  const slowMs = 2_500 + sim.rng.next() * 1_500;
  for (const x of [b, c]) setConnectMs(sim, d.id, x.id, slowMs);
  joinThrough(d, a);
  await sim.until(() => viewDisagreement([a, b, c, d], [a.id, b.id, c.id, d.id]) === null, 30_000, 5);
  const killAfterMs = Math.round(sim.rng.next() * 2_000);
  // As the real-process test does (SIGSTOP, then SIGKILL): d's probes of a, its only link,
  // go unanswered with nobody to ask, so its local health score rises and its own suspicion
  // of a is stretched; it must still follow the others' verdict once it reaches them.
  if (freezeFirst) sim.stall(a.id, killAfterMs + 60_000);
  await sim.run(killAfterMs);
  // The scenario: d's only link is to a, its links to b and c still being set up.
  expect(d.m.links()).toEqual([{ peer: a.id, kind: "direct" }]);
  // Set-ups started from now on take an ordinary time (a WebRTC connection on loopback).
  for (const x of [b, c]) setConnectMs(sim, d.id, x.id, 300);
  sim.crash(a.id);
  const survivors = [b, c, d];
  const ms = await sim.until(() => disagreement(survivors) === null, 30_000, 10, () => disagreement(survivors)!);
  return { ms, killAfterMs, paths: survivors.reduce((sum, x) => sum + x.signal!.paths.opened, 0) };
}

const results: string[] = [];
afterAll(() => console.log(`stranded joiner (sim): agreed and fully linked after ${results.join(", ")} virtual ms`));

describe("stranded joiner (simulated signaling endpoints): a killed 0–2 s after the last join while d links only to a", () => {
  for (let i = 0; i < RUNS; i++) {
    seeded(`seed ${1100 + i}: survivors agree and are fully linked within 3 s`, 1100 + i, async (seed) => {
      const r = await strandedRun(seed);
      results.push(`${r.ms} (kill after ${r.killAfterMs})`);
      // d and the others met through their own endpoints (a's died with it).
      expect(r.paths).toBeGreaterThan(0);
      expect(r.ms).toBeLessThanOrEqual(TARGET_MS);
    }, 30_000);
  }
});

/**
 * d's probes of a, its only link, go unanswered with nobody to ask, so its local-health score
 * rises and its own suspicion of a stretches to ~12 s; the others declare a dead in ~2 s and
 * follow a new master, and their messages to d confirm d's suspicion. Without that (seed
 * 1203: 10.9 s) d stayed apart as on real processes. Over 60 seeds, 58 end within 3 s; two
 * take 3.3–3.7 s, where a link set-up that began just before the kill keeps the slowed
 * set-up time of the scenario.
 */
describe("stranded joiner, a frozen first (SIGSTOP) and then killed 0–2 s later", () => {
  for (let i = 0; i < Number(process.env.FROZEN_RUNS ?? RUNS / 2); i++) {
    seeded(`seed ${1200 + i}: survivors agree and are fully linked within 3 s of the kill`, 1200 + i, async (seed) => {
      const r = await strandedRun(seed, true);
      results.push(`${r.ms} (frozen, kill after ${r.killAfterMs})`);
      expect(r.ms).toBeLessThanOrEqual(TARGET_MS);
    }, 30_000);
  }
});
