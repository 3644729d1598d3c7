/**
 * Soak: 3 member processes (a: Bun, the seed; b: Bun; c: Deno) on 127.0.0.1 under a mixed REST
 * workload for `--minutes` (default 14), sampling each member every `--sample-s` (30) seconds, to
 * spot growth that never levels off. Not part of CI.
 *
 *   bun run bench/soak.ts [--minutes 14] [--sample-s 30] [--port 17311] [--out /tmp/soak]
 *
 * Workload (tens of ops/s, spread over the live members): puts, gets and deletes, half with a
 * `ttl`, a quarter with `maxIdle` over a key space that rotates every minute, the rest without
 * expiry over 300 fixed keys; `increment` processors on
 * rotating counter keys (the map has a 60 s TTL); lock/unlock with leases (a third left to
 * expire), on fixed and on rotating keys; queue offers and polls, long polls on an empty queue
 * that time out; topic publishes; SSE streams of map events and topics opened and closed:
 * through fetch (aborted), and through raw sockets that stop reading or are destroyed mid-stream;
 * a small job every 90 s. Churn: c SIGTERMed and restarted at 2.5 min, b at 5 min, b `kill -9`ed
 * at 8.5 min, b SIGTERMed at 11.5 min (each back 10 s later); a runs throughout. `--churn 0`: none
 * (every member runs throughout, to see what levels off).
 *
 * A sample per member: RSS, threads and open fds from /proc, and from `GET /metrics?gc=1` (members
 * run with --expose-gc, so the heap figures come after a full collection) the JS heap used and
 * external, map entries held (primary + backup, internal maps included), SSE clients, links,
 * transport messages; `GET /cluster` member count. Members' stdout/stderr go to `--out`/NAME.log;
 * the table is printed at the end and each sample as a JSON line in `--out`/samples.jsonl.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { appendFileSync, mkdirSync, openSync, readdirSync, readFileSync } from "node:fs";
import { connect } from "node:net";
import { args } from "../src/runtime/process.ts";

const argv = args();
const flag = (name: string, dflt: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : dflt;
};
const minutes = Number(flag("minutes", "14"));
const sampleS = Number(flag("sample-s", "30"));
const basePort = Number(flag("port", "17311"));
const out = flag("out", "/tmp/soak");
const churnOn = flag("churn", "1") !== "0";
mkdirSync(out, { recursive: true });
const root = new URL("..", import.meta.url).pathname;
const bin = `${root}node_modules/.bin`;
const secret = "soak-secret";
const mapFlags = ["--map", "counters:ttlMs=60000", "--map", "soak:maxSizePerMember=5000,eviction=lru"];

interface Mem {
  name: string;
  runtime: "bun" | "deno";
  port: number;
  proc?: ChildProcess;
  pid?: number;
  up: boolean;
  starts: number;
}
const mems: Mem[] = [
  { name: "a", runtime: "bun", port: basePort, up: false, starts: 0 },
  { name: "b", runtime: "bun", port: basePort + 1, up: false, starts: 0 },
  { name: "c", runtime: "deno", port: basePort + 2, up: false, starts: 0 },
];
const url = (m: Mem) => `http://127.0.0.1:${m.port}`;
const t0 = Date.now();
const el = () => ((Date.now() - t0) / 1000).toFixed(0);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const rnd = (n: number) => Math.floor(Math.random() * n);
const stopping = { now: false };

function start(m: Mem): void {
  const join = mems.filter((o) => o !== m && o.up).map((o) => ["--join", url(o)]).flat();
  const cmd = m.runtime === "bun" ? [`${bin}/bun`, "run", "mod.ts"] : [`${bin}/deno`, "run", "-A", "mod.ts"];
  const log = openSync(`${out}/${m.name}.log`, "a");
  appendFileSync(`${out}/${m.name}.log`, `--- start ${m.starts} at ${el()} s\n`);
  const p = spawn(
    cmd[0],
    [
      ...cmd.slice(1),
      "node",
      "--name",
      m.name,
      "--secret",
      secret,
      "--http",
      `127.0.0.1:${m.port}`,
      ...join,
      ...mapFlags,
    ],
    {
      cwd: root,
      stdio: ["ignore", log, log],
      env: { ...process.env, BUN_OPTIONS: "--expose-gc", DENO_V8_FLAGS: "--expose-gc", SHOAL_LOG_LEVEL: "info" },
    },
  );
  m.proc = p;
  m.pid = p.pid;
  m.starts++;
  p.on("exit", (code, sig) => {
    appendFileSync(`${out}/${m.name}.log`, `--- exit code=${code} signal=${sig} at ${el()} s\n`);
    if (m.proc === p) m.up = false;
  });
}

async function waitHealthy(m: Mem, ms = 90_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    try {
      const r = await fetch(`${url(m)}/health`, { signal: AbortSignal.timeout(2000) });
      const b = await r.json();
      if (r.ok && b.safe) {
        m.up = true;
        return;
      }
    } catch { /* not yet */ }
    await sleep(500);
  }
  throw new Error(`${m.name} not healthy`);
}

