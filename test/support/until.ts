/**
 * The one polling helper of the tests and benches, for conditions they do not drive
 * themselves (real sockets, other processes, a REST API). Runs under Bun and Deno.
 * Simulations drive virtual time instead (`Simulation.runUntil`).
 */
import { waitUntil } from "../../src/runtime/wait_until.ts";

/**
 * Polls `probe` every `everyMs` until it returns something other than `undefined` or
 * `false`, and resolves with that. A probe that throws counts as "not yet".
 *
 * @param probe a predicate, or a function returning the awaited value (undefined while absent)
 * @param timeoutMs give up after this long
 * @param what what is awaited, for the error message
 * @param everyMs pause between two probes
 * @throws TimeoutError after `timeoutMs`, naming `what` and the last error the probe threw
 * @example
 * ```ts
 * await until(() => a.peers().includes("b"), 15_000, "a sees b");
 * const members = await until(async () => (await m.json("/cluster")).members.length === 3 ? true : undefined);
 * ```
 */
export function until<T>(
  probe: () => Promise<T | false | undefined> | T | false | undefined,
  timeoutMs = 20_000,
  what = "condition",
  everyMs = 50,
): Promise<T> {
  return waitUntil<T>(async () => {
    const v = await probe();
    return v === false ? undefined : v;
  }, { timeoutMs, what, everyMs });
}
