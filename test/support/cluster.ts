/**
 * The one harness for real processes, shared by the multi-process tests (bun:test) and the
 * multi-process benches (run under Bun or Deno), so it spawns through the runtime-neutral
 * `src/runtime/spawn.ts`:
 *
 * - member processes (`mod.ts node …`, {@link startMember}), each with its own HTTP port,
 *   read through their REST API and killed with a real SIGKILL; a settled cluster of them
 *   ({@link startSettledCluster});
 * - any `mod.ts` command ({@link spawnMod}, {@link runToExit});
 * - scripts that speak JSON lines on stdin/stdout ({@link spawnScript}, {@link Proc}).
 *
 * Every process started here is remembered; {@link killAll} ends the ones still running.
 * It lives in test/support/ (not bench/) because the suite is its main user and must not
 * depend on bench code; the benches import it from here.
 */
import { existsSync } from "node:fs";
import { partitionOf } from "../../src/partition/partition_of.ts";
import { fetchJson } from "../../src/runtime/fetch_json.ts";
import { runtimeName } from "../../src/runtime/process.ts";
import { execPath } from "../../src/runtime/process.ts";
import { type ChildHandle, spawnChild } from "../../src/runtime/spawn.ts";
import { until } from "./until.ts";

/** Repository root (where mod.ts lives). */
export const root: string = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");

/** A runtime a child process can run under. */
export type RuntimeKind = "bun" | "deno";

/**
 * The program and arguments that run a script under `runtime`: the running runtime's own
 * executable for the same runtime, else the one installed beside the project, else the
 * one on PATH.
 */
export function launcher(runtime: RuntimeKind, runtimeFlags: readonly string[] = []): string[] {
  const here = runtimeName();
  let program: string = runtime;
  if (runtime === here) program = execPath();
  else if (existsSync(`${root}/node_modules/.bin/${runtime}`)) program = `${root}/node_modules/.bin/${runtime}`;
  return runtime === "bun" ? [program, ...runtimeFlags, "run"] : [program, "run", "-A", ...runtimeFlags];
}

const running = new Set<ChildHandle>();

/** Kills every process started here that is still running. */
export function killAll(): void {
  for (const c of running) c.kill("SIGKILL");
  running.clear();
}

/** Largest stderr text kept per process; beyond it the oldest half is dropped. */
const maxStderrChars = 4_000_000;

/** What {@link spawnProcess} needs. */
interface SpawnProcessOptions {
  env?: Record<string, string>;
  stdin?: "pipe";
  onStdoutLine?: (line: string) => void;
}

/** Starts `cmd` in the repository root, keeping its stderr text (bounded). */
function spawnProcess(cmd: string[], o: SpawnProcessOptions): { child: ChildHandle; stderr(): string } {
  let err = "";
  const child = spawnChild(cmd, {
    cwd: root,
    env: o.env,
    stdin: o.stdin,
    onStdoutLine: o.onStdoutLine,
    onStderrLine: (line) => {
      err += line + "\n";
      if (err.length > maxStderrChars) err = err.slice(-maxStderrChars / 2);
    },
  });
  running.add(child);
  void child.exited.then(() => running.delete(child));
  return { child, stderr: () => err };
}

/** A `mod.ts` process started by {@link spawnMod}. */
export interface ModProcess {
  child: ChildHandle;
  /** Resolves with the parsed ready line; rejects when the process ends without one. Never counts as unhandled. */
  ready: Promise<Record<string, string>>;
  /** Everything written to stderr so far (the last 2-4 MB). */
  stderr(): string;
}

/**
 * Starts `mod.ts …args` under `runtime` with `env` added to this process's environment.
 * Its stdout is read for the ready line (`{"event":"ready",…}`), its stderr is kept.
 */
export function spawnMod(
  runtime: RuntimeKind,
  args: string[],
  env: Record<string, string> = {},
  prefix: string[] = [],
  runtimeFlags: readonly string[] = [],
): ModProcess {
  let onReady!: (line: Record<string, string>) => void;
  let onEnd!: (err: Error) => void;
  const ready = new Promise<Record<string, string>>((resolve, reject) => {
    onReady = resolve;
    onEnd = reject;
  });
  const { child, stderr } = spawnProcess([...prefix, ...launcher(runtime, runtimeFlags), `${root}/mod.ts`, ...args], {
    env,
    onStdoutLine: (line) => {
      if (line.includes('"event":"ready"')) onReady(JSON.parse(line));
    },
  });
  void child.exited.then((code) => onEnd(new Error(`exited (${code}) without a ready line\n${stderr().slice(-3000)}`)));
  // Callers that expect an exit never await `ready`.
  ready.catch(() => {});
  return { child, ready, stderr };
}

