/**
 * How a task attempt ends when its checkpoint record changes under it (task_runner.ts), on a
 * real single-member grid in virtual time: a newer attempt's claim ends it silently (ABORTED:
 * that attempt owns the task), while a record that went back to an older attempt, which only a
 * split-brain merge without protection does, fails it (FAILED, so it is reported and the
 * coordinator restarts it; before, it ended silently and the task stayed RUNNING for good). An
 * attempt's own checkpoint write that lands after an INDETERMINATE answer is its own, not a record
 * that went back.
 */
import { describe, expect, test } from "bun:test";
import { IndeterminateResultError } from "../src/core/errors.ts";
import { silentLogger } from "../src/core/log.ts";
import type { IMap } from "../src/map/imap.ts";
import { ConnectorRegistry } from "../src/jobs/connector_registry.ts";
import { buildPlan, planTasks } from "../src/jobs/job_plan.ts";
import { type CheckpointEntry, type JobEntry, JobMaps } from "../src/jobs/map_names.ts";
import { TaskRunner } from "../src/jobs/task_runner.ts";
import { startGrid } from "./support/grid_harness.ts";

const registry = ConnectorRegistry.withBuiltins();

/** A 2,000-record job at 1,000 records/s, one task, checkpointing every 200 ms. */
async function oneTaskJob() {
  const h = await startGrid(1, 7);
  const grid = h.members.get("n0")!.grid;
  const definition = registry.normalizeDefinition({
    name: "j",
    source: { type: "sequence", count: 2000, ratePerSecond: 1000 },
    sink: { type: "map", map: "out" },
    checkpointIntervalMs: 200,
  });
  const entry: JobEntry = { id: "j", definition, plan: buildPlan("j", definition), createdAt: 0 };
  return { h, grid, entry, task: planTasks(entry.plan)[0] };
}

/** {@link oneTaskJob}'s attempt 2, running past its first checkpoints. */
async function runningAttempt() {
  const { h, grid, entry, task } = await oneTaskJob();
  const checkpoints = grid.getMap<string, CheckpointEntry>(JobMaps.checkpoints);
  const runner = new TaskRunner(
    { clock: h.clock, log: silentLogger, getMap: (n) => grid.getMap(n), registry, tickMs: 20 },
    entry,
    task,
    2,
  );
  // Past its first checkpoints.
  await h.run(700);
  const cur = (await h.until(checkpoints.get(task.id)))!;
  expect(cur.attempt).toBe(2);
  expect(cur.checkpointId).toBeGreaterThan(0);
  return { h, runner, checkpoints, taskId: task.id, cur };
}

describe("a task attempt whose checkpoint record changed under it", () => {
  test("a newer attempt's claim: ABORTED, nothing to report", async () => {
    const { h, runner, checkpoints, taskId, cur } = await runningAttempt();
    await h.until(checkpoints.set(taskId, { ...cur, attempt: 3 }));
    const outcome = await h.until(runner.done);
    expect(outcome.state).toBe("ABORTED");
    h.stop();
  });

  test("the record went back to an older attempt: FAILED, so the coordinator restarts it", async () => {
    const { h, runner, checkpoints, taskId, cur } = await runningAttempt();
    await h.until(checkpoints.set(taskId, { ...cur, attempt: 1, checkpointId: cur.checkpointId - 1 }));
    const outcome = await h.until(runner.done);
    expect(outcome.state).toBe("FAILED");
    expect(outcome.error).toMatch(/checkpoint record went back to attempt 1/);
    h.stop();
  });
});

test("a checkpoint write answered INDETERMINATE that lands after the re-read: the attempt goes on and finishes", async () => {
  const { h, grid, entry, task } = await oneTaskJob();
  let replaces = 0;
  // The third checkpoint's compare-and-set: the caller is told INDETERMINATE, and the write lands
  // 10 ms later, after casUpdate's re-read, so the next round reads this attempt's own checkpoint.
  const getMap = (name: string): IMap<unknown, unknown> => {
    const m = grid.getMap(name);
    if (name !== JobMaps.checkpoints) return m;
    const replace = (k: unknown, cur: unknown, next: unknown): Promise<boolean> => {
      if (++replaces !== 3) return m.replace(k, cur, next);
      h.clock.setTimer(10, () => void m.replace(k, cur, next));
      return Promise.reject(new IndeterminateResultError("the write may or may not have been applied"));
    };
    return new Proxy(m, {
      get(target, prop) {
        if (prop === "replace") return replace;
        const v = Reflect.get(target, prop, target);
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
  };
  const runner = new TaskRunner({ clock: h.clock, log: silentLogger, getMap, registry, tickMs: 20 }, entry, task, 1);
  const outcome = await h.until(runner.done);
  expect(replaces).toBeGreaterThan(3);
  expect(outcome.state).toBe("FINISHED");
  expect(outcome.recordsWritten).toBe(2000);
  h.stop();
});
