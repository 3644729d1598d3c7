/**
 * A primary that still reaches a quorum but not the master, under split-brain protection
 * (minClusterSize 3 of 5): member X cannot send to the master, and its event loop stalls
 * until just before the master's verdict on it. Woken, X pings the others, who still list
 * it and hold its table, so they renew its lease; its refutation cannot reach the master
 * directly, so the master removes it anyway and the new table promotes X's backups. Clients
 * on every member hammer keys X leads. Before new primaries waited out the old primary's
 * lease (Quorum.fenceCleared), both served those partitions for up to a lease. Each seed
 * first runs with a long stall to find when the master removes X, then replays with the
 * stall ending 5 ms before. At seeds 73 and 76 X's refutation gets through in the replay
 * and X stays, its answers to the master dropped for the rest of the 10 s: the master's
 * writes to X retry all along while X takes thousands of other writes, and before dedupe
 * records were kept until their client answered the call (map/dedupe_records.ts) such a
 * write was applied a second time once its record fell out of the last 2,048.
 * `SEED=n` replays a run.
 */
import { describe, expect } from "bun:test";
import { seededTest } from "../support/seeded.ts";
import { runCutPause } from "./imap_quorum.ts";

const seeded = seededTest("test/sim/imap_quorum_cut_test.ts");

describe("a primary cut from the master only, woken just before its removal (minClusterSize 3 of 5)", () => {
  // 223, 229, 236, 241: X's backup, promoted and still waiting out X's lease, handed the partition
  // on to a third member (a rebalancing migration), which took over sealed and served at once
  // while X still served under its lease (~290 ms). A fenced primary now hands nothing on
  // before its wait is over (primary.ts checkMigration).
  for (const seed of [72, 74, 223, 229, 236, 241]) {
    seeded(`seed ${seed}: never two primaries serving one partition; the history is linearizable`, seed, async (s) => {
      const probe = await runCutPause({ seed: s });
      expect(probe.removedAfterMs).not.toBeNull();
      const r = await runCutPause({ seed: s, pauseMs: probe.removedAfterMs! - 5 });
      console.log(
        `seed ${s}: removed ${r.removedAfterMs} ms into a ${r.pauseMs} ms stall, ${r.opsOk} ops ok, ` +
          `${r.dualServing} samples with two primaries serving, ${r.violations.length} violations`,
      );
      // The window was exercised: X woke before the master's verdict, which removed it anyway.
      expect(r.removedAfterMs).not.toBeNull();
      expect(r.removedAfterMs!).toBeGreaterThan(r.pauseMs);
      expect(r.problems).toEqual([]);
      expect(r.violations).toEqual([]);
      expect(r.dualServing).toBe(0);
    }, 300_000);
  }
});

describe("a member whose answers to the master are dropped for 10 s, its writes retried all along (minClusterSize 3 of 5)", () => {
  for (const seed of [73, 76]) {
    seeded(`seed ${seed}: every write applied once; the history is linearizable`, seed, async (s) => {
      const probe = await runCutPause({ seed: s });
      expect(probe.removedAfterMs).not.toBeNull();
      const r = await runCutPause({ seed: s, pauseMs: probe.removedAfterMs! - 5 });
      console.log(
        `seed ${s}: ${r.removedAfterMs === null ? "not removed" : `removed ${r.removedAfterMs} ms`} after a ` +
          `${r.pauseMs} ms stall, ${r.opsOk} ops ok, ${r.violations.length} violations`,
      );
      // The scenario of these seeds: X woke in time and stayed, cut from the master to the end.
      expect(r.removedAfterMs).toBeNull();
      expect(r.problems).toEqual([]);
      expect(r.violations).toEqual([]);
      expect(r.dualServing).toBe(0);
    }, 300_000);
  }
});
