/**
 * No member stranded when its seed dies (issue 11), in the simulator with signaling
 * endpoints modelled (a link opened without a relay needs a live endpoint where both ends are
 * registered, each end signalling through the endpoint a node would pick; an attempt whose
 * signaling path dies hangs until its timeout, as a WebRTC offer sent into a dead relay or
 * server does; a frozen member's endpoint and relay hold what is signalled through them).
 * Members b, c and d join through a's endpoint; when a is killed 0–2 s after all four list
 * each other, d's only link is to a and its attempts to b and c are still being signalled
 * through a (killed outright: d's set-ups are slowed, a loaded machine; frozen first, as the
 * real-process test does: they wait at the frozen a). The survivors must agree on the new
 * view and be linked to each other (directly or relayed) within 3 s of virtual time, d
 * through the other members' own endpoints. */
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

/** How a run differs from the plain one (a killed outright, everyone joined through a's endpoint). */
interface RunOptions {
  /**
   * As the real-process test does: a is frozen (SIGSTOP) right after the four list each
   * other, and killed 0–2 s later. Its endpoint and its relay then hold what is signalled
   * through them, so d's link set-ups through a wait there (and are lost with a); set-ups
   * take an ordinary time otherwise. d's probes of a, its only link, go unanswered with
   * nobody to ask, so its local health score rises and its own suspicion of a stretches.
   */
  freezeFirst?: boolean;
  /** c joins through b's endpoint (as in the real-process test: only a and b are registered at a's). */
  cThroughB?: boolean;
  /** d's event loop lags 20–220 ms every 0.2–1 s (a loaded machine, a slower runtime). */
  dLags?: boolean;
  /**
   * The first set-up between d and b begun after the kill is lost silently (an answer gone
   * missing, ICE checks that never complete, as on real processes): it hangs until given up.
   */
  loseOnce?: boolean;
}

/** A simulation with signaling endpoints modelled, and its first member a started alone. */
async function seedAlone(seed: number): Promise<{ sim: Simulation<SimMember>; a: SimMember }> {
  const sim = clusterSimulation({
    seed,
    signaling: true,
    link: { delayMs: 1, jitterMs: 1 },
    logLevel: process.env.SIM_LOG as "debug" | undefined,
  });
  const a = sim.spawn();
  startMember(a, []);
  await sim.run(5);
  return { sim, a };
}

