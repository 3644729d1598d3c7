/**
 * Shoal side by side with Redis, etcd and ZooKeeper on this machine, one run, one workload
 * (issue 16). Needs root (it installs what is missing with apt-get); not part of CI.
 *
 *   sudo bun run bench/peers.ts [--seconds 5] [--in-flight 64] [--only redis,etcd,zookeeper,shoal]
 *   sudo deno run -A bench/peers.ts …          (a Deno client, and Deno members for Shoal)
 *
 * Installs with apt-get what is missing (redis-server, etcd-server + etcd-client, zookeeperd),
 * then, one store at a time (started, measured, stopped, so that an idle store does not take
 * CPU from the next one), on 127.0.0.1 only, with data under a fresh temporary directory and
 * ports the kernel hands out:
 * - Redis: a primary and one replica (no persistence); a write is `SET` + `WAIT 1 0`, sent as
 *   one pipelined pair, so it returns once the replica has the write;
 * - etcd: 3 members; a write is `put` through the gateway's HTTP/JSON API of the first member;
 * - ZooKeeper: 3 servers; a write is `setData` on a session with the first server (the 1,000
 *   nodes are created before the clock starts);
 * - Shoal: 3 data member processes (`mod.ts node`, backup 1) and this process as a lite member
 *   (`IMap.set`; reads with `IMap.get` too).
 * The client loop is the same for all: 200 warm-up writes, 2,000 sequential writes, then
 * `--in-flight` (64) callers for `--seconds` (5) s; 100-byte values, keys k0..k999. Below the
 * table, the p50 of each quarter of the sequential writes shows how far each store is still
 * warming up (a Shoal member that just started runs its first puts in lower JIT tiers). Each of the
 * in-flight callers has its own connection (Redis, ZooKeeper) or its own fetch (etcd); Shoal's
 * callers share the lite member. The clients for Redis, ZooKeeper and etcd are the minimal ones
 * of bench/_peer_clients.ts.
 *
 * CPU per op: utime + stime of every process of the store (/proc/<pid>/stat, summed over
 * threads) across the in-flight phase, divided by its operations; the bench process's own CPU
 * per op is shown apart (for Shoal it includes the lite member's routing and transport).
 * Every process is stopped by PID at the end, also on failure or Ctrl-C, and the temporary
 * directory is removed. Figures move with the machine's load: the load average is printed.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Buffer } from "node:buffer";
import { etcdPut, RedisConn, ZK_NODE_EXISTS, ZkConn } from "./_peer_clients.ts";
import { tuneRuntime } from "../src/runtime/tune.ts";
import { flag, fmtMs, loadAverage, processCpu, quantile, runBench, sleep, startBenchCluster } from "./_cluster.ts";
import { args, envSnapshot, onSignal, runtimeVersion, writeStderrLine } from "../src/runtime/process.ts";
import { type ChildHandle, spawnChild } from "../src/runtime/spawn.ts";
import { until } from "../test/support/until.ts";

// The client here is a Shoal lite member: under Bun it runs with the members' engine settings (src/runtime/tune.ts).
tuneRuntime(writeStderrLine);
const argv = args();
const SECONDS = Number(flag(argv, "seconds", "5"));
const IN_FLIGHT = Number(flag(argv, "in-flight", "64"));
const ONLY = flag(argv, "only", "redis,etcd,zookeeper,shoal").split(",").map((s) => s.trim());
const WARMUP = 200;
const SEQ = 2000;
const KEYS = 1000;
const VALUE = "v".repeat(100);
const VALUE_BYTES = Buffer.from(VALUE);
const key = (i: number) => `k${i % KEYS}`;

// ---------------------------------------------------------------- processes

const children: ChildHandle[] = [];
const dir = mkdtempSync(join(tmpdir(), "shoal-peers-"));

function stopAll(): void {
  for (const c of children.splice(0)) c.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
}
onSignal("SIGINT", stopAll);
onSignal("SIGTERM", stopAll);

/** Starts `cmd`, keeping its last output lines for error messages. */
function spawn(name: string, cmd: string[]): { child: ChildHandle; tail(): string } {
  const lines: string[] = [];
  const keep = (l: string) => {
    lines.push(l);
    if (lines.length > 40) lines.shift();
  };
  const child = spawnChild(cmd, { cwd: dir, onStdoutLine: keep, onStderrLine: keep });
  children.push(child);
  void child.exited.then((code) => {
    if (children.includes(child)) console.error(`${name} exited (${code}):\n${lines.slice(-15).join("\n")}`);
  });
  return { child, tail: () => lines.join("\n") };
}

