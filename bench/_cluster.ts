/**
 * Shared by the multi-process benches: member processes (`mod.ts node …`) started through
 * the runtime-neutral spawn helper, read through their REST API and killed with a real
 * SIGKILL; every child is killed when the bench ends, fails or is interrupted. Also
 * percentiles, the load average and small command-line helpers.
 */
import { readFileSync } from "node:fs";
import { fetchJson } from "../src/runtime/fetch_json.ts";
import { exit, onSignal, runtimeName } from "../src/runtime/process.ts";
import { type ChildHandle, spawnChild } from "../src/runtime/spawn.ts";
import { waitUntil } from "../src/runtime/wait_until.ts";

// deno-lint-ignore no-explicit-any
const g = globalThis as any;

/** Repository root (where mod.ts lives). */
export const root: string = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

/** A runtime a member process can run under. */
export type BenchRuntime = "bun" | "deno";

/** The runtime running this bench. */
export function currentRuntime(): BenchRuntime {
  const r = runtimeName();
  if (r === "node") throw new Error("Cannot run the bench under Node: use bun or deno");
  return r;
}

/** Version string of the running runtime, e.g. "bun 1.4.5". */
export function runtimeVersion(): string {
  if (g.Bun) return `bun ${g.Bun.version}`;
  if (g.Deno) return `deno ${g.Deno.version.deno}`;
  return "node";
}

/** The command line (program and arguments up to the script) that runs mod.ts under `runtime`. */
function launcher(runtime: BenchRuntime): string[] {
  const mod = `${root}/mod.ts`;
  if (runtime === currentRuntime()) {
    return runtime === "bun" ? [g.process.execPath, "run", mod] : [g.Deno.execPath(), "run", "-A", mod];
  }
  // The other runtime: the binary installed beside the project, else the one on PATH.
  const local = `${root}/node_modules/.bin/${runtime}`;
  let program: string = runtime;
  try {
    readFileSync(local);
    program = local;
  } catch {
    // not installed locally
  }
  return runtime === "bun" ? [program, "run", mod] : [program, "run", "-A", mod];
}

/** One member process. */
export interface MemberProcess {
  readonly name: string;
  readonly runtime: BenchRuntime;
  /** Member id from the ready line. */
  readonly id: string;
  /** Base HTTP URL. */
  readonly url: string;
  readonly child: ChildHandle;
  /** The last stderr lines (bounded). */
  stderrTail(): string;
  /** Sends SIGKILL. */
  kill9(): void;
  /** GET `path` as JSON (2 s timeout); throws on a status other than 2xx. */
  json<T = unknown>(path: string): Promise<T>;
}

const children = new Set<ChildHandle>();
let cleanupInstalled = false;

/** Kills every member process this bench started that is still running. */
export function killAllChildren(): void {
  for (const c of children) c.kill("SIGKILL");
  children.clear();
}

function installCleanup(): void {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    onSignal(sig, () => {
      killAllChildren();
      exit(130);
    });
  }
  if (g.Deno) g.addEventListener("unload", () => killAllChildren());
  else g.process.on("exit", () => killAllChildren());
}

/** What {@link startMember} needs. */
export interface StartMemberOptions {
  name: string;
  /** @default the bench's runtime */
  runtime?: BenchRuntime;
  secret: string;
  /** Base URL of a member to join; none starts a new cluster. */
  join?: string;
  /** Extra `node` flags. */
  args?: string[];
  /** @default 60000 */
  readyTimeoutMs?: number;
}

const maxStderrLines = 200;

/**
 * Starts `mod.ts node` and resolves once it printed its ready line.
 * @param o name, runtime, secret, join URL, extra flags
 * @returns the running member
 * @throws Error when the process ends or stays silent past the timeout (the child is killed)
 */
