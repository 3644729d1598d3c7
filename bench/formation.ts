/**
 * How soon a freshly formed cluster is safe (issue 11): member process a starts alone (and,
 * for the loaded case, this process joins it as a lite client and loads N entries with
 * putAll), then member processes b and c join a at once. The bench polls every member's
 * `GET /cluster` and `GET /health` and prints, per run, the time from "all three list each
 * other" to "every partition has its backups" (`replicasMissing` 0 with `safe: true` on
 * every member: backups created in place count only once their primary reported them in
 * sync), and to "balanced" (no migration in flight, three owners). Polling every 10 ms bounds
 * the resolution.
 *
 * With each run it prints the CPU time every member used between the two moments and how long
 * its threads waited for a core meanwhile (`/proc`, Linux): on a shared machine the time is
 * that CPU divided by the share the machine gives.
 *
 * Options: --runs N (runs per case, default 3), --entries N (the loaded case, default
 * 100000; 0 runs only the empty case), --values x|random (the loaded case's values: the
 * string of 100 "x" (default), which compresses to almost nothing, or 100 random bytes each,
 * which do not compress at all), --member-flags "…" (flags for the members' runtime, space-separated,
 * e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof": the members are then stopped with two SIGTERMs as
 * soon as every member is safe, so their profiles end there, and each run prints the wall-clock
 * times of "listed" and "safe" (ms since the epoch) to cut the profiles to the fill).
 */
import { startNode } from "../src/node.ts";
import { args, runtimeVersion } from "../src/runtime/process.ts";
import { killAll, type Member, startMember } from "../test/support/cluster.ts";
import { until } from "../test/support/until.ts";
import {
  benchMember,
  clusterOf,
  currentRuntime,
  flag,
  fmtMs,
  loadAverage,
  processCpu,
  runBench,
  udpCounter,
  udpReceiveBufferDrops,
} from "./_cluster.ts";

const argv = args();
const RUNS = Number(flag(argv, "runs", "3"));
const ENTRIES = Number(flag(argv, "entries", "100000"));
const VALUES = flag(argv, "values", "x");
if (VALUES !== "x" && VALUES !== "random") throw new Error(`Cannot use --values ${VALUES}: x or random`);
const VALUE = "x".repeat(100);
const MEMBER_FLAGS = flag(argv, "member-flags", "").split(" ").filter((f) => f !== "");

/** A value of the loaded case: the constant string, or 100 fresh random bytes. */
function valueOf(): string | Uint8Array {
  if (VALUES === "x") return VALUE;
  const b = new Uint8Array(100);
  crypto.getRandomValues(b);
  return b;
}

interface Run {
  entries: number;
  /** ms from "all members list each other" to every member safe. */
  safeMs: number;
  /** ms from "all members list each other" to balanced. */
  balancedMs: number;
  /** replicasMissing on the first member when all listed each other. */
  missingAtFormation: number;
  /**
   * The first member's snapshot and log re-shipment counters once every member was safe (how
   * the new backups were filled: snapshots, or the partition's write log when it covers it).
   */
  snapshots: Record<string, number>;
  /**
   * Per member (a, b, c): CPU ms it used from "all list each other" to "every member safe",
   * ms its threads waited for a core meanwhile, and the CPU ms of its main (JS) thread alone
   * (NaN where /proc cannot be read).
   */
  cpu: Record<string, { cpuMs: number; waitMs: number; mainMs: number }>;
  /** UDP datagrams sent meanwhile, machine-wide (/proc/net/snmp: other processes' count too). */
  udpDatagrams: number;
  /** UDP datagrams dropped meanwhile for a full socket receive buffer, machine-wide (RcvbufErrors). */
  udpDrops: number;
  /**
   * Snapshot chunk bytes member a sent meanwhile (read from its metrics when all listed each
   * other, just before the CPU reading, and once all were safe): the work of the window, which
   * varies from run to run as part of the fill can come before it.
   */
  windowBytes: number;
  /** Partition table versions the master published meanwhile (each one applied by every member). */
  tables: number;
}