/** The parts of a member's `GET /cluster` answer the split-brain process tests read. */
export interface ClusterJson {
  master: string;
  members: { id: string }[];
  partitions: { replicasMissing: number; migrating: number };
  quorum: { serving: boolean } | null;
}

/** Waits until `m` sees `members` members, no replica missing and no migration, and returns its snapshot. */
export function settledSnapshot(m: Member, members: number, timeoutMs = 90_000): Promise<SnapshotJson> {
  return until(
    async () => {
      const s = await m.json<SnapshotJson>("/snapshot");
      const p = s.cluster.partitions;
      return s.cluster.members.length === members && p.replicasMissing === 0 && p.migrating === 0 ? s : undefined;
    },
    timeoutMs,
    `${m.name}: ${members} members with full replicas`,
  );
}

/** The member ids holding the partition of string key `key` in `snap`, the primary first. */
export function replicasOf(snap: SnapshotJson, key: string): string[] {
  return snap.table.replicas[partitionOf(key, snap.cluster.partitions.count)].map((i) => snap.table.ids[i]);
}

/** A JSON POST request (for {@link call}). */
export function postJson(body: unknown, method = "POST"): RequestInit {
  return { method, body: JSON.stringify(body), headers: { "content-type": "application/json" } };
}

/**
 * One HTTP call of a process test: its status and JSON body (`{}` when empty), or status 0
 * when the connection failed (a killed member) or no answer came within `timeoutMs`.
 */
export async function call(
  url: string,
  init?: RequestInit,
  timeoutMs = 40_000,
): Promise<{ status: number; body: Record<string, unknown> }> {
  try {
    const r = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
    const text = await r.text();
    return { status: r.status, body: text ? JSON.parse(text) : {} };
  } catch {
    return { status: 0, body: {} };
  }
}

/** One member process started by {@link startMember}. */
export interface Member {
  readonly name: string;
  readonly runtime: RuntimeKind;
  /** Member id from the ready line. */
  readonly id: string;
  /** Base HTTP URL. */
  readonly url: string;
  readonly child: ChildHandle;
  /** Everything written to stderr so far (the last 2-4 MB). */
  stderr(): string;
  /** Sends SIGKILL. */
  kill9(): void;
  get(path: string): Promise<Response>;
  /** GET `path` as JSON; throws on a status other than 2xx or after `timeoutMs`. */
  json<T = unknown>(path: string, timeoutMs?: number): Promise<T>;
}

/** What {@link startMember} needs. */
export interface StartOptions {
  name: string;
  /** @default the runtime running this code */
  runtime?: RuntimeKind;
  /** Base URL of a member to join; none starts a new cluster. */
  join?: string;
  /** @default "test-secret" */
  secret?: string;
  /** Extra `node` flags. */
  args?: string[];
  /** Added to the environment. @default SHOAL_LOG_LEVEL=info */
  env?: Record<string, string>;
  /** @default 45000 */
  readyTimeoutMs?: number;
  /** HTTP listen address. @default "127.0.0.1:0" */
  http?: string;
  /** Run inside this network namespace (`ip netns exec`; needs root). */
  netns?: string;
  /** Flags for the runtime itself, before the script (e.g. Bun's `--cpu-prof`). */
  runtimeFlags?: string[];
}

/** The parts of a member's `GET /snapshot` answer the process tests read: members, partition counters, the table. */
export interface SnapshotJson {
  cluster: { members: { id: string }[]; partitions: { count: number; replicasMissing: number; migrating: number } };
  table: { ids: string[]; replicas: number[][] };
}

/**
 * Starts one member per runtime given, named a, b, c, … in order (the first forms the
 * cluster, the others join it), and waits until the first one's snapshot lists them all with
 * every replica placed and no partition migrating.
 * @returns the members in order, and that snapshot
 */
export async function startSettledCluster(
  runtimes: RuntimeKind[],
  timeoutMs = 90_000,
): Promise<{ members: Member[]; snap: SnapshotJson }> {
  const members: Member[] = [];
  for (const [i, runtime] of runtimes.entries()) {
    const name = String.fromCharCode(97 + i);
    members.push(await startMember({ name, runtime, ...(i > 0 ? { join: members[0].url } : {}) }));
  }
  return { members, snap: await settledSnapshot(members[0], members.length, timeoutMs) };
}

/** The one of `members` that holds the primary of `key`'s partition in `snap`, if any. */
export function primaryOf(members: Member[], snap: SnapshotJson, key: string): Member | undefined {
  return members.find((m) => m.id === replicasOf(snap, key)[0]);
}

/**
 * Starts `mod.ts node` and resolves once it printed its ready line.
 * @throws Error when the process ends or stays silent past the timeout (it is killed)
 */
