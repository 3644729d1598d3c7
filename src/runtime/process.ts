/**
 * The few process-level things that differ between Deno, Bun and Node: which runtime is
 * running, environment variables, exit, signal handlers and command-line arguments.
 */

import { bun, deno, exposedGc, type MemoryUsage, nodeProcess } from "./globals.ts";

/** The runtime this code runs on. */
export type RuntimeName = "bun" | "deno" | "node";

/**
 * Names the current runtime.
 * @returns "bun", "deno" or "node"
 * @example
 * ```ts
 * console.log(runtimeName()); // "bun" under `bun run`
 * ```
 */
export function runtimeName(): RuntimeName {
  if (bun) return "bun";
  if (deno) return "deno";
  return "node";
}

/** The runtime and its version, e.g. "bun 1.2.3" or "deno 2.1.0", for bench and log lines. */
export function runtimeVersion(): string {
  if (bun) return `bun ${bun.version}`;
  if (deno) return `deno ${deno.version.deno}`;
  return "node";
}

/**
 * Reads an environment variable.
 * @param name the variable name
 * @returns its value, or undefined when unset (or when Deno has no env permission)
 */
export function env(name: string): string | undefined {
  if (deno) {
    try {
      return deno.env.get(name) ?? undefined;
    } catch {
      return undefined;
    }
  }
  return nodeProcess?.env[name];
}

/**
 * Ends the process with `code`.
 * @param code exit status
 */
export function exit(code: number): never {
  if (deno) deno.exit(code);
  if (nodeProcess) nodeProcess.exit(code);
  throw new Error(`exit(${code}) without a Deno or process global`);
}

/**
 * Calls `fn` when the process receives `signal`.
 * @param signal "SIGINT" or "SIGTERM"
 * @param fn the handler
 * @returns a function that removes the handler
 */
export function onSignal(signal: "SIGINT" | "SIGTERM", fn: () => void): () => void {
  if (deno) {
    const d = deno;
    d.addSignalListener(signal, fn);
    return () => d.removeSignalListener(signal, fn);
  }
  const p = nodeProcess;
  if (!p) return () => {};
  p.on(signal, fn);
  return () => p.off(signal, fn);
}

/** The command-line arguments after the script name. */
export function args(): string[] {
  if (deno) return [...deno.args];
  return nodeProcess ? nodeProcess.argv.slice(2) : [];
}

/**
 * Writes one line to stdout without buffering surprises (used for machine-read lines such
 * as `{"event":"ready"}`).
 * @param line the text, without the trailing newline
 */
export function writeStdoutLine(line: string): void {
  if (deno) deno.stdout.writeSync(new TextEncoder().encode(line + "\n"));
  else if (nodeProcess) nodeProcess.stdout.write(line + "\n");
  else console.log(line);
}

/**
 * Writes one line to stderr (the JSON log lines); console.error where there is no stderr.
 * @param line the text, without the trailing newline
 */
export function writeStderrLine(line: string): void {
  if (deno) deno.stderr.writeSync(new TextEncoder().encode(line + "\n"));
  else if (nodeProcess) nodeProcess.stderr.write(line + "\n");
  else console.error(line);
}

/** A snapshot of the environment; empty when Deno runs without --allow-env. */
export function envSnapshot(): Record<string, string | undefined> {
  try {
    if (deno) return deno.env.toObject();
    return { ...nodeProcess?.env };
  } catch {
    return {};
  }
}

/** The current working directory, or undefined when it cannot be read. */
export function currentDir(): string | undefined {
  try {
    if (deno) return deno.cwd();
    return nodeProcess?.cwd();
  } catch {
    return undefined;
  }
}

/** The path of the runtime's executable (to start another process on the same runtime). */
export function execPath(): string {
  if (deno) return deno.execPath();
  if (nodeProcess) return nodeProcess.execPath;
  throw new Error("no runtime executable path on this runtime");
}

/**
 * This process's memory in bytes: resident set size, and the JavaScript heap's reserved and
 * used bytes (used includes garbage not yet collected). Undefined where the runtime has no such call.
 */
export function memoryUsage(): MemoryUsage | undefined {
  try {
    const m = deno ? deno.memoryUsage() : nodeProcess?.memoryUsage();
    return m && { rss: m.rss, heapTotal: m.heapTotal, heapUsed: m.heapUsed, external: m.external ?? 0 };
  } catch {
    return undefined;
  }
}

/**
 * Runs a full, synchronous garbage collection that also gives the heap's free pages back to the
 * system (V8's "last-resort" flavour: a plain `gc()` empties pages but keeps them, so RSS does
 * not move), if the runtime was started with `--expose-gc` (see {@link exposedGc}); a production
 * member never is, so this does nothing there. @returns whether a collection ran
 */
export function collectGarbage(): boolean {
  const gc = exposedGc();
  if (!gc) return false;
  gc({ type: "major", execution: "sync", flavor: "last-resort" });
  return true;
}
