// Two coordinators purging the same ended job (a takeover: the deposed one runs its scan until its
// fence check notices, the new one learned the job from its walk). The purge deleted the task and
// pipeline states, assignments, checkpoints and metrics unconditionally, keyed by the job id: when
// the other coordinator's purge completed first and the client submitted the id again, the slower
// purge, still holding the old entry and state, deleted the new submission's task states, and the
// new job never ran (found by an internal review). A purge now removes a state record only if it is
// of the ended submission, and stops at the first that is not.
import { describe, expect, test } from "bun:test";
import { JobMaps, jobStateKey, taskStateKey } from "../../src/jobs/map_names.ts";
import { withJobCluster } from "./jobs_cluster.ts";
import { jobRecordKeys, purgeTestJob, purgeTestJobFinished, waitStatus } from "./jobs_scenarios.ts";

const HISTORY_MS = 20_000;

describe("two coordinators purging the same ended job", () => {
  test("a job submitted again after one purge finished is not deleted by the other", async () => {
    await withJobCluster({ seed: 43, historyMs: HISTORY_MS }, async (sim) => {
      const { master, client } = await purgeTestJobFinished(sim);
      await sim.until(client.maps.getMap("out-o").destroy());
      let armed = true;
      let submitted: string | undefined;
      /** The other coordinator's purge, complete (every record of "o"), then the client's new submit. */
      const otherPurgeThenSubmit = async () => {
        for (const [m, k] of jobRecordKeys("o", 1)) await client.maps.getMap(m).delete(k);
        await client.maps.getMap(JobMaps.jobs).delete("o");
        await client.maps.getMap(JobMaps.jobStates).delete(jobStateKey("o"));
        submitted = await client.jobs.submit(purgeTestJob, "o");
      };
      // This coordinator's purge has read the old entry and the ended state; the other purge and
      // the new submit complete before it reads the first task's state.
      const inner = master.maps.getMap.bind(master.maps);
      master.maps.getMap = (name: string) => {
        const m = inner(name);
        return new Proxy(m, {
          get(t, prop, recv) {
            const v = Reflect.get(t, prop, recv);
            if (prop !== "get" || name !== JobMaps.jobStates) return typeof v === "function" ? v.bind(t) : v;
            return async (k: unknown) => {
              if (armed && k === taskStateKey("o/p0/t0")) {
                armed = false;
                await otherPurgeThenSubmit();
              }
              return await (t as { get(k: unknown): Promise<unknown> }).get(k);
            };
          },
        });
      };
      await sim.run(HISTORY_MS + 10_000);
      master.maps.getMap = inner;
      expect(armed).toBe(false);
      expect(submitted).toBe("o");
      await waitStatus(sim, "o", (s) => s === "FINISHED" || s === "FAILED", 60_000).catch(() => undefined);
      const info = await sim.until(client.jobs.get("o"));
      expect(info?.status).toBe("FINISHED");
      expect(await sim.until(client.maps.getMap("out-o").size())).toBe(300);
    });
  }, 300_000);
});
