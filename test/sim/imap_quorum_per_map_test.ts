/**
 * Per-map split-brain protection (`maps: { "pattern": { minClusterSize } }`) in the
 * simulator: a 3 + 2 split of 5 members. A map's override wins over the member-wide
 * setting both ways: a protected map refuses on the minority while the others stay
 * available there (AP), and a map that opts out stays available on a protected cluster.
 * Everything serves again after the heal. `SEED=n` replays a run.
 */
import { describe, expect, test } from "bun:test";
import { withSeed } from "../../src/sim/seed.ts";
import { runPerMapSplit } from "./imap_quorum.ts";

const FILE = "test/sim/imap_quorum_per_map_test.ts";
const all = (answer: string) => Array(4).fill(answer);

describe("per-map split-brain protection (3 + 2 split)", () => {
  test(
    "protection off member-wide, on for safe*: only safe* refuses on the minority",
    () =>
      withSeed(FILE, 61, async (seed) => {
        const r = await runPerMapSplit({
          seed,
          minClusterSize: 0,
          maps: { "safe*": { minClusterSize: 3 } },
          names: ["safe-orders", "plain"],
        });
        expect(r.problems).toEqual([]);
        expect(r.minority).toEqual({ "safe-orders": all("QUORUM"), plain: all("ok") });
        expect(r.majority).toEqual({ "safe-orders": Array(6).fill("ok"), plain: Array(6).fill("ok") });
        expect(r.afterHeal).toEqual({ "safe-orders": Array(10).fill("ok"), plain: Array(10).fill("ok") });
      }),
    300_000,
  );

  test(
    "protection on member-wide, off for cache*: cache* still serves on the minority",
    () =>
      withSeed(FILE, 62, async (seed) => {
        const r = await runPerMapSplit({
          seed,
          minClusterSize: 3,
          maps: { "cache*": { minClusterSize: 0 } },
          names: ["cache-users", "plain"],
        });
        expect(r.problems).toEqual([]);
        expect(r.minority).toEqual({ "cache-users": all("ok"), plain: all("QUORUM") });
        expect(r.majority).toEqual({ "cache-users": Array(6).fill("ok"), plain: Array(6).fill("ok") });
        expect(r.afterHeal).toEqual({ "cache-users": Array(10).fill("ok"), plain: Array(10).fill("ok") });
      }),
    300_000,
  );
});
