/**
 * Membership convergence in the simulator: N members join in a storm (each through random
 * seeds among those already started), then one member is killed. Prints, for 10/100/1,000
 * members, the virtual time and probe rounds until every member holds one view with one
 * master, the time until the crash is known everywhere, and the wall-clock cost. Also
 * prints how long a stall of one member's event loop may last before it is taken for dead,
 * and how fast a killed master is found while every member keeps stalling (CPU load).
 *
 *   bun run bench/membership.ts [sizes...]      e.g. bun run bench/membership.ts 10 100
 */
import { DefaultTiming } from "../src/cluster/config.ts";
import {
  clusterSimulation,
  formLinkedCluster,
  mastersOf,
  startMember,
  stillListing,
  viewDisagreement,
} from "../src/sim/cluster_sim.ts";
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
  await sim.until(
    () => sim.liveIds().length === n && viewDisagreement(sim.liveNodes(), sim.liveIds()) === null,
    120_000,
    100,
    () => viewDisagreement(sim.liveNodes(), sim.liveIds()) ?? "",
  );
  const joinMs = sim.clock.now() - t0;
  const afterLastJoinMs = sim.clock.now() - (t0 + lastAt);
  const full = n - 1;
  await sim.until(() => sim.liveNodes().every((x) => x.m.links().length === full), 120_000, 100);
  const linksMs = sim.clock.now() - t0;
  await sim.run(2000);
  const victim = sim.liveIds()[Math.floor(n / 2)];
  sim.crash(victim);
  const crashKnownMs = await sim.until(() => stillListing(sim.liveNodes(), victim).length === 0, 60_000, 10);
  await sim.until(
    () => viewDisagreement(sim.liveNodes(), sim.liveIds()) === null && mastersOf(sim.liveNodes()).length === 1,
    60_000,
    50,
  );
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

/**
 * One member of `n` (the master or the youngest) stalls for `stallMs`; returns whether any
 * live member was removed or the cluster did not end in one view.
 */
export async function stallHurts(seed: number, n: number, who: "master" | "member", stallMs: number): Promise<boolean> {
  const sim = await formLinkedCluster(seed, n);
  const ids = sim.liveNodes()[0].m.members().map((m) => m.id);
  for (const x of sim.liveNodes()) x.events.length = 0;
  sim.stall(who === "master" ? ids[0] : ids[n - 1], stallMs);
  await sim.run(stallMs + 10_000);
  const removed = sim.liveNodes().some((x) => x.events.some((e) => e.type === "memberRemoved"));
  return removed || mastersOf(sim.liveNodes()).length !== 1 || viewDisagreement(sim.liveNodes(), ids) !== null;
}

/**
 * Sustained CPU load: every member of `n` stalls for 150–`maxStallMs` ms every 0.5–1.5 s;
 * the master is killed. Returns the virtual time until every survivor reports the next
 * master (Infinity if not within 60 s) and how many removals of live members happened.
 */
export async function killUnderLoad(
  seed: number,
  n: number,
  maxStallMs: number,
): Promise<{ ms: number; falseRemovals: number }> {
  const sim = await formLinkedCluster(seed, n);
  const rng = sim.rng.fork();
  let loaded = true;
  for (const id of sim.liveIds()) {
    const tick = () => {
      if (!loaded || sim.isCrashed(id)) return;
      sim.stall(id, 150 + rng.next() * (maxStallMs - 150));
      sim.clock.setTimer(500 + rng.next() * 1000, tick);
    };
    sim.clock.setTimer(rng.next() * 1000, tick);
  }
  await sim.run(5000);
  const order = sim.liveNodes()[0].m.members().map((m) => m.id);
  for (const x of sim.liveNodes()) x.events.length = 0;
  sim.crash(order[0]);
  const ms = await sim.until(
    () => sim.liveNodes().every((x) => x.m.master() === order[1] && x.m.member(order[0]) === undefined),
    60_000,
    10,
  )
    .catch(() => Infinity);
  await sim.run(15_000);
  loaded = false;
  const falseRemovals = sim.liveNodes().reduce(
    (s, x) => s + x.events.filter((e) => e.type === "memberRemoved" && !sim.isCrashed(e.member.id)).length,
    0,
  );
  return { ms, falseRemovals };
}

async function stallReport(seed: number): Promise<void> {
  const runs = 10;
  console.log(
    `One member's event loop stalls (timers and input held, then overdue timers first); runs of ${runs} seeds with a removal or split:`,
  );
  const stalls = [1000, 1500, 1800, 2000, 2200, 2500];
  console.log(`members, who stalls | ${stalls.map((d) => `${d} ms`).join(" | ")}`);
  for (const [n, who] of [[3, "master"], [3, "member"], [5, "master"], [5, "member"]] as const) {
    const cells: string[] = [];
    for (const d of stalls) {
      let bad = 0;
      for (let i = 0; i < runs; i++) if (await stallHurts(seed + i, n, who, d)) bad++;
      cells.push(`${bad}/${runs}`.padStart(String(d).length + 3));
    }
    console.log(`${`${n}, ${who}`.padStart(19)} | ${cells.join(" | ")}`);
  }
  console.log(
    "Sustained load: every member stalls 150–max ms every 0.5–1.5 s, then the master is killed (20 seeds, 3 members):",
  );
  for (const maxStall of [400, 700, 1000]) {
    const times: number[] = [];
    let removals = 0;
    for (let i = 0; i < 20; i++) {
      const r = await killUnderLoad(seed + i, 3, maxStall);
      times.push(r.ms);
      removals += r.falseRemovals;
    }
    times.sort((a, b) => a - b);
    const f = (ms: number) => Number.isFinite(ms) ? `${(ms / 1000).toFixed(2)} s` : "not within 60 s";
    console.log(
      `  stalls up to ${maxStall} ms: every survivor reports the new master after p50 ${f(times[10])}, max ${
        f(times[19])
      }; removals of live members: ${removals}`,
    );
  }
}

if (import.meta.main) {
  const args = (globalThis as { process?: { argv: string[] } }).process?.argv.slice(2) ?? [];
  const sizes = args.length ? args.map(Number) : [10, 100, 1000];
  const seed = seedFromEnv(42);
  console.log(
    `membership convergence (virtual time, seed ${seed}; a round is one probe interval of ${DefaultTiming.probeIntervalMs} ms)`,
  );
  const kills: number[] = [];
  for (let i = 0; i < 40; i++) kills.push(await masterKill(seed + i));
  kills.sort((a, b) => a - b);
  const q = (p: number) => (kills[Math.min(kills.length - 1, Math.floor(p * kills.length))] / 1000).toFixed(2);
  console.log(
    `5 members, master killed (40 runs): every survivor reports the new master after p50 ${q(0.5)} s, p90 ${
      q(0.9)
    } s, max ${q(1)} s`,
  );
  await stallReport(seed);
  console.log(
    "Join storm: all members start within 1 s, each through 3 random members already in; view checked every 100 ms.",
  );
  console.log("members | one view (from first join) | after last join | full mesh | crash known by all | wall clock");
  for (const n of sizes) {
    const r = await measure(n, seed);
    console.log(
      `${String(n).padStart(7)} | ${(r.joinMs / 1000).toFixed(2)} s (${r.joinRounds.toFixed(1)} rounds) | ${
        r.afterLastJoinMs.toFixed(0)
      } ms | ${(r.linksMs / 1000).toFixed(2)} s | ` +
        `${(r.crashKnownMs / 1000).toFixed(2)} s (${r.crashRounds.toFixed(1)} rounds) | ${
          (r.wallMs / 1000).toFixed(1)
        } s`,
    );
  }
}