export async function startMember(o: StartOptions): Promise<Member> {
  const runtime = o.runtime ?? (runtimeName() === "deno" ? "deno" : "bun");
  const args = [
    "node",
    "--name",
    o.name,
    "--http",
    o.http ?? "127.0.0.1:0",
    "--secret",
    o.secret ?? "test-secret",
    ...(o.join ? ["--join", o.join] : []),
    ...(o.args ?? []),
  ];
  const prefix = o.netns ? ["ip", "netns", "exec", o.netns] : [];
  const { child, ready, stderr } = spawnMod(
    runtime,
    args,
    { SHOAL_LOG_LEVEL: "info", ...o.env },
    prefix,
    o.runtimeFlags,
  );
  const timeoutMs = o.readyTimeoutMs ?? 45_000;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const line = await Promise.race([
      ready.catch((e: Error) => Promise.reject(new Error(`${o.name} ${e.message}`))),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`${o.name}: no ready line in ${timeoutMs} ms\n${stderr().slice(-3000)}`)),
          timeoutMs,
        );
      }),
    ]);
    const url = line.http;
    return {
      name: o.name,
      runtime,
      child,
      id: line.member,
      url,
      stderr,
      kill9: () => child.kill("SIGKILL"),
      get: (path) => fetch(url + path),
      json: <T>(path: string, timeoutMs?: number) => fetchJson<T>(url + path, {}, timeoutMs),
    };
  } catch (err) {
    child.kill("SIGKILL");
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/** Runs a `mod.ts` command to its end and returns its exit code and output. */
export function runToExit(
  runtime: RuntimeKind,
  args: string[],
  timeoutMs = 60_000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runScript([...launcher(runtime), `${root}/mod.ts`, ...args], {}, timeoutMs);
}

/**
 * Runs `cmd` in the repository root to its end (SIGKILL after `timeoutMs`).
 * @returns its exit code (128 + signal when killed) and output
 */
export async function runScript(
  cmd: string[],
  env: Record<string, string> = {},
  timeoutMs = 60_000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let stdout = "";
  const { child, stderr } = spawnProcess(cmd, { env, onStdoutLine: (line) => (stdout += line + "\n") });
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const code = await child.exited;
  clearTimeout(timer);
  return { code, stdout, stderr: stderr() };
}

/** A JSON-line event from a {@link Proc}. */
export type Event = Record<string, unknown> & { event?: string };

/** A script that reports JSON-line events on stdout and takes JSON-line commands on stdin. */
export class Proc {
  readonly events: Event[] = [];
  readonly exited: Promise<number>;
  #waiters: Array<() => void> = [];
  readonly #child: ChildHandle;
  readonly #stderr: () => string;

  constructor(readonly name: string, cmd: string[], env: Record<string, string> = {}) {
    const { child, stderr } = spawnProcess(cmd, {
      env,
      stdin: "pipe",
      onStdoutLine: (line) => {
        try {
          this.events.push(JSON.parse(line));
        } catch {
          return;
        }
        this.#wake();
      },
    });
    this.#child = child;
    this.#stderr = stderr;
    this.exited = child.exited;
    void this.exited.then(() => this.#wake());
  }

  /** The last 20,000 characters of stderr. */
  get stderr(): string {
    return this.#stderr().slice(-20_000);
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  /** Waits for the first event (after `from`) matching `pred`. */
  async waitFor(pred: (e: Event) => boolean, what: string, timeoutMs = 20_000, from = 0): Promise<Event> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.events.slice(from).find(pred);
      if (hit) return hit;
      if (this.#child.done) {
        throw new Error(`${this.name} exited (${this.#child.exitCode}) while waiting for ${what}\n${this.stderr}`);
      }
      if (Date.now() > end) throw new Error(`${this.name}: timed out waiting for ${what}\n${this.stderr}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.max(1, end - Date.now()));
        this.#waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  send(cmd: Record<string, unknown>): void {
    this.#child.write(JSON.stringify(cmd) + "\n");
  }

  /** Sends a command and waits for the reply event named `event` that arrives after it. */
  ask(cmd: Record<string, unknown>, event: string, timeoutMs = 20_000): Promise<Event> {
    const from = this.events.length;
    this.send(cmd);
    return this.waitFor(
      (e) => e.event === event && (cmd.id === undefined || e.id === cmd.id),
      `${event} for ${JSON.stringify(cmd)}`,
      timeoutMs,
      from,
    );
  }

  kill(signal: "SIGKILL" | "SIGTERM" = "SIGTERM"): void {
    this.#child.kill(signal);
  }
}

/** Starts `script` (path relative to the repository root) under `runtime` as a {@link Proc}. */
export function spawnScript(name: string, runtime: RuntimeKind, script: string, args: string[]): Proc {
  return new Proc(name, [...launcher(runtime), script, ...args], { NO_COLOR: "1" });
}
