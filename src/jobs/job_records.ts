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
  activeIds,
  type ActiveJobs,
  activeJobsKey,
  type AssignmentEntry,
  cancelKey,
  coordinatorKey,
  type CoordinatorRecord,
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
import type { IMap } from "../map/imap.ts";
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
    const stored = await this.#fenced<R>(JobMaps.jobStates, key, (cur) => {
      const base = cur ?? fallback;
      if (cur && cur.state === to && cur.term === this.#part.term() && Object.keys(extra).length === 0) {
        return undefined;
      }
      const next = clean(advance(base, to, clock.now(), this.#part.term(), this.#part.epoch(), extra) as R);
      const r = check(cur, next);
      if (!r.ok) throw new StateWriteRejected(r.code, `Cannot write ${key}: ${r.reason}`);
      return next;
    });
    return stored!;
  }

  /**
   * A compare-and-set of a record carrying a coordinator term, whose `decide` refuses (STALE_EPOCH)
   * a stored term above ours. Every coordinator claims its term in the coordinator record before
   * it writes under it, so a record of a newer term while that record still holds ours was not
   * written by a coordinator: the maps are ordinary maps, and a member holding the secret wrote it
   * (one workers entry at term 2^53 - 1 deposed the coordinator for good, and every job stalled).
   * Then `decide` sees the stored record as one of the term before ours (so it is rewritten, not
   * taken as already ours), and the write goes on under the usual rules.
   * The coordinator record is read after the refused record, so a real newer coordinator's claim,
   * which comes before its writes, is seen.
   */
  async #fenced<R extends { term: number }>(
    map: string,
    key: string,
    decide: (cur: R | undefined) => R | undefined,
  ): Promise<R | undefined> {
    const m = this.#part.opts.getMap(map);
    try {
      return await casUpdate<R>(m, key, decide, this.#part.retry);
    } catch (err) {
      if (!(err instanceof StateWriteRejected) || err.code !== "STALE_EPOCH" || !(await this.#stillOurs())) throw err;
      this.#part.opts.log.warn("jobs.record.forged_term", { map, key, term: this.#part.term() });
      const ours = (cur: R | undefined) =>
        cur && cur.term > this.#part.term() ? decide({ ...cur, term: this.#part.term() - 1 }) : decide(cur);
      return await casUpdate<R>(m, key, ours, this.#part.retry);
    }
  }

  /** Whether the coordinator record still holds this coordinator's term. */
  async #stillOurs(): Promise<boolean> {
    const states: IMap<unknown, unknown> = this.#part.opts.getMap(JobMaps.jobStates);
    const rec = (await retrying(() => states.get(coordinatorKey), this.#part.retry)) as CoordinatorRecord | undefined;
    return rec?.term === this.#part.term();
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
    const stored = await this.#fenced<R>(JobMaps.jobStates, key, (cur) => {
      if (!cur) return { ...initial, term: this.#part.term(), epoch: this.#part.epoch() };
      if (cur.term > this.#part.term()) throw new StateWriteRejected("STALE_EPOCH", `term ${cur.term} wrote ${key}`);
      if (cur.term === this.#part.term()) return undefined;
      return { ...cur, term: this.#part.term(), epoch: this.#part.epoch() };
    });
    return stored!;
  }

  /** Drops a terminal job from the active-jobs index. */
  async unindex(jobId: string): Promise<void> {
    await casUpdate<ActiveJobs>(this.#part.opts.getMap(JobMaps.jobStates), activeJobsKey, (cur) => {
      const ids = activeIds(cur);
      if (!ids.includes(jobId)) return undefined;
      return { ids: ids.filter((id) => id !== jobId) };
    }, this.#part.retry);
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
    const stored = await this.#fenced<WorkerEntry>(JobMaps.workers, w.member, (cur) => {
      if (cur && cur.term > this.#part.term()) {
        throw new StateWriteRejected("STALE_EPOCH", `term ${cur.term} wrote worker ${w.member}`);
      }
      return { ...body, updatedAt: clock.now() };
    });
    w.written = stored;
  }

  /** Writes task `taskId`'s assignment under this coordinator's term. */
  async writeAssignment(taskId: string, asg: AssignmentEntry): Promise<void> {
    await this.#fenced<AssignmentEntry>(JobMaps.assignments, taskId, (cur) => {
      if (cur && cur.term > this.#part.term()) {
        throw new StateWriteRejected("STALE_EPOCH", `term ${cur.term} assigned ${taskId}`);
      }
      return asg;
    });
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
   * Deletes every record of ended job `jobId` (the history retention ran out): per task its
   * assignment, checkpoint and metrics, then its state record; its pipeline's state, its cancel
   * request and totals; then its `jobs` entry, and last its own state record. A purge cut short
   * is done again from the start, since the entry (by which a coordinator finds the job) goes
   * only after the rest; one cut short between the last two leaves the state record alone, which
   * a submit of the same id replaces.
   *
   * Only the ended submission's records go: the entry is read first (while it is there, a
   * submit of the same id writes nothing), and it must be the ended state's submission (its
   * `createdAt` is the state's CREATED stamp); a state record goes only if unchanged since read
   * and of that submission, and a task's other records only after its state record was found to
   * be. A purge that read the state first took a resubmitted job's entry for the ended one's and
   * deleted the new job, and a second coordinator's purge in flight deleted a resubmitted job's
   * task states (found by an internal review).
   * @param live whether this coordinator still coordinates (checked between steps)
   * @returns false when the job is not ended, or no longer the submission that ended
   */
  async purge(jobId: string, live: () => boolean = () => true): Promise<boolean> {
    const { getMap } = this.#part.opts, retry = this.#part.retry;
    const jobs = getMap(JobMaps.jobs), states = getMap(JobMaps.jobStates);
    const entry = await retrying(() => jobs.get(jobId), retry);
    const state = (await retrying(() => states.get(jobStateKey(jobId)), retry)) as JobStateRecord | undefined;
    if (state !== undefined && !isJobTerminal(state.state)) return false;
    if (entry !== undefined) {
      if (!isJobEntry(entry)) return false; // not a job entry (the jobs map is an ordinary map): left alone
      const created = state?.timestamps.CREATED;
      if (state === undefined || (created !== undefined && created !== entry.createdAt)) return false;
      /** Removes state record `key` if it is still one of the ended submission. @returns whether it was */
      const removeState = async (key: string): Promise<boolean> => {
        const cur = (await retrying(() => states.get(key), retry)) as StateRecord | undefined;
        if (cur === undefined) return true;
        const at = cur.timestamps.CREATED;
        if (at !== undefined && at !== entry.createdAt) return false;
        await retrying(() => states.remove(key, cur), retry);
        return true;
      };
      let ours = true;
      await mapBounded(planTasks(buildPlan(jobId, entry.definition)), 8, async (t) => {
        if (!ours || !live()) return void (ours = false);
        const st = (await retrying(() => states.get(taskStateKey(t.id)), retry)) as StateRecord | undefined;
        if (st?.timestamps.CREATED !== undefined && st.timestamps.CREATED !== entry.createdAt) {
          return void (ours = false);
        }
        for (
          const [m, k] of [[JobMaps.assignments, t.id], [JobMaps.checkpoints, t.id], [
            JobMaps.jobMetrics,
            taskMetricsKey(t.id),
          ]] as const
        ) {
          await retrying(() => getMap(m).delete(k), retry);
        }
        if (!(await removeState(taskStateKey(t.id)))) ours = false;
      });
      if (!ours || !live()) return false;
      if (!(await removeState(pipelineStateKey(entry.plan.pipelines[0]?.id ?? `${jobId}/p0`)))) return false;
      await retrying(() => states.delete(cancelKey(jobId)), retry);
      await retrying(() => getMap(JobMaps.jobMetrics).delete(jobMetricsKey(jobId)), retry);
      await retrying(() => jobs.remove(jobId, entry), retry);
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
