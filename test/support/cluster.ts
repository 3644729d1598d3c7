/**
 * Real member processes for multi-process tests: `bun run mod.ts …` or
 * `deno run -A mod.ts …`, each with its own HTTP port, read through their REST API and
 * killed with a real SIGKILL.
 */
import type { Subprocess } from "bun";
import { fetchJson } from "../../src/runtime/fetch_json.ts";
import { waitUntil } from "../../src/runtime/wait_until.ts";

export const root = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
export type RuntimeKind = "bun" | "deno";

export interface Member {
  name: string;
  runtime: RuntimeKind;
  proc: Subprocess<"ignore", "pipe", "pipe">;
  id: string;
  url: string;
  stderr(): string;
  kill9(): void;
  get(path: string): Promise<Response>;
  /** GET `path` as JSON; throws on a status other than 2xx. */
  json<T = any>(path: string): Promise<T>;
}

const running: Subprocess[] = [];

export function launcher(runtime: RuntimeKind): string[] {
  return runtime === "bun" ? ["bun", "run"] : ["deno", "run", "-A"];
}

export interface StartOptions {
  name: string;
  runtime: RuntimeKind;
  join?: string;
  secret?: string;
  args?: string[];
  env?: Record<string, string>;
  /** @default 45000 */
  readyTimeoutMs?: number;
}

/** A `mod.ts` process started by {@link spawnMod}. */
export interface ModProcess {
  proc: Subprocess<"ignore", "pipe", "pipe">;
  /** Resolves with the parsed ready line; rejects when stdout ends without one. Never counts as unhandled. */
  ready: Promise<Record<string, string>>;
  /** Everything written to stderr so far (the last 2-4 MB). */
  stderr(): string;
}

/**
 * Starts `mod.ts …args` under `runtime` with `env` added to this process's environment.
 * Its stdout is read for the ready line (`{"event":"ready",…}`), its stderr is kept.
 */
export function spawnMod(runtime: RuntimeKind, args: string[], env: Record<string, string> = {}): ModProcess {
  const proc = Bun.spawn([...launcher(runtime), "mod.ts", ...args], {
    cwd: root,
    env: { ...process.env, ...env },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  running.push(proc);
  let err = "";
  void (async () => {
    const dec = new TextDecoder();
    for await (const chunk of proc.stderr) {
      err += dec.decode(chunk, { stream: true });
      if (err.length > 4_000_000) err = err.slice(-2_000_000);
    }
  })();
  const ready = new Promise<Record<string, string>>((resolve, reject) => {
    void (async () => {
      const dec = new TextDecoder();
      let buf = "";
      // Read to the end (resolving at the ready line) so the pipe never fills up.
      for await (const chunk of proc.stdout) {
        buf += dec.decode(chunk, { stream: true });
        const lines = buf.split("\n");
        buf = lines.pop() ?? "";
        for (const line of lines) if (line.includes('"event":"ready"')) resolve(JSON.parse(line));
      }
      reject(new Error(`exited (${proc.exitCode}) without a ready line\n${err.slice(-3000)}`));
    })();
  });
  // Callers that expect an exit never await `ready`.
  ready.catch(() => {});
  return { proc, ready, stderr: () => err };
}

/** Starts a member and resolves once it printed its ready line. */
export async function startMember(o: StartOptions): Promise<Member> {
  const args = [
    "node",
    "--name",
    o.name,
    "--http",
    "127.0.0.1:0",
    "--secret",
    o.secret ?? "test-secret",
    ...(o.join ? ["--join", o.join] : []),
    ...(o.args ?? []),
  ];
  const { proc, ready, stderr } = spawnMod(o.runtime, args, { SHOAL_LOG_LEVEL: "info", ...o.env });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const line = await Promise.race([
    ready.catch((e: Error) => Promise.reject(new Error(`${o.name} ${e.message}`))),
    new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${o.name}: no ready line in time\n${stderr().slice(-3000)}`)),
        o.readyTimeoutMs ?? 45_000,
      );
    }),
  ]).finally(() => clearTimeout(timer));
  const url = line.http;
  return {
    name: o.name,
    runtime: o.runtime,
    proc,
    id: line.member,
    url,
    stderr,
    kill9: () => proc.kill(9),
    get: (path) => fetch(url + path),
    json: (path) => fetchJson(url + path),
  };
}

/** Runs a member command to its end and returns its exit code and output. */
export async function runToExit(
  runtime: RuntimeKind,
  args: string[],
  timeoutMs = 60_000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const proc = Bun.spawn([...launcher(runtime), "mod.ts", ...args], {
    cwd: root,
    env: { ...process.env },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  running.push(proc);
  const timer = setTimeout(() => proc.kill(9), timeoutMs);
  const [stdout, stderr] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  await proc.exited;
  clearTimeout(timer);
  return { code: proc.exitCode, stdout, stderr };
}

/** Polls `f` every 50 ms until it returns a value other than undefined (see {@link waitUntil}). */
export function until<T>(
  f: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 20_000,
  what = "condition",
): Promise<T> {
  return waitUntil(f, { timeoutMs, what, everyMs: 50 });
}

/** Kills every process started here that is still running. */
export function killAll(): void {
  for (const p of running) if (p.exitCode === null && !p.killed) p.kill(9);
  running.length = 0;
}