async function stop(handles: ChildHandle[]): Promise<void> {
  for (const c of handles) {
    const i = children.indexOf(c);
    if (i >= 0) children.splice(i, 1);
    c.kill("SIGKILL");
  }
  await Promise.all(handles.map((c) => c.exited));
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}
const freePorts = (n: number) => Promise.all(Array.from({ length: n }, freePort));

function sh(cmd: string[], env: Record<string, string> = {}): string {
  return execFileSync(cmd[0], cmd.slice(1), {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...envSnapshot(), ...env } as Record<string, string>,
  });
}

const ZK_JAR = "/usr/share/java/zookeeper.jar";

/** Installs with apt-get the packages whose programs are missing. */
function install(): void {
  const missing: string[] = [];
  const has = (prog: string) => {
    try {
      sh(["sh", "-c", `command -v ${prog}`]);
      return true;
    } catch {
      return false;
    }
  };
  if (ONLY.includes("redis") && !has("redis-server")) missing.push("redis-server");
  if (ONLY.includes("etcd") && !has("etcd")) missing.push("etcd-server", "etcd-client");
  if (ONLY.includes("zookeeper") && (!existsSync(ZK_JAR) || !has("java"))) missing.push("zookeeperd");
  if (missing.length === 0) return;
  console.log(`installing ${missing.join(" ")} (apt-get)…`);
  const env = { DEBIAN_FRONTEND: "noninteractive" };
  try {
    sh(["apt-get", "install", "-y", "--no-install-recommends", ...missing], env);
  } catch {
    sh(["apt-get", "update"], env);
    sh(["apt-get", "install", "-y", "--no-install-recommends", ...missing], env);
  }
}

// ---------------------------------------------------------------- CPU

/** CPU milliseconds (user + system, all threads) used so far by process `pid`. */
const cpuMs = (pid: number | "self") => processCpu(pid).cpuMs;
const cpuOf = (pids: number[]) => pids.reduce((s, p) => s + cpuMs(p), 0);

// ---------------------------------------------------------------- workload

/** One store under the workload: an operation per caller (caller 0 runs the sequential part). */
interface Target {
  name: string;
  op: string;
  /** The operation for caller `w` (each caller gets its own connection where the store has them). */
  callers: Array<(key: string) => Promise<void>>;
  pids: number[];
}

interface Row {
  store: string;
  op: string;
  seqP50Ms: number;
  seqP99Ms: number;
  /** p50 of each quarter of the sequential writes, in order: how far each store still warms up. */
  seqQuarterP50Ms: number[];
  opsPerS: number;
  inFlightP50Ms: number;
  inFlightP99Ms: number;
  ops: number;
  storeCpuUsPerOp: number;
  clientCpuUsPerOp: number;
  error?: string;
}

