/**
 * The few process-level things that differ between Deno, Bun and Node: which runtime is
 * running, environment variables, exit, signal handlers and command-line arguments.
 */

// deno-lint-ignore no-explicit-any
const g = globalThis as any;

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
  if (g.Bun) return "bun";
  if (g.Deno) return "deno";
  return "node";
}

/**
 * Reads an environment variable.
 * @param name the variable name
 * @returns its value, or undefined when unset (or when Deno has no env permission)
 */
export function env(name: string): string | undefined {
  if (g.Deno) {
    try {
      return g.Deno.env.get(name) ?? undefined;
    } catch {
      return undefined;
    }
  }
  return g.process?.env?.[name];
}

/**
 * Ends the process with `code`.
 * @param code exit status
 */
export function exit(code: number): never {
  if (g.Deno) g.Deno.exit(code);
  g.process.exit(code);
  throw new Error("unreachable");
}

/**
 * Calls `fn` when the process receives `signal`.
 * @param signal "SIGINT" or "SIGTERM"
 * @param fn the handler
 * @returns a function that removes the handler
 */
export function onSignal(signal: "SIGINT" | "SIGTERM", fn: () => void): () => void {
  if (g.Deno) {
    g.Deno.addSignalListener(signal, fn);
    return () => g.Deno.removeSignalListener(signal, fn);
  }
  g.process.on(signal, fn);
  return () => g.process.off(signal, fn);
}

/** The command-line arguments after the script name. */
export function args(): string[] {
  return g.Deno ? [...g.Deno.args] : g.process.argv.slice(2);
}

/**
 * Writes one line to stdout without buffering surprises (used for machine-read lines such
 * as `{"event":"ready"}`).
 * @param line the text, without the trailing newline
 */
export function writeStdoutLine(line: string): void {
  if (g.Deno) g.Deno.stdout.writeSync(new TextEncoder().encode(line + "\n"));
  else g.process.stdout.write(line + "\n");
}
