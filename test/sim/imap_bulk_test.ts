/**
 * Large `putAll` batches from a lite client under 5 % loss, event-loop stalls and a member
 * joining mid-load (see imap_bulk.ts): no acknowledged entry may be missing or rolled back,
 * and `size()` must match both what getAll finds and what the primaries hold. A failing
 * run prints its seed; `SEED=n bun test test/sim/imap_bulk_test.ts` replays it.
 */
import { describe, expect, test } from "bun:test";
import { envVar } from "../../src/sim/seed.ts";
import { type BulkOptions, runBulk } from "./imap_bulk.ts";

const FILE = "test/sim/imap_bulk_test.ts";
const single = envVar("SEED");

async function check(o: BulkOptions): Promise<void> {
  const r = await runBulk(o);
  if (r.problems.length) {
    console.error(
      `seed ${o.seed} failed (replay: SEED=${o.seed} bun test ${FILE}): ${r.problems.slice(0, 3).join("; ")}`,
    );
  }
  expect(r.problems).toEqual([]);
  expect(r.stats.joined).toBe(o.joinInRound !== -1);
  expect(r.stats.checkedKeys).toBe((o.maps ?? 2) * (o.keys ?? 20_000));
}

describe("IMap bulk load", () => {
  if (single !== undefined && single !== "") {
    test(`seed ${single}`, () => check({ seed: Number(single), verbose: true }), 300_000);
    return;
  }
  for (const seed of [1, 2, 3]) {
    test(
      `seed ${seed}: 2 maps × 20,000 keys, putAll ×5,000, 2 rounds, 5 % loss, stalls, a member joins: nothing acknowledged lost, size() exact`,
      () => check({ seed }),
      120_000,
    );
  }
  test(
    "seed 7: 100,000 entries in 2 maps through the codec, 3 putAll in flight per map, stalls up to 2 s",
    () => check({ seed: 7, maps: 2, keys: 50_000, inFlight: 3, rounds: 1, encode: true, maxStallMs: 2000 }),
    180_000,
  );
});