async function measure(t: Target, warmup: boolean): Promise<Row> {
  const one = t.callers[0];
  if (warmup) { for (let i = 0; i < WARMUP; i++) await one(key(i)); }
  const seq: number[] = [];
  for (let i = 0; i < SEQ; i++) {
    const t0 = performance.now();
    await one(key(i));
    seq.push(performance.now() - t0);
  }
  const lat: number[] = [];
  let next = 0;
  const cpu0 = cpuOf(t.pids), self0 = cpuMs("self");
  const start = performance.now();
  const stopAt = start + SECONDS * 1000;
  await Promise.all(t.callers.map(async (call) => {
    while (performance.now() < stopAt) {
      const k = key(next++);
      const t0 = performance.now();
      await call(k);
      lat.push(performance.now() - t0);
    }
  }));
  const elapsed = performance.now() - start;
  const cpu = cpuOf(t.pids) - cpu0, self = cpuMs("self") - self0;
  return {
    store: t.name,
    op: t.op,
    seqP50Ms: quantile(seq, 0.5),
    seqP99Ms: quantile(seq, 0.99),
    seqQuarterP50Ms: [0, 1, 2, 3].map((q) => quantile(seq.slice(q * SEQ / 4, (q + 1) * SEQ / 4), 0.5)),
    opsPerS: lat.length / (elapsed / 1000),
    inFlightP50Ms: quantile(lat, 0.5),
    inFlightP99Ms: quantile(lat, 0.99),
    ops: lat.length,
    storeCpuUsPerOp: cpu * 1000 / lat.length,
    clientCpuUsPerOp: self * 1000 / lat.length,
  };
}

// ---------------------------------------------------------------- stores

async function redis(): Promise<Row[]> {
  const [primaryPort, replicaPort] = await freePorts(2);
  const common = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "no"];
  mkdirSync(join(dir, "redis-1"));
  mkdirSync(join(dir, "redis-2"));
  const p = spawn("redis primary", [
    "redis-server",
    "--port",
    String(primaryPort),
    "--dir",
    join(dir, "redis-1"),
    ...common,
  ]);
  const r = spawn("redis replica", [
    "redis-server",
    "--port",
    String(replicaPort),
    "--dir",
    join(dir, "redis-2"),
    "--replicaof",
    "127.0.0.1",
    String(primaryPort),
    ...common,
  ]);
  const conns: RedisConn[] = [];
  try {
    const probe = await until(() => RedisConn.open(primaryPort).catch(() => undefined), 20_000, "redis up", 100);
    conns.push(probe);
    await until(async () => (await probe.commands(["WAIT", "1", "200"]))[0] === 1 || undefined, 30_000, "replica");
    for (let w = 1; w < IN_FLIGHT; w++) conns.push(await RedisConn.open(primaryPort));
    const callers = conns.map((c) => async (k: string) => {
      const [set, acked] = await c.commands(["SET", k, VALUE], ["WAIT", "1", "0"]);
      if (set !== "OK" || acked !== 1) throw new Error(`redis: SET ${String(set)}, WAIT ${String(acked)}`);
    });
    return [
      await measure({
        name: "Redis primary + replica",
        op: "SET + WAIT 1 0",
        callers,
        pids: [p.child.pid, r.child.pid],
      }, true),
    ];
  } finally {
    for (const c of conns) c.close();
    await stop([p.child, r.child]);
  }
}

async function etcd(): Promise<Row[]> {
  const ports = await freePorts(6);
  const client = (i: number) => `http://127.0.0.1:${ports[i]}`;
  const peer = (i: number) => `http://127.0.0.1:${ports[3 + i]}`;
  const cluster = [0, 1, 2].map((i) => `e${i + 1}=${peer(i)}`).join(",");
  const token = `shoal-peers-${Date.now()}`;
  const procs = [0, 1, 2].map((i) =>
    spawn(`etcd e${i + 1}`, [
      "etcd",
      "--name",
      `e${i + 1}`,
      "--data-dir",
      join(dir, `etcd-${i + 1}`),
      "--listen-client-urls",
      client(i),
      "--advertise-client-urls",
      client(i),
      "--listen-peer-urls",
      peer(i),
      "--initial-advertise-peer-urls",
      peer(i),
      "--initial-cluster",
      cluster,
      "--initial-cluster-state",
      "new",
      "--initial-cluster-token",
      token,
      "--logger",
      "zap",
      "--log-level",
      "warn",
    ])
  );
  try {
    await until(() => etcdPut(client(0), "probe", "x", 2_000).then(() => true, () => undefined), 60_000, "etcd up", 200)
      .catch((e: Error) => {
        throw new Error(`${e.message}\n${procs.map((p) => p.tail().split("\n").slice(-5).join("\n")).join("\n")}`);
      });
    const put = (k: string) => etcdPut(client(0), k, VALUE);
    const callers = Array.from({ length: IN_FLIGHT }, () => put);
    return [
      await measure({
        name: "etcd 3 members",
        op: "put (HTTP gateway)",
        callers,
        pids: procs.map((p) => p.child.pid),
      }, true),
    ];
  } finally {
    await stop(procs.map((p) => p.child));
  }
}

