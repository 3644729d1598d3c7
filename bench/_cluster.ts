/**
 * Shared by the multi-process benches: the member processes come from the suite's process
 * harness (test/support/cluster.ts, which spawns under Bun and Deno alike); this file adds
 * what only the benches need: the bench's member defaults, reading members' REST API and
 * metrics, percentiles, the load average and small command-line helpers, and
 * {@link runBench}, which kills every child when the bench ends, fails or is interrupted.
 */
import { readdirSync, readFileSync } from "node:fs";
import { exit, onSignal, runtimeName } from "../src/runtime/process.ts";
import { type Node, startNode } from "../src/node.ts";
import { killAll, type Member, startMember, type StartOptions } from "../test/support/cluster.ts";
import { until } from "../test/support/until.ts";

/** A runtime a member process can run under. */
export type BenchRuntime = "bun" | "deno";

/** The runtime running this bench. */
export function currentRuntime(): BenchRuntime {
  const r = runtimeName();
  if (r === "node") throw new Error("Cannot run the bench under Node: use bun or deno");
  return r;
}

/** How the benches start members: quiet logs, and a minute to be ready on a loaded machine. */
export const benchMember: Pick<StartOptions, "args" | "readyTimeoutMs"> = {
  args: ["--log-level", "warn"],
  readyTimeoutMs: 60_000,
};

/** The subset of `GET /cluster` the benches read. */
export interface ClusterBody {
  self: string;
  master: string | null;
  members: Array<{ id: string; name: string; lite: boolean }>;
  partitions: { count: number; owners: Record<string, number>; replicasMissing: number; migrating: number };
  partitionTableVersion?: number;
  /** This member's links: direct, or relayed through another member. */
  links: Array<{ peer: string; kind: "direct" | "relayed"; via?: string }>;
}

/** `GET /cluster` of `m` (2 s timeout). */
export function clusterOf(m: Member): Promise<ClusterBody> {
  return m.json<ClusterBody>("/cluster", 2_000);
}

/**
 * Waits until every one of `members` lists `want` data owners, none migrating, none missing a
 * replica, and has a link to every other member (one more member, a lite client, is listed).
 * @throws Error after `timeoutMs`, with each member's last state
 */
export async function settledCluster(members: Member[], want: number, timeoutMs: number, pollMs = 100): Promise<void> {
  let lastState = "";
  const settled = async () => {
    const bodies = await Promise.all(members.map(clusterOf));
    lastState = bodies.map((b, i) =>
      `${members[i].name}: ${b.members.length} members, ${Object.keys(b.partitions.owners).length} owners, ` +
      `${b.partitions.migrating} migrating, ${b.partitions.replicasMissing} replicas missing, ${b.links.length} links`
    ).join("; ");
    return bodies.every((b) =>
      b.partitions.migrating === 0 && b.partitions.replicasMissing === 0 &&
      Object.keys(b.partitions.owners).length === want &&
      b.members.length === members.length + 1 && b.links.length === members.length
    );
  };
  await until(async () => (await settled()) || undefined, timeoutMs, `${want} data members settled`, pollMs).catch(
    (err) => {
      throw new Error(`${(err as Error).message}; last state: ${lastState}`);
    },
  );
}

/**
 * Starts data member processes a, b and c (the bench's runtime, backup 1) and this process as a
 * lite member joined to them, and waits until the members are settled and the client sees the
 * table with 3 owners and nothing migrating.
 */
export async function startBenchCluster(
  secret: string,
  pollMs = 100,
  extra: Pick<StartOptions, "runtimeFlags"> = {},
): Promise<{ members: Member[]; client: Node }> {
  const a = await startMember({ ...benchMember, ...extra, name: "a", secret });
  const [b, c] = await Promise.all([
    startMember({ ...benchMember, ...extra, name: "b", secret, join: a.url }),
    startMember({ ...benchMember, ...extra, name: "c", secret, join: a.url }),
  ]);
  const members = [a, b, c];
  const client = await startNode({ name: "client", lite: true, http: false, join: [a.url], secret, logLevel: "warn" });
  await settledCluster(members, 3, 60_000);
  await until(
    () => {
      const s = client.partitionSummary();
      return client.cluster.members().length === 4 && Object.keys(s.owners).length === 3 && s.migrating === 0 ||
        undefined;
    },
    30_000,
    "client sees the table",
    pollMs,
  );
  return { members, client };
}

/**
 * Stops bench members so that a `--cpu-prof` profile gets written: a first SIGTERM starts a graceful
 * shutdown, a second makes a member exit at once (without migrating partitions). Returns their exit
 * codes ("still running" after 20 s).
 */