const SNAPSHOT_COUNTERS = [
  "snapshotsSent",
  "snapshotsRestarted",
  "snapshotsAbandoned",
  "snapshotChunksSent",
  "snapshotChunksResent",
  "snapshotFastResends",
  "snapshotChunkBytesSent",
  "snapshotChunksDeflated",
  "pullsReceived",
  "logResends",
  "logOpsResent",
];

/** Replication counters of `m` from its `GET /metrics` (the `shoal_replication_events_total` family). */
async function snapshotCounters(m: Member): Promise<Record<string, number>> {
  const text = await (await m.get("/metrics")).text();
  const out: Record<string, number> = {};
  for (const name of SNAPSHOT_COUNTERS) {
    const hit = text.match(new RegExp(`shoal_replication_events_total\\{event="${name}"\\} (\\d+)`));
    if (hit) out[name] = Number(hit[1]);
  }
  return out;
}

async function once(entries: number, i: number): Promise<Run> {
  const secret = `bench-formation-${Date.now()}-${i}`;
  const a = await startMember({ ...benchMember, runtimeFlags: MEMBER_FLAGS, name: "a", secret });
  const client = entries > 0
    ? await startNode({ name: "loader", lite: true, http: false, join: [a.url], secret, logLevel: "warn" })
    : null;
  if (client) {
    await until(() => client.partitionSummary().version > 0 || undefined, 30_000, "loader sees the table");
    const map = client.getMap<string, string | Uint8Array>("formation");
    for (let k = 0; k < entries; k += 5000) {
      const part: Array<[string, string | Uint8Array]> = [];
      for (let j = k; j < Math.min(entries, k + 5000); j++) part.push([`k${j}`, valueOf()]);
      await map.putAll(part);
    }
  }
  const [b, c] = await Promise.all([
    startMember({ ...benchMember, runtimeFlags: MEMBER_FLAGS, name: "b", secret, join: a.url }),
    startMember({ ...benchMember, runtimeFlags: MEMBER_FLAGS, name: "c", secret, join: a.url }),
  ]);
  const data: Member[] = [a, b, c];
  const total = client ? 4 : 3;
  let missingAtFormation = -1, tableAtFormation = NaN, master = 0;
  await until(
    async () => {
      const bodies = await Promise.all(data.map(clusterOf));
      if (!bodies.every((x) => x.members.length === total)) return undefined;
      missingAtFormation = bodies[0].partitions.replicasMissing;
      master = Math.max(0, bodies.findIndex((x) => x.self === bodies[0].master));
      tableAtFormation = bodies[master].partitionTableVersion ?? NaN;
      return true;
    },
    60_000,
    "all members list each other",
    10,
  );
  const formed = performance.now(), formedWall = Date.now();
  // Chunk bytes a had sent by then: part of the fill can run before the last member lists the others.
  const sentBefore = (await snapshotCounters(a).catch(() => ({} as Record<string, number>))).snapshotChunkBytesSent;
  const cpu0 = data.map((m) => processCpu(m.child.pid));
  const udp0 = udpCounter("OutDatagrams"), drops0 = udpReceiveBufferDrops();
  // The master publishes the table every member applies, so it is safe first: only it is polled
  // until then, then every member (each poll costs the member polled some CPU too).
  const safe = (m: Member) => m.json<{ safe: boolean }>("/health").then((h) => h.safe);
  await until(async () => (await safe(data[master])) || undefined, 120_000, "the master safe", 10);
  await until(
    async () => (await Promise.all(data.map(safe))).every((x) => x) || undefined,
    120_000,
    "every member safe",
    10,
  );
  const safeMs = performance.now() - formed;
  const udpDatagrams = udpCounter("OutDatagrams") - udp0, udpDrops = udpReceiveBufferDrops() - drops0;
  const cpu: Run["cpu"] = {};
  data.forEach((m, k) => {
    const now = processCpu(m.child.pid);
    cpu[m.name] = {
      cpuMs: now.cpuMs - cpu0[k].cpuMs,
      waitMs: now.waitMs - cpu0[k].waitMs,
      mainMs: now.mainMs - cpu0[k].mainMs,
    };
  });
  const snapshots = await snapshotCounters(a).catch(() => ({} as Record<string, number>));
  const windowBytes = (snapshots.snapshotChunkBytesSent ?? NaN) - (sentBefore ?? NaN);
  const tables = ((await clusterOf(data[master]).catch(() => null))?.partitionTableVersion ?? NaN) - tableAtFormation;
  const run = { entries, safeMs, missingAtFormation, snapshots, cpu, udpDatagrams, udpDrops, windowBytes, tables };
  if (MEMBER_FLAGS.length > 0) {
    console.log(
      `run ${i + 1}: listed at ${formedWall}, safe at ${formedWall + Math.round(safeMs)} (ms since the epoch)`,
    );
    await stopForProfiles(data);
    await client?.shutdown().catch(() => {});
    killAll();
    return { ...run, balancedMs: NaN };
  }
  await until(
    async () => {
      const bodies = await Promise.all(data.map(clusterOf));
      return bodies.every((x) =>
        x.partitions.migrating === 0 && x.partitions.replicasMissing === 0 &&
        Object.keys(x.partitions.owners).length === 3
      ) || undefined;
    },
    120_000,
    "balanced",
    10,
  );
  const balancedMs = performance.now() - formed;
  await client?.shutdown().catch(() => {});
  killAll();
  return { ...run, balancedMs };
}

