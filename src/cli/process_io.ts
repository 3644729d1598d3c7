/**
 * Process access the CLI needs beyond `src/runtime/process.ts`: both stop signals behind
 * one listener.
 */
import { onSignal } from "../runtime/process.ts";

export { currentDir, envSnapshot as processEnv, runtimeName, writeStdoutLine } from "../runtime/process.ts";

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
