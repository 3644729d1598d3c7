/**
 * Failover benchmark over real WebRTC: N trials of 4 member processes, kill -9 of the
 * master, and two clocks started at the kill:
 *
 * - detection: until every survivor's `GET /cluster` no longer lists the killed member
 *   ("gone"), and until every survivor shows the same new master and exactly 3 members
 *   ("new master");
 * - writable: until a surviving member's REST API (`PUT /maps/failover/:key`) has accepted
 *   one write into every one of the 271 partitions (one precomputed key per partition, each
 *   retried until it succeeds; every attempt starts after the kill).
 *
 *   bun run bench/failover.ts [--trials 5] [--runtimes bun,deno] [--min-cluster-size 3]
 *   deno run -A bench/failover.ts [--trials 5]
 *
 * `--runtimes` lists the runtimes of the 4 members in start order (cycled); the default is
 * the bench's own runtime for all four. `--min-cluster-size` turns split-brain protection on
 * (default off): the promoted primaries then wait out the killed one's lease before they
 * serve. The first member started is the master. Prints
 * each trial, then p50 and max of each figure, and the load average at start and end.
 */
import { partitionOf } from "../src/partition/partition_of.ts";
import {
  benchMember,
  type BenchRuntime,
  clusterOf,
  currentRuntime,
  flag,
  fmtMs,
  loadAverage,
  quantile,
  runBench,
  sleep,
  udpReceiveBufferDrops,
} from "./_cluster.ts";
import { args, runtimeVersion } from "../src/runtime/process.ts";
import { killAll, type Member, startMember } from "../test/support/cluster.ts";
import { until } from "../test/support/until.ts";

const argv = args();
const TRIALS = Number(flag(argv, "trials", "5"));
const RUNTIMES = flag(argv, "runtimes", currentRuntime()).split(",").map((s) => s.trim()) as BenchRuntime[];
for (const r of RUNTIMES) {
  if (r !== "bun" && r !== "deno") throw new RangeError(`Unknown runtime "${r}" in --runtimes: use bun or deno`);
}
const MIN_CLUSTER_SIZE = Number(flag(argv, "min-cluster-size", "0"));
const member = MIN_CLUSTER_SIZE > 0
  ? { ...benchMember, args: [...benchMember.args!, "--min-cluster-size", String(MIN_CLUSTER_SIZE)] }
  : benchMember;
const PARTITIONS = 271;
const MEMBERS = 4;
const GIVE_UP_MS = 60_000;

/** One key per partition: keyFor[p] hashes to partition p. */
function keysPerPartition(): string[] {
  const keys = new Array<string | undefined>(PARTITIONS).fill(undefined);
  let found = 0;
  for (let i = 0; found < PARTITIONS; i++) {
    const k = `f${i}`;
    const p = partitionOf(k, PARTITIONS);
    if (keys[p] === undefined) (keys[p] = k, found++);
  }
  return keys as string[];
}

interface Trial {
  goneMs: number;
  masterMs: number;
  writableMs: number;
  /** Partitions whose write succeeded at the first attempt. */
  firstTry: number;
  /** Writes that failed on the settled cluster before the kill (then retried). */
  preKillFailures: number;
  /** UDP datagrams dropped machine-wide for a full receive buffer during the trial's failover. */
  udpDrops: number;
  runtimes: string;
}

