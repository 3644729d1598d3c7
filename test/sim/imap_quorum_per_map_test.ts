/**
 * Per-map split-brain protection (`maps: { "pattern": { minClusterSize } }`) in the
 * simulator: a 3 + 2 split of 5 members. A map's override wins over the member-wide
 * setting both ways: a protected map refuses on the minority while the others stay
 * available there (AP), and a map that opts out stays available on a protected cluster.
 * Everything serves again after the heal. `SEED=n` replays a run.
 */
import { describe, expect } from "bun:test";
import { seededTest } from "../support/seeded.ts";
import { runPerMapSplit } from "./imap_quorum.ts";

const seeded = seededTest("test/sim/imap_quorum_per_map_test.ts");
const times = (n: number, answer: string) => Array(n).fill(answer);

describe("per-map split-brain protection (3 + 2 split)", () => {
  seeded("protection off member-wide, on for safe*: only safe* refuses on the minority", 61, async (seed) => {
    const r = await runPerMapSplit({
      seed,
      minClusterSize: 0,
      maps: { "safe*": { minClusterSize: 3 } },
      names: ["safe-orders", "plain"],
    });
    expect(r.problems).toEqual([]);
    expect(r.minority).toEqual({ "safe-orders": times(4, "QUORUM"), plain: times(4, "ok") });
    expect(r.majority).toEqual({ "safe-orders": times(6, "ok"), plain: times(6, "ok") });
    expect(r.afterHeal).toEqual({ "safe-orders": times(10, "ok"), plain: times(10, "ok") });
  }, 300_000);

  seeded("protection on member-wide, off for cache*: cache* still serves on the minority", 62, async (seed) => {
    const r = await runPerMapSplit({
      seed,
      minClusterSize: 3,
      maps: { "cache*": { minClusterSize: 0 } },
      names: ["cache-users", "plain"],
    });
    expect(r.problems).toEqual([]);
    expect(r.minority).toEqual({ "cache-users": times(4, "ok"), plain: times(4, "QUORUM") });
    expect(r.majority).toEqual({ "cache-users": times(6, "ok"), plain: times(6, "ok") });
    expect(r.afterHeal).toEqual({ "cache-users": times(10, "ok"), plain: times(10, "ok") });
  }, 300_000);
});