export async function stopForProfiles(members: Member[]): Promise<unknown[]> {
  for (const m of members) m.child.kill("SIGTERM");
  await new Promise((r) => setTimeout(r, 200));
  for (const m of members) m.child.kill("SIGTERM");
  return await Promise.all(
    members.map((m) =>
      Promise.race([m.child.exited, new Promise((r) => setTimeout(() => r("still running"), 20_000))])
    ),
  );
}

/**
 * The text of `GET /metrics` of `m` ("" when the endpoint fails). Each scrape makes the
 * member count its maps' sizes first (at most every 2 s), so scrape once per snapshot.
 */
export function scrapeMetrics(m: Member): Promise<string> {
  return scrape(m, "");
}

/**
 * {@link scrapeMetrics} after a full garbage collection on `m` (`?gc=1`: members run with
 * --expose-gc); 30 s, since a collection that returns free pages took 3–5 s under Deno at load 12.
 */
export function scrapeMetricsAfterGc(m: Member): Promise<string> {
  return scrape(m, "?gc=1", 30_000);
}

async function scrape(m: Member, query: string, timeoutMs = 10_000): Promise<string> {
  try {
    const res = await fetch(m.url + "/metrics" + query, { signal: AbortSignal.timeout(timeoutMs) });
    return res.ok ? await res.text() : "";
  } catch {
    return "";
  }
}

/**
 * The first sample of family `name` in a scrape whose labels contain `labels`
 * (e.g. `direction="sent"`); NaN when there is none.
 */
export function sampleOf(text: string, name: string, labels = ""): number {
  const line = text.split("\n").find((l) =>
    (l.startsWith(name + "{") || l.startsWith(name + " ")) && l.includes(labels)
  );
  return line ? Number(line.trim().split(/\s+/).pop()) : NaN;
}

/** Every sample of family `name` in a scrape, keyed by the value of label `label`. */
export function samplesOf(text: string, name: string, label: string): Map<string, number> {
  const out = new Map<string, number>();
  const re = new RegExp(`${label}="([^"]*)"`);
  for (const line of text.split("\n")) {
    if (!line.startsWith(name + "{")) continue;
    const key = re.exec(line)?.[1];
    if (key !== undefined) out.set(key, Number(line.trim().split(/\s+/).pop()));
  }
  return out;
}

/** Resolves after `ms`. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The `p` quantile (0..1) of `xs` (nearest rank). */
export function quantile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(s.length * p) - 1))];
}

/** The first three fields of /proc/loadavg ("1 5 15 min"), or "n/a". */
export function loadAverage(): string {
  try {
    return readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
  } catch {
    return "n/a";
  }
}

/** Clock ticks per second of /proc/<pid>/stat's CPU times (USER_HZ: 100 on every Linux build in use). */
const CLOCK_TICKS = 100;

/**
 * CPU time used so far by process `pid` (user + system, all threads, /proc/<pid>/stat), and
 * the time its threads spent runnable but waiting for a core (/proc/<pid>/task/<tid>/schedstat,
 * summed): a process that waits a lot for its CPU is held back by the machine's load. Also the
 * CPU time of its main thread alone (the JS thread; the rest is JIT, GC and I/O threads).
 * @returns milliseconds, NaN where /proc cannot be read
 */
export function processCpu(pid: number | "self"): { cpuMs: number; waitMs: number; mainMs: number } {
  try {
    const cpuMs = statCpuMs(`/proc/${pid}/stat`);
    let mainMs = NaN;
    try {
      mainMs = pid === "self" ? NaN : statCpuMs(`/proc/${pid}/task/${pid}/stat`);
    } catch {
      // the main thread's stat is unreadable: leave NaN
    }
    let waitNs = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        waitNs += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[1]);
      } catch {
        // the thread ended
      }
    }
    return { cpuMs, waitMs: waitNs / 1e6, mainMs };
  } catch {
    return { cpuMs: NaN, waitMs: NaN, mainMs: NaN };
  }
}

/**
 * CPU time used so far by process `pid` ("self" for this one), in nanoseconds, from the
 * scheduler's per-thread accounting (/proc/<pid>/task/<tid>/schedstat: finer than the 10 ms
 * ticks of /proc/<pid>/stat): all its threads, and its main (JS) thread alone.
 */
export function schedCpuNs(pid: number | "self"): { all: number; main: number } {
  const dir = `/proc/${pid}/task`;
  const ns = (tid: string) => Number(readFileSync(`${dir}/${tid}/schedstat`, "utf8").split(" ")[0]);
  let all = 0;
  for (const tid of readdirSync(dir)) {
    try {
      all += ns(tid);
    } catch {
      // the thread ended
    }
  }
  const self = pid === "self" ? readFileSync("/proc/self/stat", "utf8").split(" ")[0] : String(pid);
  return { all, main: ns(self) };
}

