// Completion reports that reach a new coordinator before it can load their job. The master
// (m1) is crashed while tasks on the two survivors are about to finish. For a while after
// the crash the new master (m2) cannot read one task state record of the job: its read
// answers "absent", as a member's reads did in a real run after the survivors lost each
// other and one side's table came back with fresh, empty replicas. Meanwhile the survivors'
// tasks finish and report to m2. Those reports must not be acknowledged before they are
// applied: the workers keep re-sending them, the job loads once the record reads again, and
// the finished tasks stay FINISHED with their attempt. (Before the fix the reports were
// acknowledged unapplied, and the tasks were restarted as attempt 2 once the job loaded,
// because their workers no longer knew them.)
//
// Also: a coordinator that gets no answer to its "do you still run these tasks?" query
// from a live worker keeps asking and never restarts that worker's tasks; only a member's
// death (membership) or the worker's own answer restarts them.
import { describe, expect, test } from "bun:test";
import type { IMap } from "../../src/map/imap.ts";
import { JobMaps, taskStateKey } from "../../src/jobs/map_names.ts";
import { Kind } from "../../src/wire/kinds.ts";
import { simMapLayer, simTuning } from "./jobs_cluster.ts";
import { checkPairOutput, logJob, mapJob, progress, status, tasksOf, waitEnded, waitStatus } from "./jobs_scenarios.ts";
import { JobSim, type MapLayerFactory } from "./jobs_sim.ts";

/** Runs until each of `jobs` wrote at least `n` records (checked every 10 virtual ms, in order). */
async function untilProgress(sim: JobSim, n: number, ...jobs: string[]): Promise<void> {
  await sim.runUntil(
    async () => {
      for (const j of jobs) if ((await progress(sim, j)) < n) return false;
      return true;
    },
    60_000,
    undefined,
    10,
  );
}

/** Keys whose reads answer "absent" on one member while `on` holds. */
interface Blind {
  member: string;
  keys: Set<string>;
  on: () => boolean;
  /** Reads answered "absent". */
  hidden: number;
}

/** The real map layer, except that `blind.member` reads `blind.keys` of `job-states` as absent while `blind.on()`. */
function blindLayer(blind: Blind): MapLayerFactory {
  return (d) => {
    const layer = simMapLayer(d);
    if (d.self !== blind.member) return layer;
    const hide = (name: string, key: unknown) =>
      name === JobMaps.jobStates && blind.on() && blind.keys.has(key as string);
    return {
      stop: () => layer.stop(),
      getMap(name: string): IMap<unknown, unknown> {
        const map = layer.getMap(name);
        return new Proxy(map, {
          get(target, prop) {
            if (prop === "get") {
              return (key: unknown) => {
                if (!hide(name, key)) return target.get(key);
                blind.hidden++;
                return Promise.resolve(undefined);
              };
            }
            if (prop === "getAll") {
              return async (keys: Iterable<unknown>) => {
                const got = await target.getAll(keys);
                for (const k of [...got.keys()]) {
                  if (hide(name, k)) {
                    blind.hidden++;
                    got.delete(k);
                  }
                }
                return got;
              };
            }
            const v = Reflect.get(target, prop, target);
            return typeof v === "function" ? v.bind(target) : v;
          },
        });
      },
    };
  };
}

