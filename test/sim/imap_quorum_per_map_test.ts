/**
 * Per-map split-brain protection (`maps: { "pattern": { minClusterSize } }`) in the
 * simulator: a 3 + 2 split of 5 members. A map's override wins over the member-wide
 * setting both ways: a protected map refuses on the minority while the others stay
 * available there (AP), and a map that opts out stays available on a protected cluster.
 * Everything serves again after the heal. `SEED=n` replays a run.
 */
import { describe, expect } from "bun:test";
import type { MapsConfig } from "../../src/map/map_config.ts";
import { seededTest } from "../support/seeded.ts";
import { runPerMapSplit } from "./imap_quorum.ts";

const seeded = seededTest("test/sim/imap_quorum_per_map_test.ts");
const times = (n: number, answer: string) => Array(n).fill(answer);

interface Case {
  name: string;
  seed: number;
  minClusterSize: number;
  maps: MapsConfig;
  /** The protected map and the available one on the minority side. */
  refusing: string;
  serving: string;
}

const cases: Case[] = [
  {
    name: "protection off member-wide, on for safe*: only safe* refuses on the minority",
    seed: 61,
    minClusterSize: 0,
    maps: { "safe*": { minClusterSize: 3 } },
    refusing: "safe-orders",
    serving: "plain",
  },
  {
    name: "protection on member-wide, off for cache*: cache* still serves on the minority",
    seed: 62,
    minClusterSize: 3,
    maps: { "cache*": { minClusterSize: 0 } },
    refusing: "plain",
    serving: "cache-users",
  },
];

describe("per-map split-brain protection (3 + 2 split)", () => {
  for (const c of cases) {
    seeded(c.name, c.seed, async (seed) => {
      const names = [c.refusing, c.serving];
      const r = await runPerMapSplit({ seed, minClusterSize: c.minClusterSize, maps: c.maps, names });
      expect(r.problems).toEqual([]);
      // 2 minority members × (put, get); 3 majority members; 5 members after the heal.
      expect(r.minority).toEqual({ [c.refusing]: times(4, "QUORUM"), [c.serving]: times(4, "ok") });
      expect(r.majority).toEqual({ [c.refusing]: times(6, "ok"), [c.serving]: times(6, "ok") });
      expect(r.afterHeal).toEqual({ [c.refusing]: times(10, "ok"), [c.serving]: times(10, "ok") });
    }, 300_000);
  }
});
