/**
 * The distributed queue with split-brain protection (minClusterSize 3 of 5) in the simulator:
 * through a pause of the queue's primary or of a consumer's member past failure detection, a
 * 3 + 2 split that cuts the primary off (with or without the master) and kill -9 of the primary,
 * every acknowledged offer is delivered exactly once, nothing is invented, and the minority
 * refuses instead of serving a stale queue. `SEED=n` replays a run.
 */
import { describe, expect } from "bun:test";
import { type QueueFault, runQueueScenario } from "./queue_quorum.ts";
import { seededTest } from "../support/seeded.ts";

const seeded = seededTest("test/sim/queue_quorum_test.ts");
const FAULTS: QueueFault[] = ["pausePrimary", "pauseConsumer", "split", "splitWithMaster", "crashPrimary"];

describe("a queue with split-brain protection (minClusterSize 3 of 5)", () => {
  for (const fault of FAULTS) {
    for (const seed of [1, 2]) {
      seeded(`${fault} (seed ${seed}): every acknowledged offer delivered exactly once`, seed, async (s) => {
        const faultMs = 2000 + ((s * 7919) % 6000);
        const r = await runQueueScenario({ seed: s, fault, faultMs });
        console.log(
          `${fault} seed ${s} (${faultMs} ms): ${r.acked} offers acknowledged, ${r.polled} polled, ` +
            `${r.refused} refused with QUORUM, ${r.pollsInDoubt} polls in doubt`,
        );
        expect(r.problems).toEqual([]);
        expect(r.acked).toBeGreaterThan(100);
        // The cut-off primary's side refuses rather than serve its stale copy of the queue.
        if (fault === "split" || fault === "splitWithMaster") expect(r.refused).toBeGreaterThan(0);
      }, 300_000);
    }
  }
});
