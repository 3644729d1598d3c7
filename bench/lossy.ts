/**
 * Puts under packet loss over real WebRTC, as on the internet and Wi-Fi. Needs root (it
 * builds network namespaces and iptables rules); not part of CI.
 *
 *   sudo bun run bench/lossy.ts [--seconds 45] [--loss 0,1,5] [--runs 1] [--runtimes bun,deno] [--log-level info]
 *   sudo deno run -A bench/lossy.ts …
 *
 * Four members (runtimes cycled from `--runtimes`: Bun, Deno, Bun, Deno) run in four network
 * namespaces joined by a bridge, one member per namespace, HTTP on the namespace's address.
 * Each namespace drops that share of the UDP packets coming in on its bridge interface
 * (`iptables -m statistic --mode random`): every WebRTC packet between members, DATA and
 * SACK alike, is lost with that probability on arrival. The clients' HTTP (TCP) is not
 * dropped: it stands for an application next to its member. Four REST clients in this
 * process each write sequentially to their own member (`PUT /maps/lossy/:key`, 100-byte
 * values, 1,000 keys each) for `--seconds` per loss level, on the same cluster, levels in
 * the order given, the whole sequence `--runs` times. Prints one row per level (medians over
 * the runs when there are several), the packets the rules dropped, whether a member was ever
 * missing from a view, the silent links the members reset (`cluster.link.silent_reset`, counted from
 * their info logs), and at the end reads every key back to check that no acknowledged
 * write was lost. Namespaces, bridge and member processes are removed at the end, also on
 * failure or Ctrl-C; the members' last log lines (info and above) go to /tmp/shoal-lossy-m*.log.
 */
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { flag, fmtMs, loadAverage, quantile, runBench, sleep } from "./_cluster.ts";
import { args, onSignal, runtimeVersion } from "../src/runtime/process.ts";
import { type ChildHandle, spawnChild } from "../src/runtime/spawn.ts";
import { launcher, root } from "../test/support/cluster.ts";

const argv = args();
const SECONDS = Number(flag(argv, "seconds", "45"));
const LOSSES = flag(argv, "loss", "0,1,5").split(",").map((s) => Number(s.trim()));
const RUNS = Number(flag(argv, "runs", "1"));
const LOG_LEVEL = flag(argv, "log-level", "info");
const RUNTIMES = flag(argv, "runtimes", "bun,deno").split(",").map((s) => s.trim());
for (const r of RUNTIMES) if (r !== "bun" && r !== "deno") throw new RangeError(`Unknown runtime "${r}": bun or deno`);
for (const l of LOSSES) if (!(l >= 0 && l < 100)) throw new RangeError(`Cannot use loss ${l} %: 0 ≤ loss < 100`);

const MEMBERS = 4;
const BRIDGE = "shlbr0";
const SUBNET = "10.77.0";
const ns = (i: number) => `shl-lossy-${i + 1}`;
const hostVeth = (i: number) => `shlv${i + 1}`;
const addr = (i: number) => `${SUBNET}.${i + 1}`;
const TOKEN = `lossy-${Date.now()}`;
const VALUE = "v".repeat(100);
const KEYS = 1000;

