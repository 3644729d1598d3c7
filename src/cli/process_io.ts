/**
 * The process-level things the CLI needs that differ between Deno, Bun and Node:
 * environment, runtime name, termination signals.
 */

// deno-lint-ignore no-explicit-any
const g = globalThis as any;

/** "deno" | "bun" | "node" */
export function runtimeName(): "deno" | "bun" | "node" {
  if (g.Deno) return "deno";
  if (g.Bun) return "bun";
  return "node";
}

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
  const signals: StopSignal[] = ["SIGINT", "SIGTERM"];
  const listeners = signals.map((s) => [s, () => handler(s)] as const);
  for (const [s, l] of listeners) {
    try {
      if (g.Deno) g.Deno.addSignalListener(s, l);
      else g.process.on(s, l);
    } catch {
      // Signals are not supported here (e.g. SIGTERM on Windows); nothing to listen for.
    }
  }
  return () => {
    for (const [s, l] of listeners) {
      try {
        if (g.Deno) g.Deno.removeSignalListener(s, l);
        else g.process.off(s, l);
      } catch {
        // Listener was never installed.
      }
    }
  };
}
