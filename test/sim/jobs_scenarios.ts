/**
 * Job failover scenarios over a simulated cluster (see jobs_sim.ts), shared by the
 * simulation tests. Every check reads the real maps through a live member.
 */
import { expect } from "bun:test";
import type { JobRecord } from "../../src/jobs/connector.ts";
import type { JobInfo } from "../../src/jobs/job_service.ts";
import type { LogList } from "../../src/jobs/sink_log.ts";
import { sequenceValue } from "../../src/jobs/source_sequence.ts";
import { buildPlan, planTasks } from "../../src/jobs/job_plan.ts";
import {
  cancelKey,
  JobMaps,
  jobMetricsKey,
  pipelineStateKey,
  taskMetricsKey,
  taskStateKey,
  type WorkerEntry,
} from "../../src/jobs/map_names.ts";
import type { JobSim, SimMember } from "./jobs_sim.ts";

export const recordCount = 6000;

export function mapJob(id: string, ratePerSecond = 1500) {
  return {
    name: `copy-${id}`,
    source: { type: "sequence", count: recordCount, parallelism: 3, ratePerSecond },
    transform: { type: "map", fn: "double" },
    sink: { type: "map", map: `out-${id}` },
    checkpointIntervalMs: 500,
  };
}

export function logJob(id: string, ratePerSecond = 1500) {
  return {
    name: `log-${id}`,
    source: { type: "sequence", count: recordCount, parallelism: 3, ratePerSecond },
    sink: { type: "log", map: `log-${id}` },
    checkpointIntervalMs: 500,
  };
}

export function reader(sim: JobSim): SimMember {
  const m = sim.live()[sim.live().length - 1];
  if (!m) throw new Error("no live member");
  return m;
}

export async function status(sim: JobSim, id: string): Promise<JobInfo | undefined> {
  return await sim.until(reader(sim).jobs.get(id));
}

export async function waitStatus(
  sim: JobSim,
  id: string,
  pred: (s: string) => boolean,
  maxMs = 120_000,
): Promise<JobInfo> {
  let info: JobInfo | undefined;
  await sim.runUntil(async () => {
    info = await status(sim, id).catch(() => undefined);
    return info !== undefined && pred(info.status);
  }, maxMs);
  return info!;
}

/** Runs virtual time until each job of `ids` (in turn) is FINISHED or FAILED; returns what a member read then. */
export async function waitEnded(sim: JobSim, ...ids: string[]): Promise<JobInfo[]> {
  const infos: JobInfo[] = [];
  for (const id of ids) infos.push(await waitStatus(sim, id, (s) => s === "FINISHED" || s === "FAILED"));
  return infos;
}

/** The tasks of the jobs `ids`, in order, as a member reads them now. */
export async function tasksOf(sim: JobSim, ...ids: string[]): Promise<JobInfo["tasks"]> {
  const tasks: JobInfo["tasks"] = [];
  for (const id of ids) tasks.push(...(await status(sim, id))!.tasks);
  return tasks;
}

/**
 * The outputs of a {@link mapJob} and a {@link logJob} are exact (see {@link checkMapOutput},
 * {@link checkLogOutput}) and every slot is back ({@link checkNoSlotLeak}).
 * @param mapName the map job's sink map, `out-<id>`
 * @param logName the log job's sink map, `log-<id>`
 * @param logJobId the log job's id
 */
export async function checkPairOutput(sim: JobSim, mapName: string, logName: string, logJobId: string): Promise<void> {
  await checkMapOutput(sim, mapName, (v) => v * 2);
  await checkLogOutput(sim, logName, await taskIdsOf(sim, logJobId));
  await checkNoSlotLeak(sim);
}

/** The map sink holds exactly the records 0…count-1 with the transformed values. */
export async function checkMapOutput(sim: JobSim, mapName: string, fn: (v: number) => number): Promise<void> {
  const out = reader(sim).maps.getMap(mapName);
  expect(await sim.until(out.size())).toBe(recordCount);
  const keys = Array.from({ length: recordCount }, (_, i) => String(i));
  const got = await sim.until(out.getAll(keys));
  let wrong = 0;
  for (let i = 0; i < recordCount; i++) {
    const r = got.get(String(i)) as JobRecord | undefined;
    if (!r || r.id !== i || r.value !== fn(sequenceValue(i))) wrong++;
  }
  expect(wrong).toBe(0);
}

