/**
 * Polling with a deadline in real time, for shells that watch something they do not control
 * (other processes, a REST API): scripts, benches and multi-process tests. Protocol code
 * waits on its injected Clock instead.
 */
import { TimeoutError } from "../core/errors.ts";

/** What {@link waitUntil} needs besides the probe. */
export interface WaitUntilOptions {
  /** Give up after this long. */
  timeoutMs: number;
  /** Pause between two probes. @default 50 */
  everyMs?: number;
  /** What is awaited, for the error message. @default "condition" */
  what?: string;
}

/**
 * Calls `probe` every `everyMs` until it returns something other than undefined. A probe
 * that throws (a request to a process still starting, say) counts as "not yet".
 *
 * @param probe returns the awaited value, or undefined while it is not there
 * @param options timeout, poll interval and a description of what is awaited
 * @returns the first value `probe` returned other than undefined
 * @throws TimeoutError after `timeoutMs`, naming `what` and the last error `probe` threw
 * @example
 * ```ts
 * const view = await waitUntil(async () => {
 *   const v = await (await fetch("http://127.0.0.1:7000/cluster")).json();
 *   return v.members.length === 3 ? v : undefined;
 * }, { timeoutMs: 30_000, what: "3 members" });
 * ```
 */
export async function waitUntil<T>(
  probe: () => Promise<T | undefined> | T | undefined,
  options: WaitUntilOptions,
): Promise<T> {
  const { timeoutMs, everyMs = 50, what = "condition" } = options;
  const end = performance.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (performance.now() > end) {
      throw new TimeoutError(`${what}: not reached in ${timeoutMs} ms${last ? ` (last error: ${last})` : ""}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