function sh(cmd: string[], allowFail = false): string {
  try {
    return execFileSync(cmd[0], cmd.slice(1), { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (err) {
    if (allowFail) return "";
    const e = err as { stderr?: string; message: string };
    throw new Error(`${cmd.join(" ")} failed: ${e.stderr || e.message}`);
  }
}

function teardown(): void {
  // Deleting the host end removes both ends at once; a namespace's own links go only when
  // the kernel gets round to destroying it.
  for (let i = 0; i < MEMBERS; i++) sh(["ip", "link", "del", hostVeth(i)], true);
  for (let i = 0; i < MEMBERS; i++) sh(["ip", "netns", "del", ns(i)], true);
  sh(["ip", "link", "del", BRIDGE], true);
}

function setup(): void {
  teardown();
  sh(["ip", "link", "add", BRIDGE, "type", "bridge"]);
  sh(["ip", "addr", "add", `${SUBNET}.254/24`, "dev", BRIDGE]);
  sh(["ip", "link", "set", BRIDGE, "up"]);
  for (let i = 0; i < MEMBERS; i++) {
    sh(["ip", "netns", "add", ns(i)]);
    // werift skips interfaces named veth*: the namespace's end is named lan0.
    sh(["ip", "link", "add", hostVeth(i), "type", "veth", "peer", "name", "lan0", "netns", ns(i)]);
    sh(["ip", "link", "set", hostVeth(i), "master", BRIDGE, "up"]);
    sh(["ip", "-n", ns(i), "addr", "add", `${addr(i)}/24`, "dev", "lan0"]);
    sh(["ip", "-n", ns(i), "link", "set", "lan0", "up"]);
    sh(["ip", "-n", ns(i), "link", "set", "lo", "up"]);
  }
}

/** Drops `percent` % of the UDP packets arriving on each namespace's bridge interface. */
function setLoss(percent: number): void {
  for (let i = 0; i < MEMBERS; i++) {
    sh(["ip", "netns", "exec", ns(i), "iptables", "-F", "INPUT"]);
    if (percent > 0) {
      sh([
        "ip",
        "netns",
        "exec",
        ns(i),
        "iptables",
        "-A",
        "INPUT",
        "-i",
        "lan0",
        "-p",
        "udp",
        "-m",
        "statistic",
        "--mode",
        "random",
        "--probability",
        String(percent / 100),
        "-j",
        "DROP",
      ]);
    }
  }
}

/** Packets the loss rules dropped so far, summed over the namespaces. */
function droppedPackets(): number {
  let sum = 0;
  for (let i = 0; i < MEMBERS; i++) {
    const out = sh(["ip", "netns", "exec", ns(i), "iptables", "-L", "INPUT", "-v", "-x", "-n"], true);
    for (const line of out.split("\n")) if (line.includes("DROP")) sum += Number(line.trim().split(/\s+/)[0]) || 0;
  }
  return sum;
}

interface Member {
  i: number;
  runtime: string;
  url: string;
  child: ChildHandle;
  stderr: string[];
  /** Silent links this member reset so far (its `cluster.link.silent_reset` log lines). */
  resets: number;
}

const children: ChildHandle[] = [];

function startMember(i: number, secret: string): Promise<Member> {
  const runtime = RUNTIMES[i % RUNTIMES.length] as "bun" | "deno";
  const cmd = [
    "ip",
    "netns",
    "exec",
    ns(i),
    ...launcher(runtime),
    `${root}/mod.ts`,
    "node",
    "--name",
    `m${i + 1}`,
    "--http",
    `${addr(i)}:5701`,
    "--secret",
    secret,
    "--token",
    TOKEN,
    "--log-level",
    LOG_LEVEL,
    ...(i > 0 ? ["--join", `http://${addr(0)}:5701`] : []),
  ];
  const stderr: string[] = [];
  let member: Member | undefined;
  let resets = 0;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`m${i + 1}: no ready line in 60 s\n${stderr.join("\n")}`)), 60_000);
    const child = spawnChild(cmd, {
      onStdoutLine: (line) => {
        if (!line.includes('"event":"ready"')) return;
        clearTimeout(timer);
        member = { i, runtime, url: `http://${addr(i)}:5701`, child, stderr, resets };
        resolve(member);
      },
      onStderrLine: (line) => {
        if (line.includes("cluster.link.silent_reset")) member ? member.resets++ : resets++;
        stderr.push(line);
        if (stderr.length > 200) stderr.shift();
      },
    });
    children.push(child);
    void child.exited.then((code) => reject(new Error(`m${i + 1} exited (${code})\n${stderr.join("\n")}`)));
  });
}

interface ClusterBody {
  members: Array<{ id: string }>;
  master: string | null;
  links: unknown[];
  partitions: { owners: Record<string, number>; migrating: number; replicasMissing: number };
}

async function clusterOf(m: Member): Promise<ClusterBody> {
  const res = await fetch(`${m.url}/cluster`, {
    headers: { "Authorization": `Bearer ${TOKEN}` },
    signal: AbortSignal.timeout(5_000),
  });
  if (!res.ok) throw new Error(`GET /cluster of m${m.i + 1}: ${res.status}`);
  return await res.json() as ClusterBody;
}

