/**
 * Child processes for multi-process tests (bun:test only): spawn, read JSON-line events
 * from stdout, write JSON-line commands to stdin, kill.
 */
import type { Subprocess } from "bun";

const ROOT = new URL("../../", import.meta.url).pathname;
const BIN = `${ROOT}node_modules/.bin/`;

export type Event = Record<string, unknown> & { event?: string };

export class Proc {
  readonly events: Event[] = [];
  stderr = "";
  exited: Promise<number>;
  #waiters: Array<() => void> = [];
  constructor(readonly name: string, readonly p: Subprocess<"pipe", "pipe", "pipe">) {
    this.exited = p.exited;
    void this.#read(p.stdout, (line) => {
      try {
        this.events.push(JSON.parse(line));
      } catch {
        return;
      }
      for (const w of this.#waiters.splice(0)) w();
    });
    void this.#read(p.stderr, (line) => {
      this.stderr = (this.stderr + line + "\n").slice(-20_000);
    });
    void this.exited.then(() => {
      for (const w of this.#waiters.splice(0)) w();
    });
  }

  async #read(stream: ReadableStream<Uint8Array>, onLine: (line: string) => void) {
    const dec = new TextDecoder();
    let buf = "";
    for await (const chunk of stream) {
      buf += dec.decode(chunk, { stream: true });
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        onLine(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    }
  }

  /** Waits for the first event (after `from`) matching `pred`. */
  async waitFor(pred: (e: Event) => boolean, what: string, timeoutMs = 20_000, from = 0): Promise<Event> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.events.slice(from).find(pred);
      if (hit) return hit;
      if (this.p.exitCode !== null) {
        throw new Error(`${this.name} exited (${this.p.exitCode}) while waiting for ${what}\n${this.stderr}`);
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
    this.p.stdin.write(JSON.stringify(cmd) + "\n");
    this.p.stdin.flush();
  }

  /** Sends a command and waits for the reply event named `event` that arrives after it. */
  async ask(cmd: Record<string, unknown>, event: string, timeoutMs = 20_000): Promise<Event> {
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
    if (this.p.exitCode === null) this.p.kill(signal);
  }
}

/** Spawns `bun run` or `deno run -A` on a script (path relative to the repo root). */
export function spawnScript(name: string, runtime: "bun" | "deno", script: string, args: string[]): Proc {
  const cmd = runtime === "bun" ? [`${BIN}bun`, "run", script, ...args] : [`${BIN}deno`, "run", "-A", script, ...args];
  const p = Bun.spawn(cmd, {
    cwd: ROOT,
    stdin: "pipe",
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, NO_COLOR: "1" },
  });
  return new Proc(name, p);
}