const stats: Record<string, number> = {};
const count = (k: string) => stats[k] = (stats[k] ?? 0) + 1;
function live(): Mem | undefined {
  const l = mems.filter((m) => m.up);
  return l.length ? l[rnd(l.length)] : undefined;
}
async function req(
  path: string,
  init: RequestInit & { timeoutMs?: number } = {},
  m = live(),
): Promise<Response | null> {
  if (!m) return null;
  try {
    const r = await fetch(`${url(m)}${path}`, {
      ...init,
      headers: init.body ? { "content-type": "application/json" } : undefined,
      signal: AbortSignal.timeout(init.timeoutMs ?? 10_000),
    });
    await r.arrayBuffer();
    count(`http_${r.status}`);
    return r;
  } catch {
    count("http_err");
    return null;
  }
}
const body = (v: unknown) => JSON.stringify(v);

// --- workload loops -------------------------------------------------------------------------
async function loop(ms: number, f: () => Promise<void>) {
  while (!stopping.now) {
    const s = Date.now();
    await f().catch(() => count("loop_err"));
    await sleep(Math.max(0, ms - (Date.now() - s)));
  }
}
const minute = () => Math.floor((Date.now() - t0) / 60_000);

const mapOps = () =>
  loop(60, async () => { // ~16/s
    // Keys written without expiry come from a fixed space (bounded data); the others rotate.
    const q = Math.random() < 0.5 ? `?ttl=${5_000 + rnd(30_000)}` : Math.random() < 0.5 ? `?maxIdle=20000` : "";
    const k = q ? `k${minute()}-${rnd(400)}` : `p${rnd(300)}`;
    const r = Math.random();
    if (r < 0.45) {
      await req(`/maps/soak/${k}${q}`, { method: "PUT", body: body({ v: "x".repeat(100), t: Date.now() }) });
      count("put");
    } else if (r < 0.85) {
      await req(`/maps/soak/${k}`);
      count("get");
    } else {
      await req(`/maps/soak/${k}`, { method: "DELETE" });
      count("delete");
    }
  });
const processors = () =>
  loop(250, async () => { // 4/s
    await req(`/maps/counters/c${minute()}-${rnd(50)}/execute`, {
      method: "POST",
      body: body({ processor: "increment", arg: 1 }),
    });
    count("execute");
  });
const locks = () =>
  loop(400, async () => { // 2.5/s, each lock + maybe unlock
    const m = live();
    if (!m) return;
    const key = Math.random() < 0.5 ? `L${rnd(20)}` : `R${minute()}-${rnd(200)}`;
    const owner = `o${rnd(5)}`;
    const r = await req(
      `/maps/lockmap/${key}/lock`,
      { method: "POST", body: body({ owner, leaseMs: 1_000 + rnd(3_000), timeoutMs: rnd(2) * 500 }) },
      m,
    );
    count(r?.status === 200 ? "lock_ok" : "lock_no");
    if (r?.status === 200 && Math.random() < 0.66) {
      await sleep(rnd(300));
      await req(`/maps/lockmap/${key}/unlock`, { method: "POST", body: body({ owner }) }, m);
      count("unlock");
    }
  });
const queues = () =>
  loop(200, async () => { // 5/s
    if (Math.random() < 0.5) {
      await req(`/queues/work?capacity=1000`, { method: "POST", body: body({ n: rnd(1e6) }) });
      count("offer");
    } else {
      await req(`/queues/work/poll?timeoutMs=${rnd(2) * 1000}`, { method: "POST", timeoutMs: 15_000 });
      count("poll");
    }
  });