/** user + system CPU ms of a /proc `stat` file (a process's or a thread's). */
function statCpuMs(path: string): number {
  // utime is field 14, stime 15.
  const f = statFields(path);
  return (Number(f[11]) + Number(f[12])) * 1000 / CLOCK_TICKS;
}

/** The fields of a /proc `stat` file after the process name: index 0 is field 3 (state). */
function statFields(path: string): string[] {
  const stat = readFileSync(path, "utf8");
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
}

/**
 * CPU time used so far by each thread of process `pid`, summed by thread name (the main thread
 * is "main"; under Bun the others are JSC's JITWorker and HeapHelper, mimalloc's mi-scavenger…).
 * @returns milliseconds per name (empty where /proc cannot be read)
 */
export function threadCpu(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        const path = `/proc/${pid}/task/${tid}/stat`;
        const stat = readFileSync(path, "utf8");
        const name = tid === String(pid) ? "main" : stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
        out.set(name, (out.get(name) ?? 0) + statCpuMs(path));
      } catch {
        // the thread ended
      }
    }
  } catch {
    // the process ended
  }
  return out;
}

/**
 * Context switches of process `pid` ("self" for this one): of its main thread (each time its event
 * loop slept and was woken, or was preempted) and of all its threads, from /proc.
 */
export function contextSwitches(pid: number | "self"): { main: number; all: number } {
  const read = (path: string) => {
    const t = readFileSync(path, "utf8");
    const num = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(t)?.[1] ?? NaN);
    return num("voluntary_ctxt_switches") + num("nonvoluntary_ctxt_switches");
  };
  const main = read(`/proc/${pid}/status`);
  let all = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) all += read(`/proc/${pid}/task/${tid}/status`);
  return { main, all };
}

/**
 * Minor page faults of process `pid` so far ("self" for this one), all threads (field 10 of
 * /proc/<pid>/stat). A process in a steady loop that keeps faulting touches memory new to it:
 * its heap growing between collections, or pages its allocator handed back to the kernel. Each
 * fault costs a kernel entry and a zeroed page.
 * @returns the count, or NaN where /proc cannot be read
 */
export function minorFaults(pid: number | "self"): number {
  try {
    return Number(statFields(`/proc/${pid}/stat`)[7]);
  } catch {
    return NaN;
  }
}

/**
 * UDP datagrams the kernel dropped because a socket's receive buffer was full
 * (`RcvbufErrors` in /proc/net/snmp), machine-wide. WebRTC runs over UDP: each drop costs
 * an SCTP retransmission (a probe after about two round trips, or the RTO of 100 ms–1 s; see
 * src/transport/retransmit.ts).
 * @returns the counter, or NaN where /proc/net/snmp cannot be read
 */
export function udpReceiveBufferDrops(): number {
  return udpCounter("RcvbufErrors");
}

/**
 * A machine-wide UDP counter of /proc/net/snmp (`InDatagrams`, `OutDatagrams`, `RcvbufErrors`, …).
 * @returns the counter, or NaN where /proc/net/snmp cannot be read
 */
export function udpCounter(name: string): number {
  try {
    const lines = readFileSync("/proc/net/snmp", "utf8").split("\n").filter((l) => l.startsWith("Udp:"));
    const names = lines[0].split(/\s+/);
    const values = lines[1].split(/\s+/);
    const i = names.indexOf(name);
    return i > 0 ? Number(values[i]) : NaN;
  } catch {
    return NaN;
  }
}

/** Value of `--name V` in `argv`, or `dflt`. */
export function flag(argv: readonly string[], name: string, dflt: string): string {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : dflt;
}

/** Formats milliseconds: "412 µs", "3.4 ms", "2.10 s". */
export function fmtMs(ms: number): string {
  if (ms < 1) return `${(ms * 1000).toFixed(0)} µs`;
  if (ms < 1000) return `${ms.toFixed(1)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}

/**
 * Runs `main`, then kills every child and ends the process (0 on success, 1 on error).
 * @param main the bench body
 */
export async function runBench(main: () => Promise<void>): Promise<never> {
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    onSignal(sig, () => {
      killAll();
      exit(130);
    });
  }
  let code = 0;
  try {
    await main();
  } catch (err) {
    const e = err as Error & { code?: string };
    console.error(
      `bench failed: ${e?.name ?? "error"}${e?.code ? ` ${e.code}` : ""}: ${e?.message ?? String(err)}\n${
        e?.stack ?? ""
      }`,
    );
    code = 1;
  } finally {
    killAll();
  }
  return exit(code);
}
