// A purge read the ended job's state, then its entry. A submit of the same id in between (possible
// where a purge cut short left only the state record, and a coordinator purges it again) wrote a new
// entry, and the purge, holding the old terminal state, took the new entry for the ended job's and
// deleted the new job (found by an internal review). The entry is now read first, and must be the
// ended state's submission.
import { describe, expect, test } from "bun:test";
import { JobMaps } from "../../src/jobs/map_names.ts";
import { withJobCluster } from "./jobs_cluster.ts";
import { jobRecordKeys, purgeTestJob, purgeTestJobFinished, waitStatus } from "./jobs_scenarios.ts";

const HISTORY_MS = 20_000;

describe("a purge racing a new submission of the same id", () => {
  test("the job submitted again between the purge's state read and entry read runs", async () => {
    await withJobCluster({ seed: 41, historyMs: HISTORY_MS }, async (sim) => {
      const { master, client } = await purgeTestJobFinished(sim);
      // What a purge cut short between its last two steps leaves: the ended job's state, no entry.
      // (The master's coordinator still remembers "o" as ended, so its scan purges it later.)
      for (const [m, k] of jobRecordKeys("o", 1)) await sim.until(client.maps.getMap(m).delete(k));
      await sim.until(client.maps.getMap(JobMaps.jobs).delete("o"));
      // The purge on the master reads the state (ended), then the entry: the client's submit of the
      // same id lands between the two reads.
      let armed = true;
      let submitted: string | undefined;
      const inner = master.maps.getMap.bind(master.maps);
      master.maps.getMap = (name: string) => {
        const m = inner(name);
        if (name !== JobMaps.jobs) return m;
        return new Proxy(m, {
          get(t, prop, recv) {
            const v = Reflect.get(t, prop, recv);
            if (prop !== "get") return typeof v === "function" ? v.bind(t) : v;
            return async (k: unknown) => {
              if (armed && k === "o") {
                armed = false;
                submitted = await client.jobs.submit(purgeTestJob, "o");
              }
              return await (t as { get(k: unknown): Promise<unknown> }).get(k);
            };
          },
        });
      };
      await sim.until(client.maps.getMap("out-o").destroy());
      await sim.run(HISTORY_MS + 10_000);
      master.maps.getMap = inner;
      expect(armed).toBe(false); // the purge ran and the submit landed inside it
      expect(submitted).toBe("o");
      // The second submission must run to the end.
      await waitStatus(sim, "o", (s) => s === "FINISHED" || s === "FAILED", 60_000).catch(() => undefined);
      const info = await sim.until(client.jobs.get("o"));
      // Current code: undefined (entry deleted) or stuck in CREATED (task states deleted).
      expect(info?.status).toBe("FINISHED");
      expect(await sim.until(client.maps.getMap("out-o").size())).toBe(300);
    });
  }, 300_000);
});
