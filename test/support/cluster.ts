/**
 * Real member processes for multi-process tests: `bun run mod.ts …` or
 * `deno run -A mod.ts …`, each with its own HTTP port, read through their REST API and
 * killed with a real SIGKILL.
 */
import type { Subprocess } from "bun";

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

/** Starts a member and resolves once it printed its ready line. */
export async function startMember(o: StartOptions): Promise<Member> {
  const args = ["mod.ts", "node", "--name", o.name, "--http", "127.0.0.1:0", "--secret", o.secret ?? "test-secret", ...(o.join ? ["--join", o.join] : []), ...(o.args ?? [])];
  const proc = Bun.spawn([...launcher(o.runtime), ...args], {
    cwd: root,
    env: { ...process.env, SHOAL_LOG_LEVEL: "info", ...o.env },
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
  const ready = await new Promise<Record<string, string>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${o.name}: no ready line in time\n${err.slice(-3000)}`)), o.readyTimeoutMs ?? 45_000);
    void (async () => {
      const dec = new TextDecoder();
      let buf = "";
      for await (const chunk of proc.stdout) {
        buf += dec.decode(chunk, { stream: true });
        const lines = buf.split("\n");
        buf = lines.pop() ?? "";
        for (const line of lines) {
          if (line.includes('"event":"ready"')) {
            clearTimeout(timer);
            resolve(JSON.parse(line));
          }
        }
      }
      clearTimeout(timer);
      reject(new Error(`${o.name} exited (${proc.exitCode}) without a ready line\n${err.slice(-3000)}`));
    })();
  });
  const url = ready.http;
  return {
    name: o.name,
    runtime: o.runtime,
    proc,
    id: ready.member,
    url,
    stderr: () => err,
    kill9: () => proc.kill(9),
    get: (path) => fetch(url + path),
    json: async (path) => {
      const r = await fetch(url + path, { signal: AbortSignal.timeout(5_000) });
      return r.json();
    },
  };
}

/** Runs a member command to its end and returns its exit code and output. */
export async function runToExit(runtime: RuntimeKind, args: string[], timeoutMs = 60_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const proc = Bun.spawn([...launcher(runtime), "mod.ts", ...args], { cwd: root, env: { ...process.env }, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  running.push(proc);
  const timer = setTimeout(() => proc.kill(9), timeoutMs);
  const [stdout, stderr] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  await proc.exited;
  clearTimeout(timer);
  return { code: proc.exitCode, stdout, stderr };
}

/** Polls `f` until it returns a value other than undefined. */
export async function until<T>(f: () => Promise<T | undefined> | T | undefined, timeoutMs = 20_000, what = "condition"): Promise<T> {
  const end = performance.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await f();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (performance.now() > end) throw new Error(`${what} not reached in ${timeoutMs} ms${last ? `: ${last}` : ""}`);
    await Bun.sleep(50);
  }
}

/** Kills every process started here that is still running. */
export function killAll(): void {
  for (const p of running) if (p.exitCode === null && !p.killed) p.kill(9);
  running.length = 0;
}
