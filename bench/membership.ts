/**
 * Membership convergence in the simulator: N members join in a storm (each through random
 * seeds among those already started), then one member is killed. Prints, for 10/100/1,000
 * members, the virtual time and probe rounds until every member holds one view with one
 * master, the time until the crash is known everywhere, and the wall-clock cost.
 *
 *   bun run bench/membership.ts [sizes...]      e.g. bun run bench/membership.ts 10 100
 */
import { DefaultTiming } from "../src/cluster/config.ts";
import { clusterSimulation, mastersOf, startMember, stillListing, viewDisagreement } from "../src/sim/cluster_sim.ts";
import { seedFromEnv } from "../src/sim/seed.ts";

export interface ConvergeResult {
  n: number;
  joinMs: number;
  joinRounds: number;
  /** From the start of the last joiner to one view. */
  afterLastJoinMs: number;
  linksMs: number;
  crashKnownMs: number;
  crashRounds: number;
  wallMs: number;
}

/** Runs one join storm of `n` members (spread over `stormMs`) and one crash. */
export async function measure(n: number, seed: number, stormMs = 1000): Promise<ConvergeResult> {
  const wall0 = performance.now();
  const sim = clusterSimulation({ seed, encode: false });
  const first = sim.spawn();
  startMember(first, []);
  await sim.run(5);
  const t0 = sim.clock.now();
  let lastAt = 0;
  for (let i = 1; i < n; i++) {
    const at = sim.rng.next() * stormMs;
    lastAt = Math.max(lastAt, at);
    sim.clock.setTimer(at, () => {
      const started = sim.liveIds().filter((id) => sim.node(id)!.m.joined);
      const node = sim.spawn();
      const seeds = Array.from({ length: 3 }, () => sim.rng.pick(started));
      startMember(node, seeds);
    });
  }
  await sim.run(stormMs);
  await sim.until(() => sim.liveIds().length === n && viewDisagreement(sim.liveNodes(), sim.liveIds()) === null, 120_000, 100, () =>
    viewDisagreement(sim.liveNodes(), sim.liveIds()) ?? "");
  const joinMs = sim.clock.now() - t0;
  const afterLastJoinMs = sim.clock.now() - (t0 + lastAt);
  const full = n - 1;
  await sim.until(() => sim.liveNodes().every((x) => x.m.links().length === full), 120_000, 100);
  const linksMs = sim.clock.now() - t0;
  await sim.run(2000);
  const victim = sim.liveIds()[Math.floor(n / 2)];
  sim.crash(victim);
  const crashKnownMs = await sim.until(() => stillListing(sim.liveNodes(), victim).length === 0, 60_000, 10);
  await sim.until(() => viewDisagreement(sim.liveNodes(), sim.liveIds()) === null && mastersOf(sim.liveNodes()).length === 1, 60_000, 50);
  return {
    n,
    joinMs,
    joinRounds: joinMs / DefaultTiming.probeIntervalMs,
    afterLastJoinMs,
    linksMs,
    crashKnownMs,
    crashRounds: crashKnownMs / DefaultTiming.probeIntervalMs,
    wallMs: performance.now() - wall0,
  };
}

/**
 * Five members (loopback-like 1 ms links); the master is killed; returns the virtual time
 * until every survivor reports the oldest survivor as master.
 */
export async function masterKill(seed: number): Promise<number> {
  const sim = clusterSimulation({ seed, encode: true });
  startMember(sim.spawn(), []);
  await sim.run(5);
  for (let i = 1; i < 5; i++) startMember(sim.spawn(), [sim.liveIds()[0]]);
  await sim.until(() => viewDisagreement(sim.liveNodes(), sim.liveIds()) === null, 30_000, 50);
  await sim.run(3000 + sim.rng.next() * 1000);
  const order = sim.liveNodes()[0].m.members().map((m) => m.id);
  sim.crash(order[0]);
  return await sim.until(() => sim.liveNodes().every((x) => x.m.master() === order[1]), 30_000, 10);
}

if (import.meta.main) {
  const args = (globalThis as { process?: { argv: string[] } }).process?.argv.slice(2) ?? [];
  const sizes = args.length ? args.map(Number) : [10, 100, 1000];
  const seed = seedFromEnv(42);
  console.log(`membership convergence (virtual time, seed ${seed}; a round is one probe interval of ${DefaultTiming.probeIntervalMs} ms)`);
  const kills: number[] = [];
  for (let i = 0; i < 40; i++) kills.push(await masterKill(seed + i));
  kills.sort((a, b) => a - b);
  const q = (p: number) => (kills[Math.min(kills.length - 1, Math.floor(p * kills.length))] / 1000).toFixed(2);
  console.log(`5 members, master killed (40 runs): every survivor reports the new master after p50 ${q(0.5)} s, p90 ${q(0.9)} s, max ${q(1)} s`);
  console.log("Join storm: all members start within 1 s, each through 3 random members already in; view checked every 100 ms.");
  console.log("members | one view (from first join) | after last join | full mesh | crash known by all | wall clock");
  for (const n of sizes) {
    const r = await measure(n, seed);
    console.log(
      `${String(n).padStart(7)} | ${(r.joinMs / 1000).toFixed(2)} s (${r.joinRounds.toFixed(1)} rounds) | ${r.afterLastJoinMs.toFixed(0)} ms | ${(r.linksMs / 1000).toFixed(2)} s | ` +
        `${(r.crashKnownMs / 1000).toFixed(2)} s (${r.crashRounds.toFixed(1)} rounds) | ${(r.wallMs / 1000).toFixed(1)} s`,
    );
  }
}