/** One run. @returns virtual ms from the kill until the survivors agree and are fully linked */
async function strandedRun(
  seed: number,
  o: RunOptions = {},
): Promise<{ ms: number; killAfterMs: number; paths: number; scenario: boolean }> {
  const { sim, a } = await seedAlone(seed);
  const [b, c] = [sim.spawn(), sim.spawn()];
  joinThrough(b, a);
  if (o.cThroughB) await sim.run(5);
  joinThrough(c, o.cThroughB ? b : a);
  await sim.until(() => disagreement([a, b, c]) === null, 30_000, 20, () => disagreement([a, b, c])!);
  if (o.freezeFirst) await sim.run(sim.rng.next() * 2_000);
  const d = sim.spawn();
  // Killed outright, a passes d's signaling on: d's links to b and c are slow to set up (a
  // loaded machine) so that they are still being set up at the kill.
  const slowMs = o.freezeFirst ? 200 + sim.rng.next() * 800 : 2_500 + sim.rng.next() * 1_500;
  for (const x of [b, c]) setConnectMs(sim, d.id, x.id, slowMs);
  joinThrough(d, a);
  await sim.until(() => viewDisagreement([a, b, c, d], [a.id, b.id, c.id, d.id]) === null, 30_000, 5);
  const killAfterMs = Math.round(sim.rng.next() * 2_000);
  if (o.freezeFirst) sim.stall(a.id, killAfterMs + 60_000);
  let lagging = !!o.dLags;
  if (lagging) {
    const rng = sim.rng.fork();
    const lag = () => {
      if (!lagging) return;
      sim.stall(d.id, 20 + rng.next() * 200);
      sim.clock.setTimer(200 + rng.next() * 800, lag);
    };
    sim.clock.setTimer(rng.next() * 500, lag);
  }
  await sim.run(killAfterMs);
  // The scenario: d's only link is to a, its links to b and c still being set up. (With a
  // frozen first, d sometimes got them set up just before: such a run is not the scenario.)
  const scenario = JSON.stringify(d.m.links()) === JSON.stringify([{ peer: a.id, kind: "direct" }]);
  if (!o.freezeFirst) expect(scenario).toBe(true);
  // Set-ups started from now on take an ordinary time (a WebRTC connection on loopback).
  if (!o.freezeFirst) { for (const x of [b, c]) setConnectMs(sim, d.id, x.id, 300); }
  if (o.loseOnce) sim.setLink(d.id, b.id, { lostConnects: 1 });
  sim.crash(a.id);
  const survivors = [b, c, d];
  const ms = await sim.until(() => disagreement(survivors) === null, 30_000, 10, () => disagreement(survivors)!);
  lagging = false;
  const paths = survivors.reduce((sum, x) => sum + x.signal!.paths.opened, 0);
  return { ms, killAfterMs, paths, scenario };
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
 * follow a new master, and their messages to d confirm d's suspicion. Without that d stayed
 * apart as on real processes (10.9 s on one seed of the earlier, slowed model).
 */
describe("stranded joiner, a frozen first (SIGSTOP) and then killed 0–2 s later", () => {
  for (let i = 0; i < RUNS; i++) {
    seeded(`seed ${1200 + i}: survivors agree and are fully linked within 3 s of the kill`, 1200 + i, async (seed) => {
      const r = await strandedRun(seed, { freezeFirst: true });
      results.push(`${r.ms} (frozen, kill after ${r.killAfterMs}${r.scenario ? "" : ", d linked before"})`);
      expect(r.ms).toBeLessThanOrEqual(TARGET_MS);
    }, 30_000);
  }
});

/**
 * As on real processes: c joins through b's endpoint, so a's endpoint lists only a, b and d,
 * and d's event loop lags now and then. While a is frozen, its endpoint still looks open to b
 * and d (their WebSockets to it stay up) and still lists them, so b answered d's signals
 * through it (they were lost), and an attempt d sent through it waited out its 10 s connect
 * timeout even after a died or d opened a path to b's own endpoint: two real runs in about
 * 20 took 10.9 s. Now an answer goes back the way its request came, the endpoint of a member
 * suspected here is no route, and an attempt whose signal left through a server that closed
 * or is suspected, or through another server than a member path that just opened, is made
 * again at once. Without the first and third, 7 of these 25 seeds took 9–12 s.
 */
const LAGGING_SEEDS = [
  1300,
  1301,
  1304,
  1308,
  1311,
  1312,
  1316,
  1317,
  1318,
  1319,
  1320,
  1321,
  1325,
  1326,
  1327,
  1328,
  1330,
  1331,
  1332,
  1333,
];
/** Later seeds that took 9–12 s without the signaling-route fix (as did 1301 and 1331). */
const REGRESSION_SEEDS = [1342, 1346, 1361, 1371, 1376];
describe("stranded joiner, a frozen first, c joined through b, d's event loop lagging", () => {
  for (const seed of [...LAGGING_SEEDS, ...REGRESSION_SEEDS]) {
    seeded(`seed ${seed}: survivors agree and are fully linked within 3 s of the kill`, seed, async (seed) => {
      const r = await strandedRun(seed, { freezeFirst: true, cThroughB: true, dLags: true });
      // d's only link was to a at the kill (seeds where d linked to b or c first are left out).
      expect(r.scenario).toBe(true);
      results.push(
        `${r.ms} (frozen, c through b, d lagging, kill after ${r.killAfterMs}${r.scenario ? "" : ", d linked before"})`,
      );
      expect(r.ms).toBeLessThanOrEqual(TARGET_MS);
    }, 30_000);
  }
});

/**
 * A set-up that goes silent (a lost answer; on real processes, ICE checks that never
 * completed under load, 2 runs in about 90) is given up once it has made no progress for
 * `linkStallMs` and made again, through another member when one reaches the peer. Without
 * that, d waited out its 10 s connect timeout for b (9.5 and 12.3 s on those real runs). Of
 * seeds 1400–1499, 22 took 10–13 s without it; with it 98 were within 3 s and two took 3.07
 * and 3.16 s (d's own verdict on a came late there, its links were up). These are the first
 * ten of the 22.
 */
const LOST_SETUP_SEEDS = [1409, 1431, 1433, 1439, 1440, 1441, 1442, 1443, 1444, 1451];
describe("stranded joiner, a frozen first, c joined through b, and d's first set-up to b after the kill lost", () => {
  for (const seed of LOST_SETUP_SEEDS) {
    seeded(`seed ${seed}: survivors agree and are fully linked within 3 s of the kill`, seed, async (seed) => {
      const r = await strandedRun(seed, { freezeFirst: true, cThroughB: true, loseOnce: true });
      results.push(`${r.ms} (frozen, c through b, a set-up lost, kill after ${r.killAfterMs})`);
      expect(r.ms).toBeLessThanOrEqual(TARGET_MS);
    }, 30_000);
  }
});

/**
 * A member killed outright closes its signaling endpoint at once while its links just go
 * silent: the members connected to that endpoint (here all three joined through it) probe
 * it at the next signaling-path tick (250 ms) instead of at their turn in the probe round
 * (up to a probe interval per member later), so its pings go unanswered, and it is declared
 * dead, that much sooner. Without that, 5 of these 20 seeds took 0.88–1.06 s to be suspected
 * everywhere (dead after 2.49–2.66 s); with it every one takes 0.41–0.63 s (dead after ≤ 2.24 s).
 */
describe("the seed killed outright: members connected to its endpoint probe it at once", () => {
  for (let i = 0; i < 20; i++) {
    seeded(`seed ${1500 + i}: every survivor suspects it within 700 ms`, 1500 + i, async (seed) => {
      const { sim, a } = await seedAlone(seed);
      const others = [sim.spawn(), sim.spawn(), sim.spawn()];
      for (const x of others) joinThrough(x, a);
      const all = [a, ...others];
      await sim.until(() => disagreement(all) === null, 30_000, 20, () => disagreement(all)!);
      // Past the first signaling-path tick (250 ms after the start), then 0-2 s.
      await sim.run(250 + sim.rng.next() * 2_000);
      sim.crash(a.id);
      const suspected = () => others.every((x) => x.m.isSuspect(a.id) || !x.m.member(a.id));
      const ms = await sim.until(suspected, 10_000, 10);
      const dead = await sim.until(() => disagreement(others) === null, 10_000, 10) + ms;
      results.push(`suspected ${ms}, dead ${dead} (seed killed outright)`);
      expect(ms).toBeLessThanOrEqual(700);
    }, 30_000);
  }
});