/**
 * Stops the members with two SIGTERMs (the second one makes a member exit at once, without the
 * graceful shutdown that would migrate partitions), so each writes its profile.
 */
async function stopForProfiles(members: Member[]): Promise<void> {
  for (const m of members) m.child.kill("SIGTERM");
  await new Promise((r) => setTimeout(r, 200));
  for (const m of members) m.child.kill("SIGTERM");
  await Promise.all(members.map((m) => Promise.race([m.child.exited, new Promise((r) => setTimeout(r, 20_000))])));
}

async function main(): Promise<void> {
  const loadStart = loadAverage();
  console.log(
    `Formation (${runtimeVersion()}): member a, then b and c join at once; 3 data member processes, backup 1, ` +
      `271 partitions; values ${VALUES === "x" ? '"x" × 100' : "100 random bytes"}`,
  );
  console.log(`load average at start: ${loadStart}`);
  const runs: Run[] = [];
  for (const entries of ENTRIES > 0 ? [0, ENTRIES] : [0]) {
    for (let i = 0; i < RUNS; i++) {
      const r = await once(entries, i);
      runs.push(r);
      console.log(
        `${entries.toLocaleString("en")} entries, run ${i + 1}: every partition has its backups ${fmtMs(r.safeMs)} ` +
          `after all members list each other (replicasMissing then ${r.missingAtFormation}); balanced after ${
            fmtMs(r.balancedMs)
          }; CPU until then (used, of it the main thread / waited for a core) ${
            Object.entries(r.cpu).map(([n, c]) => `${n} ${fmtMs(c.cpuMs)}, ${fmtMs(c.mainMs)} / ${fmtMs(c.waitMs)}`)
              .join("; ")
          }; UDP datagrams sent meanwhile (machine-wide) ${r.udpDatagrams}, dropped for a full receive buffer ${r.udpDrops}; chunk bytes a sent meanwhile ${
            (r.windowBytes / 1e6).toFixed(2)
          } MB${
            r.windowBytes > 0
              ? `, CPU of a, b and c summed per MB of them ${
                fmtMs(Object.values(r.cpu).reduce((x, c) => x + c.cpuMs, 0) / (r.windowBytes / 1e6))
              }`
              : ""
          }; ${r.tables} table versions; member a's snapshots then ${JSON.stringify(r.snapshots)}`,
      );
    }
  }
  for (const entries of new Set(runs.map((r) => r.entries))) {
    const xs = runs.filter((r) => r.entries === entries);
    const med = (f: (r: Run) => number) => xs.map(f).sort((p, q) => p - q)[Math.floor(xs.length / 2)];
    console.log(
      `median of ${xs.length}, ${entries.toLocaleString("en")} entries: backups ${fmtMs(med((r) => r.safeMs))}, ` +
        `balanced ${fmtMs(med((r) => r.balancedMs))}`,
    );
  }
  console.log(`runtime ${currentRuntime()}; load average at start: ${loadStart}; at end: ${loadAverage()}`);
  console.log(JSON.stringify({ runs }));
}

await runBench(main);
