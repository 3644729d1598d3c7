/**
 * Registering a seeded simulation as a bun:test case, the one way the simulation tests do it:
 * the body runs under `withSeed`, so `SEED=n bun test <file>` replays it and a failure names
 * its seed and the command that replays it.
 */
import { test } from "bun:test";
import { withSeed } from "../../src/sim/seed.ts";

/** A test case whose body gets the seed to run with. */
export type SeededTest = (
  name: string,
  seed: number,
  body: (seed: number) => Promise<void>,
  timeoutMs?: number,
) => void;

/**
 * The test registrar of one test file.
 * @param file the test file's path from the repository root (for the replay command)
 * @example
 * ```ts
 * const seeded = seededTest("test/sim/cluster_split_test.ts");
 * seeded("the smaller side merges into the larger", 22, async (seed) => { … }, 60_000);
 * ```
 */
export function seededTest(file: string): SeededTest {
  return (name, seed, body, timeoutMs) => {
    const run = () => withSeed(file, seed, body);
    if (timeoutMs === undefined) test(name, run);
    else test(name, run, timeoutMs);
  };
}
