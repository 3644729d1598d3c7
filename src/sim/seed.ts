/**
 * Seeds for replayable simulations: `SEED=123 bun test file` replays one run, and a
 * failing run names its seed and the command that replays it.
 */

import { env } from "../runtime/process.ts";

/** Reads an environment variable under Bun, Node or Deno; undefined when absent or not permitted. */
export const envVar: (name: string) => string | undefined = env;

/** The seed from `SEED` in the environment, else `fallback`. */
export function seedFromEnv(fallback: number): number {
  const s = envVar("SEED");
  if (s === undefined || s === "") return fallback;
  const n = Number(s);
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`Cannot use SEED=${s}: not a non-negative integer`);
  return n;
}

/** The command that replays a seeded run of a test file. */
export function replayCommand(seed: number, testFile: string): string {
  return `SEED=${seed} bun test ${testFile}`;
}

/**
 * Runs `fn` with the seed from the environment (or `fallback`). On failure it prints the
 * seed and the replay command and rethrows with both in the message.
 * @param testFile the test file path relative to the repository root, for the replay command
 */
export async function withSeed<T>(testFile: string, fallback: number, fn: (seed: number) => Promise<T>): Promise<T> {
  const seed = seedFromEnv(fallback);
  try {
    return await fn(seed);
  } catch (err) {
    const cmd = replayCommand(seed, testFile);
    console.error(`simulation failed with seed ${seed}; replay with: ${cmd}`);
    const msg = err instanceof Error ? err.message : String(err);
    throw new Error(`${msg}\n  seed: ${seed}\n  replay: ${cmd}`, { cause: err });
  }
}
