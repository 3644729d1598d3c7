/**
 * The replay of one IMap chaos run, shared by the chaos test files: `SEED=n bun test <file>`
 * runs seed n alone with a narrated trace instead of the file's batches.
 */
import { expect, test } from "bun:test";
import { envVar } from "../../src/sim/seed.ts";
import { type ChaosOptions, runChaos } from "./imap_chaos.ts";

/**
 * With `SEED` set, registers the one test that replays that seed with `opts` (narrated).
 * @returns whether it did (the caller then registers nothing else)
 */
export function replayChaosSeed(opts: Omit<ChaosOptions, "seed" | "verbose"> = {}): boolean {
  const single = envVar("SEED");
  if (single === undefined || single === "") return false;
  test(`seed ${single}`, async () => {
    const r = await runChaos({ seed: Number(single), ...opts, verbose: true });
    console.log(JSON.stringify(r.stats));
    expect(r.problems).toEqual([]);
  }, 120_000);
  return true;
}
