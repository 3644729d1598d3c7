/**
 * Starting child processes on Bun (`Bun.spawn`) and Deno (`Deno.Command`) through one
 * call, plus the command line that runs `mod.ts` under the current runtime. Children get
 * piped stdout/stderr read as text lines, and can be killed with a real signal.
 */

// deno-lint-ignore no-explicit-any
const g = globalThis as any;

/** What {@link spawnChild} needs. */
export interface SpawnOptions {
  /** Working directory. @default the current one */
  cwd?: string;
  /** Extra environment variables, added to the inherited environment. */
  env?: Record<string, string>;
  /** Called with each complete stdout line (without the newline). */
  onStdoutLine?: (line: string) => void;
  /** Called with each complete stderr line (without the newline). */
  onStderrLine?: (line: string) => void;
  /** "pipe" to write to the child's stdin with {@link ChildHandle.write}. @default closed */
  stdin?: "pipe";
}

/** Signals {@link ChildHandle.kill} can send (SIGSTOP/SIGCONT freeze and thaw it). */
export type ChildSignal = "SIGKILL" | "SIGTERM" | "SIGINT" | "SIGSTOP" | "SIGCONT";

/** A running child process. */
export interface ChildHandle {
  /** Operating-system process id. */
  readonly pid: number;
  /** Resolves with the exit code once the process ended (128 + signal number when killed). */
  readonly exited: Promise<number>;
  /** True once the process has ended. */
  readonly done: boolean;
  /** The exit code as {@link exited} reports it, or null while the process runs. */
  readonly exitCode: number | null;
  /** Sends `signal` (default SIGKILL); a process that already ended is left alone. */
  kill(signal?: ChildSignal): void;
  /**
   * Writes `text` to the child's stdin (started with `stdin: "pipe"`).
   * @throws Error when stdin is not piped
   */
  write(text: string): void;
}

const signalNumbers: Record<ChildSignal, number> = { SIGINT: 2, SIGKILL: 9, SIGTERM: 15, SIGCONT: 18, SIGSTOP: 19 };

function noStdin(): never {
  throw new Error('Cannot write to the child: it was started without stdin: "pipe"');
}

/** Largest partial line kept while waiting for its newline. */
const maxLineChars = 1_000_000;

async function readLines(
  stream: ReadableStream<Uint8Array> | null | undefined,
  onLine: ((line: string) => void) | undefined,
): Promise<void> {
  if (!stream) return;
  const dec = new TextDecoder();
  let buf = "";
  try {
    for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) {
      buf += dec.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        onLine?.(line);
      }
      if (buf.length > maxLineChars) buf = buf.slice(-maxLineChars);
    }
  } catch {
    // The pipe broke because the child died; what was read is all there is.
  }
  buf += dec.decode();
  if (buf.length > 0) onLine?.(buf);
}

/**
 * Starts `cmd[0]` with arguments `cmd.slice(1)`, stdin closed, stdout and stderr piped.
 *
 * @param cmd the program and its arguments
 * @param options working directory, environment, line callbacks
 * @returns a handle to the child
 * @throws Error when the runtime is neither Bun nor Deno, or the program cannot start
 * @example
 * ```ts
 * const child = spawnChild(["echo", "hi"], { onStdoutLine: (l) => console.log(l) });
 * console.log(await child.exited); // 0
 * ```
 */
export function spawnChild(cmd: readonly string[], options: SpawnOptions = {}): ChildHandle {
  if (cmd.length === 0) throw new RangeError("Cannot spawn: empty command");
  const env = options.env ?? {};
  let done = false;
  let exitCode: number | null = null;
  if (g.Bun) {
    const proc = g.Bun.spawn([...cmd], {
      cwd: options.cwd,
      env: { ...g.process.env, ...env },
      stdin: options.stdin ?? "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    const reading = Promise.all([
      readLines(proc.stdout, options.onStdoutLine),
      readLines(proc.stderr, options.onStderrLine),
    ]);
    const exited = (async () => {
      const code: number = await proc.exited;
      await reading;
      done = true;
      const status = proc.signalCode ? 128 + (signalNumbers[proc.signalCode as ChildSignal] ?? 0) : code;
      exitCode = status;
      return status;
    })();
    return {
      pid: proc.pid,
      exited,
      get done() {
        return done || proc.exitCode !== null || proc.signalCode !== null;
      },
      get exitCode() {
        return exitCode;
      },
      write(text: string) {
        if (!options.stdin) noStdin();
        proc.stdin.write(text);
        proc.stdin.flush();
      },
      kill(signal: ChildSignal = "SIGKILL") {
        if (proc.exitCode !== null || proc.signalCode !== null) return;
        try {
          proc.kill(signalNumbers[signal]);
        } catch {
          // Already gone.
        }
      },
    };
  }
  if (g.Deno) {
    const child = new g.Deno.Command(cmd[0], {
      args: cmd.slice(1),
      cwd: options.cwd,
      env,
      stdin: options.stdin ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stdin = options.stdin ? child.stdin.getWriter() : undefined;
    const encoder = new TextEncoder();
    let ended = false;
    const reading = Promise.all([
      readLines(child.stdout, options.onStdoutLine),
      readLines(child.stderr, options.onStderrLine),
    ]);
    const exited = (async () => {
      const status = await child.status;
      ended = true;
      await reading;
      done = true;
      const code: number = status.signal ? 128 + (signalNumbers[status.signal as ChildSignal] ?? 0) : status.code;
      exitCode = code;
      return code;
    })();
    return {
      pid: child.pid,
      exited,
      get done() {
        return done || ended;
      },
      get exitCode() {
        return exitCode;
      },
      write(text: string) {
        if (!stdin) noStdin();
        void stdin.write(encoder.encode(text)).catch(() => {
          // The child is gone; what it did not read is lost with it.
        });
      },
      kill(signal: ChildSignal = "SIGKILL") {
        if (ended) return;
        try {
          child.kill(signal);
        } catch {
          // Already gone.
        }
      },
    };
  }
  throw new Error("Cannot spawn a child process: only Bun and Deno are supported");
}

/**
 * The command line that runs the script `modPath` under the current runtime:
 * `[bun, "run", modPath]` under Bun, `[deno, "run", "-A", modPath]` under Deno, with the
 * absolute path of the running runtime's executable.
 *
 * @param modPath path of the script to run
 * @returns the program and its arguments up to the script
 */
export function runtimeScriptCommand(modPath: string): string[] {
  if (g.Bun) return [g.process.execPath, "run", modPath];
  if (g.Deno) return [g.Deno.execPath(), "run", "-A", modPath];
  throw new Error("Cannot run a script: only Bun and Deno are supported");
}