async function zookeeper(): Promise<Row[]> {
  const ports = await freePorts(9);
  const servers = [0, 1, 2].map((i) => `server.${i + 1}=127.0.0.1:${ports[3 + i]}:${ports[6 + i]}`).join("\n");
  const procs = [0, 1, 2].map((i) => {
    const d = join(dir, `zk-${i + 1}`);
    mkdirSync(d);
    writeFileSync(join(d, "myid"), `${i + 1}\n`);
    writeFileSync(
      join(d, "zoo.cfg"),
      `tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=${d}\nclientPort=${ports[i]}\nclientPortAddress=127.0.0.1\n` +
        `admin.enableServer=false\nmaxClientCnxns=0\n${servers}\n`,
    );
    return spawn(`zookeeper ${i + 1}`, [
      "java",
      "-Xmx512m",
      `-Dzookeeper.log.dir=${d}`,
      "-Dzookeeper.root.logger=WARN,CONSOLE",
      "-cp",
      `/etc/zookeeper/conf_example:${ZK_JAR}`,
      "org.apache.zookeeper.server.quorum.QuorumPeerMain",
      join(d, "zoo.cfg"),
    ]);
  });
  const conns: ZkConn[] = [];
  try {
    const probe = await until(
      async () => {
        const c = await ZkConn.open(ports[0]).catch(() => undefined);
        if (!c) return undefined;
        const r = await c.create("/probe", VALUE_BYTES).catch(() => undefined);
        if (r && (r.err === 0 || r.err === ZK_NODE_EXISTS)) return c;
        c.close();
        return undefined;
      },
      90_000,
      "zookeeper quorum",
      300,
    );
    conns.push(probe);
    const created = await Promise.all(Array.from({ length: KEYS }, (_, i) => probe.create(`/k${i}`, VALUE_BYTES)));
    const bad = created.find((r) => r.err !== 0 && r.err !== ZK_NODE_EXISTS);
    if (bad) throw new Error(`zookeeper create failed: error ${bad.err}`);
    for (let w = 1; w < IN_FLIGHT; w++) conns.push(await ZkConn.open(ports[0]));
    const callers = conns.map((c) => async (k: string) => {
      const r = await c.setData(`/${k}`, VALUE_BYTES);
      if (r.err !== 0) throw new Error(`zookeeper setData /${k}: error ${r.err}`);
    });
    return [
      await measure({ name: "ZooKeeper 3 servers", op: "setData", callers, pids: procs.map((p) => p.child.pid) }, true),
    ];
  } finally {
    for (const c of conns) c.close();
    await stop(procs.map((p) => p.child));
  }
}

async function shoal(): Promise<Row[]> {
  const secret = `peers-${Date.now()}`;
  const { members, client } = await startBenchCluster(secret);
  try {
    const map = client.getMap<string, string>("peers");
    const pids = members.map((m) => m.child.pid);
    const set = async (k: string) => void await map.set(k, VALUE);
    const get = async (k: string) => {
      if (await map.get(k) !== VALUE) throw new Error(`shoal get ${k}: wrong value`);
    };
    const name = "Shoal 3 members + lite client";
    const puts = await measure({ name, op: "IMap.set", callers: Array(IN_FLIGHT).fill(set), pids }, true);
    const gets = await measure({ name, op: "IMap.get", callers: Array(IN_FLIGHT).fill(get), pids }, false);
    return [puts, gets];
  } finally {
    await client.shutdown().catch(() => {});
    await stop(members.map((m) => m.child));
  }
}