async function settled(members: Member[]): Promise<void> {
  const start = Date.now();
  for (;;) {
    try {
      const b = await Promise.all(members.map(clusterOf));
      if (
        b.every((x) =>
          x.members.length === MEMBERS && x.master === b[0].master && x.links.length === MEMBERS - 1 &&
          x.partitions.migrating === 0 && x.partitions.replicasMissing === 0 &&
          Object.keys(x.partitions.owners).length === MEMBERS
        )
      ) return;
    } catch {
      // not yet
    }
    if (Date.now() - start > 120_000) throw new Error("the 4 members did not settle in 120 s");
    await sleep(200);
  }
}

async function put(m: Member, key: string, value: string): Promise<boolean> {
  try {
    const res = await fetch(`${m.url}/maps/lossy/${key}`, {
      method: "PUT",
      headers: { "Content-Type": "application/json", "Authorization": `Bearer ${TOKEN}` },
      body: JSON.stringify(value),
      signal: AbortSignal.timeout(30_000),
    });
    await res.arrayBuffer();
    return res.ok;
  } catch {
    return false;
  }
}

interface Phase {
  loss: number;
  puts: number;
  failed: number;
  p50: number;
  p99: number;
  max: number;
  dropped: number;
  /** Silent links reset during the phase, summed over the members. */
  resets: number;
  /** Smallest member count any member's view showed during the phase. */
  minMembers: number;
}

/** Last acknowledged value of each key. */
const acked = new Map<string, string>();
let counter = 0;

async function phase(members: Member[], loss: number): Promise<Phase> {
  setLoss(loss);
  const droppedBefore = droppedPackets();
  const resetsBefore = members.reduce((s, m) => s + m.resets, 0);
  const latencies: number[] = [];
  let failed = 0, minMembers = MEMBERS;
  const end = performance.now() + SECONDS * 1000;
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      for (const m of members) {
        try {
          minMembers = Math.min(minMembers, (await clusterOf(m)).members.length);
        } catch {
          // a slow answer under loss is not a removal
        }
      }
      await sleep(1000);
    }
  })();
  await Promise.all(members.map(async (m) => {
    while (performance.now() < end) {
      const key = `c${m.i}-k${counter % KEYS}`, value = `${VALUE}${counter++}`;
      const t0 = performance.now();
      if (await put(m, key, value)) {
        latencies.push(performance.now() - t0);
        acked.set(key, value);
      } else failed++;
    }
  }));
  watching = false;
  await watcher;
  for (const m of members) {
    if (m.child.done) {
      throw new Error(`m${m.i + 1} (${m.runtime}) exited (${m.child.exitCode})\n${m.stderr.join("\n")}`);
    }
  }
  const dropped = droppedPackets() - droppedBefore;
  setLoss(0);
  return {
    loss,
    puts: latencies.length,
    failed,
    p50: quantile(latencies, 0.5),
    p99: quantile(latencies, 0.99),
    max: quantile(latencies, 1),
    dropped,
    resets: members.reduce((s, m) => s + m.resets, 0) - resetsBefore,
    minMembers,
  };
}

/** Reads every acknowledged key back (through another member than the one that wrote it). */
async function lostWrites(members: Member[]): Promise<string[]> {
  const lost: string[] = [];
  const entries = [...acked];
  let next = 0;
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (next < entries.length) {
      const [key, value] = entries[next++];
      const writer = Number(key.slice(1, key.indexOf("-")));
      const m = members[(writer + 1) % MEMBERS];
      let v: unknown;
      try {
        const res = await fetch(`${m.url}/maps/lossy/${key}`, {
          headers: { "Authorization": `Bearer ${TOKEN}` },
          signal: AbortSignal.timeout(30_000),
        });
        const text = await res.text();
        try {
          v = (JSON.parse(text) as { value?: unknown })?.value;
        } catch {
          v = text;
        }
      } catch (err) {
        v = `read failed: ${(err as Error)?.name} ${(err as Error)?.message}`;
      }
      if (v !== value) lost.push(`${key}: wanted …${value.slice(100)}, got ${String(JSON.stringify(v)).slice(0, 60)}`);
    }
  }));
  return lost;
}