const longPolls = () =>
  loop(3_000, async () => { // long polls on an always-empty queue, timing out (3 s); some aborted early
    const ctl = new AbortController();
    const m = live();
    if (!m) return;
    const early = Math.random() < 0.3;
    if (early) setTimeout(() => ctl.abort(), 500);
    try {
      const r = await fetch(`${url(m)}/queues/empty/poll?timeoutMs=3000`, { method: "POST", signal: ctl.signal });
      await r.arrayBuffer();
      count(`longpoll_${r.status}`);
    } catch {
      count(early ? "longpoll_aborted" : "longpoll_err");
    }
  });
const topics = () =>
  loop(300, async () => { // ~3/s
    await req(`/topics/t${rnd(2)}?capacity=200`, { method: "POST", body: body({ at: Date.now(), p: "y".repeat(50) }) });
    count("publish");
  });

/** An SSE stream through fetch, read for a few seconds, then aborted. */
async function sseFetch(path: string) {
  const m = live();
  if (!m) return;
  const ctl = new AbortController();
  setTimeout(() => ctl.abort(), 2_000 + rnd(6_000));
  try {
    const r = await fetch(`${url(m)}${path}`, { signal: ctl.signal });
    count(`sse_fetch_${r.status}`);
    const rd = r.body!.getReader();
    for (;;) {
      const { done } = await rd.read();
      if (done) break;
    }
    count("sse_fetch_ended");
  } catch {
    count("sse_fetch_aborted");
  }
}
/** An SSE stream over a raw socket: destroyed mid-stream, or left unread (paused) for a while first. */
function sseRaw(path: string): Promise<void> {
  const m = live();
  if (!m) return Promise.resolve();
  return new Promise((resolve) => {
    const s = connect(m.port, "127.0.0.1");
    const paused = Math.random() < 0.4;
    s.on("error", () => {});
    s.on("connect", () => {
      s.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${m.port}\r\nAccept: text/event-stream\r\n\r\n`);
      if (paused) s.pause();
    });
    let first = true;
    s.on("data", (d: Uint8Array) => {
      if (first) count(`sse_raw_${new TextDecoder().decode(d.subarray(0, 12)).split(" ")[1]}`);
      first = false;
    });
    setTimeout(() => {
      s.destroy();
      count(paused ? "sse_raw_paused_destroyed" : "sse_raw_destroyed");
      resolve();
    }, (paused ? 8_000 : 1_000) + rnd(4_000));
  });
}
const streams = () =>
  loop(1_500, () => {
    const paths = [
      "/maps/soak/events",
      "/maps/soak/events?includeValue=false",
      "/topics/t0/events",
      "/topics/t1/events",
    ];
    const p = paths[rnd(paths.length)];
    if (Math.random() < 0.5) void sseFetch(p);
    else void sseRaw(p);
    return Promise.resolve();
  });
let jobN = 0;
const jobs = () =>
  loop(90_000, async () => {
    const id = `soak-${jobN++}`;
    const r = await req(`/jobs`, {
      method: "POST",
      body: body({
        id,
        name: id,
        source: { type: "sequence", count: 300, parallelism: 2, ratePerSecond: 200 },
        sink: { type: "map", map: "jobsink" },
        checkpointIntervalMs: 1_000,
      }),
    });
    count(r?.status === 201 ? "job_submitted" : "job_refused");
  });

// --- churn ----------------------------------------------------------------------------------
async function restart(m: Mem, sig: "SIGTERM" | "SIGKILL") {
  console.error(`[${el()} s] ${sig} ${m.name} (pid ${m.pid})`);
  const p = m.proc!;
  m.up = false;
  const exited = new Promise((r) => p.once("exit", r));
  process.kill(m.pid!, sig);
  await Promise.race([exited, sleep(30_000)]);
  await sleep(10_000);
  start(m);
  await waitHealthy(m);
  console.error(`[${el()} s] ${m.name} back (pid ${m.pid})`);
}
async function churn() {
  if (!churnOn) return;
  const plan: Array<[number, Mem, "SIGTERM" | "SIGKILL"]> = [
    [150, mems[2], "SIGTERM"],
    [300, mems[1], "SIGTERM"],
    [510, mems[1], "SIGKILL"],
    [690, mems[1], "SIGTERM"],
  ];
  for (const [at, m, sig] of plan) {
    const wait = t0 + at * 1000 - Date.now();
    if (wait > 0) await sleep(wait);
    if (stopping.now) return;
    await restart(m, sig);
  }
}

// --- sampling -------------------------------------------------------------------------------
interface Sample {
  t: number;
  m: string;
  pid?: number;
  up: boolean;
  rssMB?: number;
  thr?: number;
  fds?: number;
  heapMB?: number;
  extMB?: number;
  entries?: number;
  sse?: number;
  links?: number;
  members?: number;
  msgs?: number;
}
const samples: Sample[] = [];
function proc(pid: number) {
  try {
    const st = readFileSync(`/proc/${pid}/status`, "utf8");
    const g = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(st)?.[1]);
    return { rssMB: g("VmRSS") / 1024, thr: g("Threads"), fds: readdirSync(`/proc/${pid}/fd`).length };
  } catch {
    return {};
  }
}
function metric(text: string, re: RegExp): number {
  let sum = 0;
  for (const line of text.split("\n")) if (re.test(line)) sum += Number(line.split(" ").pop());
  return sum;
}
async function sample() {
  const t = Math.round((Date.now() - t0) / 1000);
  for (const m of mems) {
    const s: Sample = { t, m: m.name, pid: m.pid, up: m.up, ...(m.pid ? proc(m.pid) : {}) };
    if (m.up) {
      try {
        const txt = await (await fetch(`${url(m)}/metrics?gc=1`, { signal: AbortSignal.timeout(10_000) })).text();
        s.heapMB = metric(txt, /^shoal_process_heap_bytes\{kind="used"\}/) / 2 ** 20;
        s.extMB = metric(txt, /^shoal_process_heap_bytes\{kind="external"\}/) / 2 ** 20;
        s.entries = metric(txt, /^shoal_map_entries\{/);
        s.sse = metric(txt, /^shoal_http_sse_clients/);
        s.links = metric(txt, /^shoal_links\{/);
        s.msgs = metric(txt, /^shoal_transport_messages_total\{/);
        const cl = await (await fetch(`${url(m)}/cluster`, { signal: AbortSignal.timeout(5_000) })).json();
        s.members = cl.members.length;
        // After the gc, RSS again.
        Object.assign(s, proc(m.pid!));
      } catch { /* member busy or leaving */ }
    }
    samples.push(s);
    appendFileSync(`${out}/samples.jsonl`, JSON.stringify({ ...s, stats: m === mems[0] ? stats : undefined }) + "\n");
  }
}
function table(): string {
  const f = (v: number | undefined, d = 0) => (v === undefined || Number.isNaN(v) ? "-" : v.toFixed(d));
  const rows = ["t_s  m pid     up  rssMB thr fds heapMB extMB entries sse links members msgs"];
  for (const s of samples) {
    rows.push(
      [
        String(s.t).padStart(4),
        s.m,
        String(s.pid ?? "-").padEnd(7),
        s.up ? "y " : "n ",
        f(s.rssMB).padStart(5),
        f(s.thr).padStart(3),
        f(s.fds).padStart(3),
        f(s.heapMB, 1).padStart(6),
        f(s.extMB, 1).padStart(5),
        f(s.entries).padStart(7),
        f(s.sse).padStart(3),
        f(s.links).padStart(5),
        f(s.members).padStart(7),
        f(s.msgs).padStart(8),
      ].join(" "),
    );
  }
  return rows.join("\n");
}

// --- main -----------------------------------------------------------------------------------
async function main() {
  start(mems[0]);
  await waitHealthy(mems[0]);
  start(mems[1]);
  start(mems[2]);
  await Promise.all([waitHealthy(mems[1]), waitHealthy(mems[2])]);
  console.error(`[${el()} s] cluster up: ${mems.map((m) => `${m.name}=${m.pid}`).join(" ")}`);
  await sample();
  const work = [mapOps(), processors(), locks(), queues(), longPolls(), topics(), streams(), jobs(), churn()];
  const end = t0 + minutes * 60_000;
  while (Date.now() < end) {
    await sleep(Math.min(sampleS * 1000, end - Date.now()));
    await sample();
    console.error(`[${el()} s] ${JSON.stringify(stats)}`);
  }
  stopping.now = true;
  await Promise.race([Promise.allSettled(work), sleep(20_000)]);
  await sleep(5_000); // let open streams and long polls end
  await sample();
  console.log(table());
  console.log(JSON.stringify(stats));
}

/** Stops the members one at a time (all at once, the last ones find no one to take the data: data_lost errors). */
async function shutdown() {
  for (const m of [...mems].reverse()) {
    const p = m.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) continue;
    const exited = new Promise((r) => p.once("exit", r));
    p.kill("SIGTERM");
    await Promise.race([exited, sleep(15_000)]);
    if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
  }
}
try {
  await main();
} finally {
  await shutdown();
}