/** The log sink holds every record exactly once: no duplicate, no gap. */
export async function checkLogOutput(sim: JobSim, mapName: string, taskIds: string[]): Promise<void> {
  const log = reader(sim).maps.getMap(mapName);
  const lists = await sim.until(log.getAll(taskIds));
  const ids: number[] = [];
  for (const t of taskIds) {
    const l = lists.get(t) as LogList | undefined;
    for (const r of l?.entries ?? []) {
      ids.push(r.id);
      expect(r.value).toBe(sequenceValue(r.id));
    }
  }
  expect(ids.length).toBe(recordCount);
  expect(new Set(ids).size).toBe(recordCount);
  ids.sort((a, b) => a - b);
  expect(ids[0]).toBe(0);
  expect(ids[ids.length - 1]).toBe(recordCount - 1);
}

/** Every live worker's free slots are back to its total, and dead members have no entry. */
export async function checkNoSlotLeak(sim: JobSim): Promise<void> {
  await sim.runUntil(async () => {
    const ws = await sim.until(reader(sim).jobs.workers());
    const live = new Set(sim.live().map((m) => m.id));
    return ws.length === live.size &&
      ws.every((w: WorkerEntry) => live.has(w.member) && w.free === w.total && w.tasks.length === 0);
  }, 20_000);
}

export async function taskIdsOf(sim: JobSim, jobId: string): Promise<string[]> {
  const e = await sim.until(reader(sim).jobs.entry(jobId));
  return e!.plan.pipelines.flatMap((p) => p.taskGroups.flatMap((g) => g.tasks.map((t) => t.id)));
}

/** Records written so far by a job, from the task metrics. */
export async function progress(sim: JobSim, jobId: string): Promise<number> {
  const info = await status(sim, jobId);
  return info?.tasks.reduce((a, t) => a + t.recordsWritten, 0) ?? 0;
}

export { JobMaps };

/**
 * Adds a 4th member, the liar of the hostile job tests (it holds the secret like any member).
 * @returns it, the master, and an honest member other than the master to submit through
 */
export async function addLiar(sim: JobSim): Promise<{ liar: SimMember; master: SimMember; submitter: SimMember }> {
  const liar = await sim.addMember();
  const master = sim.master()!;
  return { liar, master, submitter: sim.live().find((m) => m !== master && m !== liar)! };
}

/** A one-task job of 300 records into map `out-o`, which ends within a second (the purge tests' job "o"). */
export const purgeTestJob = {
  name: "o",
  source: { type: "sequence", count: 300, parallelism: 1, ratePerSecond: 1000 },
  sink: { type: "map", map: "out-o" },
  checkpointIntervalMs: 200,
};

/**
 * Runs {@link purgeTestJob} as "o", submitted through a member other than the master, to FINISHED.
 * @returns the master and that member
 */
export async function purgeTestJobFinished(sim: JobSim): Promise<{ master: SimMember; client: SimMember }> {
  const master = sim.master()!;
  const client = sim.live().find((m) => m.id !== master.id)!;
  await sim.until(client.jobs.submit(purgeTestJob, "o"));
  expect((await waitStatus(sim, "o", (s) => s === "FINISHED" || s === "FAILED", 60_000)).status).toBe("FINISHED");
  return { master, client };
}

/**
 * The records of job `id` (of `parallelism` tasks) in the job maps but its entry and its own
 * state record, as `[map, key]`: its pipeline state, cancel request and totals, then per task
 * its state, assignment, checkpoint and metrics (what a purge deletes before those two).
 */
export function jobRecordKeys(id: string, parallelism: number): Array<[string, string]> {
  const keys: Array<[string, string]> = [
    [JobMaps.jobStates, pipelineStateKey(`${id}/p0`)],
    [JobMaps.jobStates, cancelKey(id)],
    [JobMaps.jobMetrics, jobMetricsKey(id)],
  ];
  for (const t of planTasks(buildPlan(id, { parallelism }))) {
    keys.push(
      [JobMaps.jobStates, taskStateKey(t.id)],
      [JobMaps.assignments, t.id],
      [JobMaps.checkpoints, t.id],
      [JobMaps.jobMetrics, taskMetricsKey(t.id)],
    );
  }
  return keys;
}
