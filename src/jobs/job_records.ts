/**
 * The records the job coordinator writes in the maps: job, pipeline and task state records
 * (compare-and-set, checked against the coordinator's term and the state machine of
 * job_state.ts), the workers' slot entries, task metrics and job totals, and the clean-up of
 * staged sink segments. Every write carries the coordinator's current term and master epoch,
 * so that a deposed coordinator's writes fail.
 */
import {
  advance,
  checkJobWrite,
  checkTaskWrite,
  isJobTerminal,
  type JobStatus,
  type StateRecord,
  type TaskStateRecord,
  type TaskStatus,
} from "./job_state.ts";
import {
  cancelKey,
  isJobEntry,
  JobMaps,
  type JobMetrics,
  jobMetricsKey,
  jobStateKey,
  type JobStateRecord,
  pipelineStateKey,
  type TaskMetrics,
  taskMetricsKey,
  taskStateKey,
  type WorkerEntry,
} from "./map_names.ts";
import type { JobTaskDone } from "./messages.ts";
import { casUpdate, clean, retrying, sameValue, StateWriteRejected } from "./state_store.ts";
import type { CoordinatorPart, JobRt, TaskRt, WorkerRt } from "./coordinator_context.ts";
import { buildPlan, planTasks } from "./job_plan.ts";
import { mapBounded } from "../core/map_bounded.ts";

/** Writes the coordinator's records under its term. */
export class JobRecords {
  readonly #part: CoordinatorPart;

  constructor(part: CoordinatorPart) {
    this.#part = part;
  }