// ---------------------------------------------------------------- main

const stores: Record<string, [string, () => Promise<Row[]>]> = {
  redis: ["Redis primary + replica", redis],
  etcd: ["etcd 3 members", etcd],
  zookeeper: ["ZooKeeper 3 servers", zookeeper],
  shoal: ["Shoal 3 members + lite client", shoal],
};

async function main(): Promise<void> {
  for (const s of ONLY) if (!stores[s]) throw new RangeError(`Unknown store "${s}": ${Object.keys(stores).join(", ")}`);
  install();
  const loadStart = loadAverage();
  console.log(
    `Peers (${runtimeVersion()} client): ${WARMUP} warm-up writes, ${SEQ} sequential, then ${IN_FLIGHT} in flight for ` +
      `${SECONDS} s; ${VALUE.length} B values, keys k0..k${KEYS - 1}; load average at start ${loadStart}`,
  );
  const rows: Row[] = [];
  for (const s of ONLY) {
    const [name, run] = stores[s];
    const t0 = performance.now();
    try {
      rows.push(...await run());
    } catch (err) {
      const e = err as Error;
      console.error(`${name} failed: ${e.stack ?? e.message}`);
      rows.push({
        store: name,
        op: "-",
        seqP50Ms: NaN,
        seqP99Ms: NaN,
        seqQuarterP50Ms: [],
        opsPerS: NaN,
        inFlightP50Ms: NaN,
        inFlightP99Ms: NaN,
        ops: 0,
        storeCpuUsPerOp: NaN,
        clientCpuUsPerOp: NaN,
        error: e.message.split("\n")[0],
      });
    }
    console.log(`${name}: done in ${fmtMs(performance.now() - t0)} (load average ${loadAverage()})`);
    await sleep(1000);
  }
  const n = (x: number, d = 0) => Number.isNaN(x) ? "n/a" : x.toLocaleString("en", { maximumFractionDigits: d });
  const table = [
    [
      "store",
      "op",
      "sequential p50 / p99",
      `${IN_FLIGHT} in flight: ops/s`,
      "in-flight p50 / p99",
      "store CPU µs/op",
      "bench process CPU µs/op",
    ],
    ...rows.map((r) =>
      r.error ? [r.store, "failed", r.error, "", "", "", ""] : [
        r.store,
        r.op,
        `${fmtMs(r.seqP50Ms)} / ${fmtMs(r.seqP99Ms)}`,
        n(r.opsPerS),
        `${fmtMs(r.inFlightP50Ms)} / ${fmtMs(r.inFlightP99Ms)}`,
        n(r.storeCpuUsPerOp),
        n(r.clientCpuUsPerOp),
      ]
    ),
  ];
  const widths = table[0].map((_, i) => Math.max(...table.map((row) => row[i].length)));
  const line = (row: string[]) => `| ${row.map((c, i) => c.padEnd(widths[i])).join(" | ")} |`;
  console.log("\n" + line(table[0]));
  console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
  for (const row of table.slice(1)) console.log(line(row));
  console.log("\nsequential p50 of each quarter of the sequential ops, in order (warm-up):");
  for (const r of rows) {
    if (!r.error) console.log(`  ${r.store}, ${r.op}: ${r.seqQuarterP50Ms.map((x) => fmtMs(x)).join(", ")}`);
  }
  console.log(
    `\nload average at start: ${loadStart}; at end: ${loadAverage()}; ${IN_FLIGHT} in flight for ${SECONDS} s`,
  );
  console.log(JSON.stringify({ bench: "peers", runtime: runtimeVersion(), rows, loadStart, loadEnd: loadAverage() }));
}

await runBench(async () => {
  try {
    await main();
  } finally {
    stopAll();
  }
});
