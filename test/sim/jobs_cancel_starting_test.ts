// A cancel that reaches a worker while it is still starting the task (reading the job entry).
// It was answered "CANCELED, nothing runs here" at once: the coordinator ended the job CANCELED,
// then the worker started the task anyway and ran it to the end, writing its whole output (6,000
// records here) into the sink (found by an internal review). Now the start is stopped first.
import { describe, expect, test } from "bun:test";
import { Kind } from "../../src/wire/kinds.ts";
import { withJobCluster } from "./jobs_cluster.ts";
import { mapJob, reader, waitStatus } from "./jobs_scenarios.ts";

describe("cancel while a worker is starting a task", () => {
  test("no task of a CANCELED job runs or writes afterwards", async () => {
    await withJobCluster({ seed: 7 }, async (sim) => {
      // The workers' read of the job entry is slow (a busy or migrating partition): 400 ms.
      for (const m of sim.live()) {
        const w = m.jobs.worker!;
        const orig = w.opts.getMap;
        (w.opts as { getMap: typeof orig }).getMap = (name: string) => {
          const map = orig(name);
          if (name !== "jobs") return map;
          return new Proxy(map, {
            get(target, prop, recv) {
              if (prop === "get") {
                return (k: unknown) =>
                  new Promise((res) => m.clock.setTimer(400, () => res(undefined))).then(() => target.get(k));
              }
              const v = Reflect.get(target, prop, recv);
              return typeof v === "function" ? v.bind(target) : v;
            },
          });
        };
      }
      const master = sim.master()!;
      let deployed = false;
      const send = master.transport.send.bind(master.transport);
      master.transport.send = (to, msg) => {
        if (msg.t === Kind.JobDeployTask) deployed = true;
        return send(to, msg);
      };
      const id = await sim.until(reader(sim).jobs.submit(mapJob("c", 3000), "c"));
      await sim.runUntil(() => deployed, 10_000, undefined, 1);
      await sim.until(reader(sim).jobs.cancel(id));
      const info = await waitStatus(sim, id, (s) => s === "CANCELED" || s === "FINISHED" || s === "FAILED", 20_000);
      expect(info.status).toBe("CANCELED");
      const out = reader(sim).maps.getMap("out-c");
      const atCancel = await sim.until(out.size());
      await sim.run(5_000);
      const later = await sim.until(out.size());
      const running = sim.live().flatMap((m) => [...(m.jobs.worker?.running().keys() ?? [])]);
      expect(running).toEqual([]);
      expect(later).toBe(atCancel);
    });
  }, 120_000);
});