  async #writeState<R extends StateRecord>(
    key: string,
    fallback: R,
    to: R["state"],
    check: (
      cur: R | undefined,
      next: R,
    ) => { ok: true } | { ok: false; code: "STALE_EPOCH" | "CONFLICT"; reason: string },
    extra: Partial<R> = {},
  ): Promise<R> {
    const { clock } = this.#part.opts;
    const stored = await casUpdate<R>(this.#part.opts.getMap(JobMaps.jobStates), key, (cur) => {
      const base = cur ?? fallback;
      if (cur && cur.state === to && cur.term === this.#part.term() && Object.keys(extra).length === 0) {
        return undefined;
      }
      const next = clean(advance(base, to, clock.now(), this.#part.term(), this.#part.epoch(), extra) as R);
      const r = check(cur, next);
      if (!r.ok) throw new StateWriteRejected(r.code, `Cannot write ${key}: ${r.reason}`);
      return next;
    }, this.#part.retry);
    return stored!;
  }

  async setJob(job: JobRt, to: JobStatus, error?: string): Promise<void> {
    const extra = error ? { error } : {};
    job.state = await this.#writeState(jobStateKey(job.id), job.state, to, checkJobWrite, extra);
    const pid = job.entry.plan.pipelines[0].id;
    job.pipeline = await this.#writeState(pipelineStateKey(pid), job.pipeline, to, checkJobWrite, extra);
    this.#part.opts.log.info("jobs.job.state", { job: job.id, state: to, ...(error ? { error } : {}) });
  }

  async setTask(t: TaskRt, to: TaskStatus, extra: Partial<TaskStateRecord> = {}): Promise<void> {
    t.state = await this.#writeState(taskStateKey(t.plan.id), t.state, to, checkTaskWrite, extra);
  }

  /** Re-writes a record with this coordinator's term: from then on older terms cannot write it. */
  async stamp<R extends StateRecord>(key: string, initial: R): Promise<R> {
    const stored = await casUpdate<R>(this.#part.opts.getMap(JobMaps.jobStates), key, (cur) => {
      if (!cur) return { ...initial, term: this.#part.term(), epoch: this.#part.epoch() };
      if (cur.term > this.#part.term()) throw new StateWriteRejected("STALE_EPOCH", `term ${cur.term} wrote ${key}`);
      if (cur.term === this.#part.term()) return undefined;
      return { ...cur, term: this.#part.term(), epoch: this.#part.epoch() };
    }, this.#part.retry);
    return stored!;
  }

  async writeWorker(w: WorkerRt): Promise<void> {
    const { clock } = this.#part.opts;
    const body = {
      member: w.member,
      workerId: w.workerId,
      total: w.total,
      free: Math.max(0, w.total - w.tasks.size),
      tasks: [...w.tasks].sort(),
      term: this.#part.term(),
    };
    if (w.written && sameValue({ ...w.written, updatedAt: 0 }, { ...body, updatedAt: 0 })) return;
    const stored = await casUpdate<WorkerEntry>(this.#part.opts.getMap(JobMaps.workers), w.member, (cur) => {
      if (cur && cur.term > this.#part.term()) {
        throw new StateWriteRejected("STALE_EPOCH", `term ${cur.term} wrote worker ${w.member}`);
      }
      return { ...body, updatedAt: clock.now() };
    }, this.#part.retry);
    w.written = stored;
  }

  async writeMetrics(t: TaskRt, msg: JobTaskDone): Promise<void> {
    const m: TaskMetrics = {
      recordsRead: msg.recordsRead,
      recordsWritten: msg.recordsWritten,
      attempt: msg.attempt,
      checkpointId: -1,
      at: this.#part.opts.clock.now(),
    };
    const map = this.#part.opts.getMap(JobMaps.jobMetrics);
    const cur = (await map.get(taskMetricsKey(t.plan.id))) as TaskMetrics | undefined;
    if (!cur || cur.recordsWritten < m.recordsWritten) {
      await map.set(taskMetricsKey(t.plan.id), { ...m, checkpointId: cur?.checkpointId ?? -1 });
    }
  }

  async writeTotals(job: JobRt): Promise<void> {
    const metrics = this.#part.opts.getMap(JobMaps.jobMetrics);
    const keys = [...job.tasks.keys()].map(taskMetricsKey);
    const got = await retrying(() => metrics.getAll(keys), this.#part.retry);
    let recordsRead = 0, recordsWritten = 0;
    for (const v of got.values()) {
      const m = v as TaskMetrics;
      recordsRead += m.recordsRead;
      recordsWritten += m.recordsWritten;
    }
    const total: JobMetrics = { recordsRead, recordsWritten, at: this.#part.opts.clock.now() };
    await retrying(() => metrics.set(jobMetricsKey(job.id), total), this.#part.retry);
  }

  /**
   * Deletes every record of ended job `jobId` (the history retention ran out): its tasks'
   * state records, assignments, checkpoints and metrics, its pipeline's state, its cancel
   * request and totals, then its `jobs` entry, and last its own state record. A purge cut short
   * is done again from the start, since the entry (by which a coordinator finds the job) goes
   * only after the rest; one cut short between the last two leaves the state record alone, which
   * a submit of the same id replaces. The entry and the state go only if unchanged since read.
   * @returns false when the job is not ended (nothing is deleted)
   */
  async purge(jobId: string): Promise<boolean> {
    const { getMap } = this.#part.opts, retry = this.#part.retry;
    const jobs = getMap(JobMaps.jobs), states = getMap(JobMaps.jobStates);
    const state = (await retrying(() => states.get(jobStateKey(jobId)), retry)) as JobStateRecord | undefined;
    if (state !== undefined && !isJobTerminal(state.state)) return false;
    const entry = await retrying(() => jobs.get(jobId), retry);
    if (isJobEntry(entry)) {
      const gone: Array<[string, unknown]> = [
        [JobMaps.jobStates, pipelineStateKey(entry.plan.pipelines[0]?.id ?? `${jobId}/p0`)],
        [JobMaps.jobStates, cancelKey(jobId)],
        [JobMaps.jobMetrics, jobMetricsKey(jobId)],
      ];
      for (const t of planTasks(buildPlan(jobId, entry.definition))) {
        gone.push(
          [JobMaps.jobStates, taskStateKey(t.id)],
          [JobMaps.assignments, t.id],
          [JobMaps.checkpoints, t.id],
          [JobMaps.jobMetrics, taskMetricsKey(t.id)],
        );
      }
      await mapBounded(gone, 8, ([m, k]) => retrying(() => getMap(m).delete(k), retry));
      await retrying(() => jobs.remove(jobId, entry), retry);
    } else if (entry !== undefined) {
      return false; // not a job entry (the jobs map is an ordinary map): left alone
    }
    if (state !== undefined) await retrying(() => states.remove(jobStateKey(jobId), state), retry);
    return true;
  }

  /** Deletes staged sink segments a dead attempt left behind (best effort). */
  async cleanupStages(jobId: string): Promise<void> {
    const checkpoints = this.#part.opts.getMap(JobMaps.checkpoints);
    const prefix = `stage/${jobId}/`;
    const doomed: unknown[] = [];
    for await (const k of checkpoints.keys()) {
      if (typeof k === "string" && k.startsWith(prefix)) doomed.push(k);
      if (doomed.length >= 10_000) break;
    }
    for (const k of doomed) await checkpoints.delete(k);
  }
}
