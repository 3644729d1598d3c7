// A submit over the state record a purge leaves for a moment (its entry already gone) replaces
// that state. The purge's last step, removing the state, could land between the submit's read and
// its replace: the replace missed, its result was ignored, and the job got an entry but no state
// record, so no coordinator ever ran it (found by an internal review). The submit now tries again.
// The interleaving is forced here by letting the purge's final remove land just before the replace.
import { describe, expect, test } from "bun:test";
import type { IMap } from "../../src/map/imap.ts";
import { JobMaps, jobStateKey } from "../../src/jobs/map_names.ts";
import { withJobCluster } from "./jobs_cluster.ts";
import { reader, status, waitStatus } from "./jobs_scenarios.ts";

const job = {
  name: "o",
  source: { type: "sequence", count: 300, parallelism: 1, ratePerSecond: 1000 },
  sink: { type: "map", map: "out-o" },
  checkpointIntervalMs: 200,
};

describe("a submit racing the end of a purge of the same id", () => {
  test("the job submitted over the orphaned state runs", async () => {
    await withJobCluster({ seed: 31 }, async (sim) => {
      const member = reader(sim);
      const states = member.maps.getMap(JobMaps.jobStates);
      const old = { state: "FINISHED", timestamps: { FINISHED: 1 }, term: 1, epoch: 1 };
      // What a purge cut short between its last two steps leaves: the state, no entry.
      await sim.until(states.set(jobStateKey("o"), old));
      // The purge (on the master) finishing its last step, remove(state, old), lands just before
      // the submit's replace.
      const inner = member.maps.getMap.bind(member.maps);
      member.maps.getMap = (name: string) => {
        const m = inner(name);
        if (name !== JobMaps.jobStates) return m;
        return new Proxy(m, {
          get(t, prop, recv) {
            if (prop !== "replace") {
              const v = Reflect.get(t, prop, recv);
              return typeof v === "function" ? v.bind(t) : v;
            }
            return async (k: unknown, a: unknown, b?: unknown) => {
              if (k === jobStateKey("o")) await (sim.master()!.maps.getMap(JobMaps.jobStates)).remove(k, a);
              return (t as IMap<unknown, unknown>).replace(k, a as never, b as never);
            };
          },
        });
      };
      const id = await sim.until(member.jobs.submit(job, "o"));
      expect(id).toBe("o");
      member.maps.getMap = inner;
      await waitStatus(sim, "o", (s) => s === "FINISHED" || s === "FAILED", 60_000).catch(() => undefined);
      expect(await sim.until(states.get(jobStateKey("o")))).toBeDefined();
      expect((await status(sim, "o"))?.status).toBe("FINISHED");
    });
  }, 300_000);
});
