/**
 * Process access the CLI needs beyond `src/runtime/process.ts`: a snapshot of the whole
 * environment, the working directory, and both stop signals behind one listener.
 */
import { onSignal } from "../runtime/process.ts";

export { runtimeName, writeStdoutLine } from "../runtime/process.ts";

// deno-lint-ignore no-explicit-any
const g = globalThis as any;

/** A snapshot of the environment; empty when Deno runs without --allow-env. */
export function processEnv(): Record<string, string | undefined> {
  try {
    if (g.Deno) return g.Deno.env.toObject();
    return { ...g.process.env };
  } catch {
    return {};
  }
}

/** The current working directory, or undefined when it cannot be read. */
export function currentDir(): string | undefined {
  try {
    return g.Deno ? g.Deno.cwd() : g.process.cwd();
  } catch {
    return undefined;
  }
}

/** Termination signals the CLI handles for a graceful shutdown. */
export type StopSignal = "SIGINT" | "SIGTERM";

/**
 * Calls `handler` on every SIGINT or SIGTERM until the returned function removes the
 * listeners. While installed, the signals no longer end the process by default.
 */
export function onStopSignal(handler: (signal: StopSignal) => void): () => void {
  const removers: (() => void)[] = [];
  for (const s of ["SIGINT", "SIGTERM"] as const) {
    try {
      removers.push(onSignal(s, () => handler(s)));
    } catch {
      // This signal is not supported here (e.g. SIGTERM on Windows).
    }
  }
  return () => removers.forEach((r) => r());
}