describe("completion reports during a takeover", () => {
  test(
    "reports the new coordinator cannot apply yet are kept, not acknowledged; finished tasks keep their attempt",
    async () => {
      let blindUntil = Infinity;
      const blind: Blind = { member: "m2", keys: new Set(), on: () => false, hidden: 0 };
      const sim = new JobSim({ seed: 61, mapLayer: blindLayer(blind), slots: 4, tuning: simTuning });
      blind.on = () => sim.clock.now() < blindUntil;
      try {
        for (let i = 0; i < 3; i++) await sim.addMember();
        await sim.runUntil(() => !!sim.master()?.jobs.coordinator.active, 30_000);
        const [m1, m2, m3] = sim.live();
        expect(sim.master()!.id).toBe(m1.id);
        const a = await sim.until(m3.jobs.submit(mapJob("r"), "job-r"));
        const b = await sim.until(m3.jobs.submit(logJob("rl"), "job-rl"));
        await waitStatus(sim, a, (s) => s === "RUNNING");
        await waitStatus(sim, b, (s) => s === "RUNNING");
        // The new master will not read the state record of the dead master's task for 8 s.
        for (const id of [a, b]) {
          const onM1 = (await status(sim, id))!.tasks.filter((t) => t.worker === m1.id);
          for (const t of onM1) blind.keys.add(taskStateKey(t.id));
        }
        expect(blind.keys.size).toBeGreaterThan(0);
        // Crash the master shortly before the survivors' tasks finish.
        await untilProgress(sim, 5000, a, b);
        const before = await tasksOf(sim, a, b);
        const onSurvivors = before.filter((t) => t.worker !== m1.id && t.state === "RUNNING");
        expect(onSurvivors.length).toBeGreaterThan(0);
        blindUntil = sim.clock.now() + 8000;
        sim.crash(m1.id);
        await sim.runUntil(() => sim.master()?.id === m2.id && m2.jobs.coordinator.active, 10_000);
        // While blind, the survivors' tasks finish: their reports wait, unacknowledged.
        await sim.runUntil(
          () =>
            sim.live().every((m) =>
              m.jobs.worker!.running().size === 0 ||
              ![...m.jobs.worker!.running().keys()].some((k) => onSurvivors.some((t) => t.id === k))
            ),
          8000,
        );
        expect(sim.clock.now()).toBeLessThan(blindUntil);
        expect(blind.hidden).toBeGreaterThan(0);
        const [fa, fb] = await waitEnded(sim, a, b);
        expect([fa.status, fb.status]).toEqual(["FINISHED", "FINISHED"]);
        const after = [...fa.tasks, ...fb.tasks];
        const attempts = before.map((t) =>
          `${t.id}@${t.worker === m1.id ? "dead" : "live"} #${after.find((x) => x.id === t.id)!.attempt}`
        );
        expect(attempts).toEqual(
          before.map((t) =>
            `${t.id}@${t.worker === m1.id ? "dead" : "live"} #${
              t.worker === m1.id && t.state !== "FINISHED" ? t.attempt + 1 : t.attempt
            }`
          ),
        );
        expect(m2.jobs.coordinator.stats.restarts).toBe(
          before.filter((t) => t.worker === m1.id && t.state !== "FINISHED").length,
        );
        await checkPairOutput(sim, "out-r", "log-rl", b);
      } finally {
        sim.stopAll();
      }
    },
    120_000,
  );

  test("a live worker that does not answer the query keeps its tasks: no restart, no second attempt", async () => {
    const sim = new JobSim({ seed: 62, mapLayer: simMapLayer, slots: 4, tuning: simTuning });
    try {
      for (let i = 0; i < 3; i++) await sim.addMember();
      await sim.runUntil(() => !!sim.master()?.jobs.coordinator.active, 30_000);
      const [m1, m2, m3] = sim.live();
      const a = await sim.until(m3.jobs.submit(mapJob("q", 1000), "job-q"));
      const b = await sim.until(m3.jobs.submit(logJob("ql", 1000), "job-ql"));
      await untilProgress(sim, 1000, a, b);
      const before = await tasksOf(sim, a, b);
      const onM3 = before.filter((t) => t.worker === m3.id);
      expect(onM3.length).toBeGreaterThan(0);
      // m3 stays a healthy member but drops every task query for 6 s after the crash.
      let deaf = true;
      let dropped = 0;
      const dispatch = m3.router.dispatch.bind(m3.router);
      m3.router.dispatch = (from, msg) => {
        if (deaf && msg.t === Kind.JobTaskQuery) {
          dropped++;
          return;
        }
        return dispatch(from, msg);
      };
      sim.crash(m1.id);
      await sim.runUntil(() => sim.master()?.id === m2.id && m2.jobs.coordinator.active, 10_000);
      await sim.run(6000);
      expect(dropped).toBeGreaterThan(3); // the coordinator kept asking
      // Unanswered, m3's tasks are neither restarted nor run a second time.
      const mid = await tasksOf(sim, a, b);
      for (const t of onM3) expect(`${t.id} #${mid.find((x) => x.id === t.id)!.attempt}`).toBe(`${t.id} #${t.attempt}`);
      for (const m of [m2]) for (const t of onM3) expect(m.jobs.worker!.running().has(t.id)).toBe(false);
      deaf = false;
      const [fa, fb] = await waitEnded(sim, a, b);
      expect([fa.status, fb.status]).toEqual(["FINISHED", "FINISHED"]);
      const after = [...fa.tasks, ...fb.tasks];
      for (const t of before) {
        const expected = t.worker === m1.id ? t.attempt + 1 : t.attempt;
        expect(`${t.id} #${after.find((x) => x.id === t.id)!.attempt}`).toBe(`${t.id} #${expected}`);
      }
      await checkPairOutput(sim, "out-q", "log-ql", b);
    } finally {
      sim.stopAll();
    }
  }, 120_000);
});