export async function startMember(o: StartMemberOptions): Promise<MemberProcess> {
  installCleanup();
  const runtime = o.runtime ?? currentRuntime();
  const cmd = [
    ...launcher(runtime),
    "node",
    "--name",
    o.name,
    "--http",
    "127.0.0.1:0",
    "--secret",
    o.secret,
    "--log-level",
    "warn",
    ...(o.join ? ["--join", o.join] : []),
    ...(o.args ?? []),
  ];
  const stderr: string[] = [];
  let onReady!: (r: Record<string, string>) => void;
  const ready = new Promise<Record<string, string>>((r) => (onReady = r));
  const child = spawnChild(cmd, {
    cwd: root,
    onStdoutLine: (line) => {
      if (line.includes('"event":"ready"')) onReady(JSON.parse(line));
    },
    onStderrLine: (line) => {
      stderr.push(line);
      if (stderr.length > maxStderrLines) stderr.shift();
    },
  });
  children.add(child);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeoutMs = o.readyTimeoutMs ?? 60_000;
  try {
    const r = await Promise.race([
      ready,
      child.exited.then((code) => {
        throw new Error(`${o.name} exited (${code}) before its ready line\n${stderr.slice(-20).join("\n")}`);
      }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`${o.name}: no ready line in ${timeoutMs} ms\n${stderr.slice(-20).join("\n")}`)),
          timeoutMs,
        );
      }),
    ]);
    const url = r.http;
    return {
      name: o.name,
      runtime,
      id: r.member,
      url,
      child,
      stderrTail: () => stderr.join("\n"),
      kill9: () => child.kill("SIGKILL"),
      json: <T>(path: string) => fetchJson<T>(url + path, {}, 2_000),
    };
  } catch (err) {
    child.kill("SIGKILL");
    children.delete(child);
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/** The subset of `GET /cluster` the benches read. */
export interface ClusterBody {
  self: string;
  master: string | null;
  members: Array<{ id: string; name: string; lite: boolean }>;
  partitions: { count: number; owners: Record<string, number>; replicasMissing: number; migrating: number };
  /** This member's links: direct, or relayed through another member. */
  links: Array<{ peer: string; kind: "direct" | "relayed"; via?: string }>;
}

/** `GET /cluster` of `m`. */
export function clusterOf(m: MemberProcess): Promise<ClusterBody> {
  return m.json<ClusterBody>("/cluster");
}

/**
 * The text of `GET /metrics` of `m` ("" when the endpoint fails). Each scrape makes the
 * member count its maps' sizes first (at most every 2 s), so scrape once per snapshot.
 */
export async function scrapeMetrics(m: MemberProcess): Promise<string> {
  try {
    const res = await fetch(m.url + "/metrics", { signal: AbortSignal.timeout(10_000) });
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

/** Polls `f` every `everyMs` until it returns something other than undefined (see {@link waitUntil}). */
export function until<T>(
  f: () => Promise<T | undefined> | T | undefined,
  timeoutMs: number,
  what: string,
  everyMs = 20,
): Promise<T> {
  return waitUntil(f, { timeoutMs, what, everyMs });
}

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

/**
 * UDP datagrams the kernel dropped because a socket's receive buffer was full
 * (`RcvbufErrors` in /proc/net/snmp), machine-wide. WebRTC runs over UDP: each drop costs
 * an SCTP retransmission (werift's minimum retransmit timeout is 1 s).
 * @returns the counter, or NaN where /proc/net/snmp cannot be read
 */
export function udpReceiveBufferDrops(): number {
  try {
    const lines = readFileSync("/proc/net/snmp", "utf8").split("\n").filter((l) => l.startsWith("Udp:"));
    const names = lines[0].split(/\s+/);
    const values = lines[1].split(/\s+/);
    const i = names.indexOf("RcvbufErrors");
    return i > 0 ? Number(values[i]) : NaN;
  } catch {
    return NaN;
  }
}

/** The command-line arguments after the script. */
export function benchArgs(): string[] {
  return g.Deno ? [...g.Deno.args] : g.process.argv.slice(2);
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
    killAllChildren();
  }
  return exit(code);
}