/** The median; with an even count, the mean of the middle two. */
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b), mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

async function main(): Promise<void> {
  setup();
  const secret = `lossy-${Date.now()}`;
  const first = await startMember(0, secret);
  const rest = await Promise.all(Array.from({ length: MEMBERS - 1 }, (_, i) => startMember(i + 1, secret)));
  const members = [first, ...rest];
  logs.push(...members);
  await settled(members);
  console.log(
    `bench/lossy: ${members.map((m) => m.runtime).join("/")} members, ${MEMBERS} sequential REST clients, ` +
      `${SECONDS} s per level, ${RUNS} run(s); bench ${runtimeVersion()}; load ${loadAverage()}`,
  );
  // Warm-up: 200 writes per client.
  await Promise.all(members.map(async (m) => {
    for (let n = 0; n < 200; n++) await put(m, `c${m.i}-k${n}`, `${VALUE}w`);
  }));
  for (const m of members) for (let n = 0; n < 200; n++) acked.set(`c${m.i}-k${n}`, `${VALUE}w`);

  const byLoss = new Map<number, Phase[]>();
  for (let r = 0; r < RUNS; r++) {
    for (const loss of LOSSES) {
      const p = await phase(members, loss);
      (byLoss.get(loss) ?? byLoss.set(loss, []).get(loss)!).push(p);
      console.log(
        `  run ${r + 1}, ${loss} % loss: ${p.puts} puts (${p.failed} failed), p50 ${fmtMs(p.p50)}, p99 ${
          fmtMs(p.p99)
        }, max ${
          fmtMs(p.max)
        }; ${p.dropped} packets dropped; ${p.resets} silent links reset; fewest members in a view ${p.minMembers}; load ${loadAverage()}`,
      );
    }
  }
  const lost = await lostWrites(members);

  const base = median(byLoss.get(LOSSES[0])!.map((p) => p.puts));
  console.log("");
  console.log(`| loss on every host's input | puts in ${SECONDS} s | p50 | p99 | failed | packets dropped |`);
  console.log("|---|---:|---:|---:|---:|---:|");
  for (const loss of LOSSES) {
    const ps = byLoss.get(loss)!;
    const puts = Math.round(median(ps.map((p) => p.puts)));
    console.log(
      `| ${loss} % | ${puts} (${(puts / base).toFixed(2)}×) | ${fmtMs(median(ps.map((p) => p.p50)))} | ${
        fmtMs(median(ps.map((p) => p.p99)))
      } | ${ps.reduce((s, p) => s + p.failed, 0)} | ${Math.round(median(ps.map((p) => p.dropped)))} |`,
    );
  }
  const minMembers = Math.min(...[...byLoss.values()].flat().map((p) => p.minMembers));
  console.log(
    `\nmembers: ${minMembers === MEMBERS ? "none removed" : `a view showed only ${minMembers}`}; ` +
      `acknowledged writes read back: ${acked.size}, lost: ${lost.length}${
        lost.length ? ` (${lost.slice(0, 3).join("; ")})` : ""
      }; silent links reset: ${members.map((m) => `m${m.i + 1} ${m.resets}`).join(", ")}; load ${loadAverage()}`,
  );
  console.log(
    JSON.stringify({ seconds: SECONDS, runs: RUNS, runtimes: members.map((m) => m.runtime), byLoss: [...byLoss] }),
  );
}

/** Members' last log lines (warn and above), kept for a look after the run. */
const logs: Member[] = [];

function cleanup(): void {
  for (const c of children) c.kill("SIGKILL");
  for (const m of logs) {
    if (m.stderr.length > 0) writeFileSync(`/tmp/shoal-lossy-m${m.i + 1}.log`, m.stderr.join("\n") + "\n");
  }
  teardown();
}

// Registered before runBench's own handlers (which exit), so Ctrl-C removes the lab too.
for (const sig of ["SIGINT", "SIGTERM"] as const) onSignal(sig, cleanup);
await runBench(async () => {
  try {
    await main();
  } finally {
    cleanup();
  }
});