/** One REST write; `error` describes a failure (status and body, or the fetch error). */
async function putOnce(
  m: Member,
  key: string,
  value: unknown,
  timeoutMs: number,
): Promise<{ ok: boolean; error?: string }> {
  try {
    const res = await fetch(`${m.url}/maps/failover/${key}`, {
      method: "PUT",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(value),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    return res.ok ? { ok: true } : { ok: false, error: `${res.status} ${text.slice(0, 200)}` };
  } catch (err) {
    return { ok: false, error: String((err as Error)?.message ?? err) };
  }
}

async function trial(n: number, keys: string[]): Promise<Trial> {
  const secret = `failover-${Date.now()}-${n}`;
  const rt = (i: number) => RUNTIMES[i % RUNTIMES.length];
  const first = await startMember({ ...member, name: "m0", runtime: rt(0), secret });
  const rest = await Promise.all(
    Array.from(
      { length: MEMBERS - 1 },
      (_, i) => startMember({ ...member, name: `m${i + 1}`, runtime: rt(i + 1), secret, join: first.url }),
    ),
  );
  const members = [first, ...rest];
  const master = await until(
    async () => {
      const bodies = await Promise.all(members.map(clusterOf));
      const ok = bodies.every((b) =>
        b.members.length === MEMBERS && b.master === bodies[0].master && b.partitions.migrating === 0 &&
        b.partitions.replicasMissing === 0 &&
        Object.keys(b.partitions.owners).length === MEMBERS && b.links.length === MEMBERS - 1
      );
      return ok ? bodies[0].master ?? undefined : undefined;
    },
    90_000,
    "4 members settled and linked",
    100,
  );
  // Every partition holds an entry before the kill.
  const victim = members.find((m) => m.id === master);
  if (!victim) throw new Error(`master ${master} is none of the started members`);
  const survivors = members.filter((m) => m !== victim);
  const rest0 = survivors[0];
  // A failed write on the settled cluster is reported (it is a finding), then retried.
  const preKillFailures: string[] = [];
  await Promise.all(keys.map(async (k) => {
    for (let attempt = 0;; attempt++) {
      const r = await putOnce(rest0, k, { before: true }, 10_000);
      if (r.ok) return;
      preKillFailures.push(`PUT ${k}: ${r.error}`);
      if (attempt >= 5) throw new Error(`PUT ${k} before the kill failed 6 times: ${r.error}`);
      await sleep(200);
    }
  }));
  if (preKillFailures.length > 0) {
    console.log(
      `  before the kill, on a settled cluster: ${preKillFailures.length} failed PUTs (retried), e.g. ${
        preKillFailures.slice(0, 3).join("; ")
      }`,
    );
  }
  await sleep(300);

  const drops0 = udpReceiveBufferDrops();
  victim.kill9();
  const t0 = performance.now();

  const detection = (async () => {
    let goneMs = NaN;
    const masterMs = await until(
      async () => {
        const bodies = await Promise.all(survivors.map(clusterOf));
        const now = performance.now() - t0;
        if (Number.isNaN(goneMs) && bodies.every((b) => !b.members.some((x) => x.id === victim.id))) goneMs = now;
        const m = bodies[0].master;
        const same = m !== null && m !== victim.id &&
          bodies.every((b) => b.master === m && b.members.length === MEMBERS - 1);
        return same ? now : undefined;
      },
      GIVE_UP_MS,
      "survivors agree on a new master",
      20,
    );
    return { goneMs: Number.isNaN(goneMs) ? masterMs : goneMs, masterMs };
  })();

  let firstTry = 0;
  const writable = (async () => {
    const done = await Promise.all(keys.map(async (k, p) => {
      for (let attempt = 0;; attempt++) {
        if ((await putOnce(rest0, k, { p, attempt }, 10_000)).ok) {
          if (attempt === 0) firstTry++;
          return performance.now() - t0;
        }
        if (performance.now() - t0 > GIVE_UP_MS) {
          throw new Error(`partition ${p} not writable ${GIVE_UP_MS} ms after the kill`);
        }
        await sleep(20);
      }
    }));
    return Math.max(...done);
  })();

  const [d, writableMs] = await Promise.all([detection, writable]);
  const udpDrops = udpReceiveBufferDrops() - drops0;
  for (const m of survivors) m.kill9();
  await Promise.all(members.map((m) => m.child.exited));
  return {
    ...d,
    writableMs,
    firstTry,
    udpDrops,
    preKillFailures: preKillFailures.length,
    runtimes: members.map((m) => m.runtime).join(","),
  };
}

async function main(): Promise<void> {
  const loadStart = loadAverage();
  console.log(
    `Failover over WebRTC (${runtimeVersion()}): ${MEMBERS} member processes (${
      RUNTIMES.join(",")
    }), kill -9 of the master, ${TRIALS} trials, backup 1, ${PARTITIONS} partitions${
      MIN_CLUSTER_SIZE > 0 ? `, minClusterSize ${MIN_CLUSTER_SIZE}` : ""
    }`,
  );
  console.log(`load average at start: ${loadStart}`);
  const keys = keysPerPartition();
  const trials: Trial[] = [];
  for (let i = 0; i < TRIALS; i++) {
    try {
      const t = await trial(i, keys);
      trials.push(t);
      console.log(
        `trial ${i + 1}: killed member gone from all survivors ${fmtMs(t.goneMs)}, same new master on all ${
          fmtMs(t.masterMs)
        }, ` +
          `all ${PARTITIONS} partitions writable ${
            fmtMs(t.writableMs)
          } (${t.firstTry} at the first attempt; ${t.udpDrops} UDP drops)  [load ${loadAverage()}]`,
      );
    } finally {
      killAll();
    }
  }
  const loadEnd = loadAverage();
  const w = 46;
  const row = (name: string, xs: number[]) =>
    `| ${name.padEnd(w)} | ${fmtMs(quantile(xs, 0.5)).padStart(8)} | ${fmtMs(Math.max(...xs)).padStart(8)} |`;
  console.log(
    `\n| ${"figure (from kill -9 of the master)".padEnd(w)} |      p50 |      max |\n|${
      "-".repeat(w + 2)
    }|----------|----------|`,
  );
  console.log(row("killed member gone from every survivor's list", trials.map((t) => t.goneMs)));
  console.log(row("every survivor: same new master, 3 members", trials.map((t) => t.masterMs)));
  console.log(row(`all ${PARTITIONS} partitions writable (REST PUT)`, trials.map((t) => t.writableMs)));
  console.log(`\nload average at start: ${loadStart}; at end: ${loadEnd}`);
  console.log(
    JSON.stringify({ bench: "failover", runtime: runtimeVersion(), members: RUNTIMES, trials, loadStart, loadEnd }),
  );
}

await runBench(main);
