/**
 * The job layer of one member: a worker (data members), the coordinator (while this member
 * is master) and the read/submit/cancel API the REST routes and embedding apps call. Reads
 * answer from the maps, so every member serves them, during a failover too.
 */
import { ShoalError } from "../core/errors.ts";
import type { ServiceDeps } from "../cluster/service_deps.ts";
import type { IMap } from "../map/imap.ts";
import type { NodeId } from "../transport/transport.ts";
import { Kind } from "../wire/kinds.ts";
import type { Message } from "../wire/message.ts";
import { ConnectorRegistry } from "./connector_registry.ts";
import { Coordinator } from "./coordinator.ts";
import type { JobDeps } from "./job_deps.ts";
import { type JobDefinition, type JobDefinitionInput, JobIdSchema } from "./job_definition.ts";
import { buildPlan, planTasks } from "./job_plan.ts";
import { isJobTerminal, type JobStatus, type TaskStateRecord } from "./job_state.ts";
import {
  activeIds,
  type ActiveJobs,
  activeJobsKey,
  cancelKey,
  type CancelRequest,
  coordinatorKey,
  type CoordinatorRecord,
  isJobEntry,
  type JobEntry,
  JobMaps,
  type JobMetrics,
  jobMetricsKey,
  jobStateKey,
  type JobStateRecord,
  maxIndexedJobs,
  pipelineStateKey,
  type TaskMetrics,
  taskMetricsKey,
  taskStateKey,
  type WorkerEntry,
} from "./map_names.ts";
import {
  JobCancelTaskMsg,
  JobDeployAckMsg,
  JobDeployTaskMsg,
  JobNotifyMsg,
  JobTaskDoneAckMsg,
  JobTaskDoneMsg,
  JobTaskQueryMsg,
  JobTaskReportMsg,
  JobWorkerHelloAckMsg,
  JobWorkerHelloMsg,
} from "./messages.ts";
import { casUpdate, retrying, sameValue } from "./state_store.ts";
import { Worker } from "./worker.ts";

/** Timing knobs; the defaults suit real clusters, tests may shorten them. */
export interface JobTuning {
  /** Coordinator loop period. @default 50 */
  coordinatorTickMs?: number;
  /** Re-send period of deploy/cancel/query/hello/report messages. @default 500 */
  resendIntervalMs?: number;
  /** Coordinator scan for cancel requests and the active-jobs index (see CoordinatorOptions.walkEveryScans). @default 2000 */
  scanIntervalMs?: number;
  /** Pause between a task's batches. @default 20 */
  taskTickMs?: number;
  /** Most records a task reads per batch. @default 500 */
  batchMax?: number;
}

export interface JobServiceOptions extends ServiceDeps {
  /** The named map of this member's data grid, where all job state lives. */
  getMap: (name: string) => IMap<unknown, unknown>;
  /** Task slots this member offers. @default 4 */
  slots?: number;
  /** Lite members run no tasks (they still coordinate when they are master, and serve reads). @default false */
  lite?: boolean;
  /** Connector types; must hold the same custom connectors on every member. @default built-ins */
  registry?: ConnectorRegistry;
  tuning?: JobTuning;
  /**
   * How long an ended job's records stay in the job maps (ms after it ended); the coordinator
   * then deletes them. 0 keeps them for ever. @default a day
   */
  historyMs?: number;
  /** Split-brain protection: null when this member may serve data now, else the error a submission fails with at once. */
  gate?: () => ShoalError | null;
}

/** `GET /jobs` item. */
export interface JobSummary {
  id: string;
  name: string;
  status: JobStatus;
}

/** `GET /jobs/:id` body. */
export interface JobInfo extends JobSummary {
  createdAt: number;
  /** When each state was entered. */
  timestamps: Partial<Record<JobStatus, number>>;
  tasks: Array<{ id: string; state: string; worker: string | null; attempt: number; recordsWritten: number }>;
  metrics: { recordsRead: number; recordsWritten: number };
  error?: string;
}

/** Most jobs `list()` returns. */
export const maxListedJobs = 10_000;

export class JobService {
  readonly registry: ConnectorRegistry;
  readonly worker: Worker | undefined;
  readonly coordinator: Coordinator;
  #unsubscribe: (() => void) | undefined;
  #started = false;

  constructor(readonly opts: JobServiceOptions) {
    this.registry = opts.registry ?? ConnectorRegistry.withBuiltins();
    const tuning = opts.tuning ?? {};
    const deps: JobDeps = {
      self: opts.self,
      view: opts.view,
      clock: opts.clock,
      rng: opts.rng,
      log: opts.log,
      getMap: opts.getMap,
      send: (to, msg) => this.#send(to, msg),
    };
    this.coordinator = new Coordinator({
      ...deps,
      log: opts.log.child({ part: "coordinator" }),
      tickMs: tuning.coordinatorTickMs,
      resendIntervalMs: tuning.resendIntervalMs,
      scanIntervalMs: tuning.scanIntervalMs,
      historyMs: opts.historyMs,
    });
    const slots = opts.slots ?? 4;
    this.worker = opts.lite || slots <= 0 ? undefined : new Worker({
      ...deps,
      log: opts.log.child({ part: "worker" }),
      registry: this.registry,
      slots,
      resendIntervalMs: tuning.resendIntervalMs,
      tickMs: tuning.taskTickMs,
      batchMax: tuning.batchMax,
    });
  }

  /** Registers the job message kinds on the router and starts the worker (and the coordinator when master). */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    const c = this.coordinator;
    const w = this.worker;
    const r = this.opts.router;
    r.on(JobWorkerHelloMsg, (from, msg) => c.push({ kind: "hello", from, msg }));
    r.on(JobDeployAckMsg, (from, msg) => c.push({ kind: "deployAck", from, msg }));
    r.on(JobTaskDoneMsg, (from, msg) => c.push({ kind: "done", from, msg }));
    r.on(JobTaskReportMsg, (from, msg) => c.push({ kind: "report", from, msg }));
    r.on(JobNotifyMsg, (from, msg) => c.push({ kind: "notify", from, msg }));
    r.on(JobWorkerHelloAckMsg, (from, m) => w?.onHelloAck(from, m));
    r.on(JobDeployTaskMsg, (from, m) => w?.onDeploy(from, m));
    r.on(JobCancelTaskMsg, (from, m) => w?.onCancel(from, m));
    r.on(JobTaskDoneAckMsg, (from, m) => w?.onDoneAck(from, m));
    r.on(JobTaskQueryMsg, (from, m) => w?.onQuery(from, m));
    this.#unsubscribe = this.opts.view.subscribe((e) => {
      if (e.type === "masterChanged") {
        if (e.master === this.opts.self) void this.coordinator.takeover();
        else this.coordinator.depose(`master is now ${e.master}`);
      } else if (e.type === "memberRemoved") {
        c.push({ kind: "memberRemoved", member: e.member.id });
      }
    });
    w?.start();
    if (this.opts.view.isMaster()) void this.coordinator.takeover();
  }

  /** Stops the worker's tasks and the coordinator. The router registrations stay (the node is going away). */
  stop(): void {
    this.#unsubscribe?.();
    this.worker?.stop();
    this.coordinator.stop();
  }

  #send(to: NodeId, msg: Message): void {
    if (to === this.opts.self) {
      // Local delivery (master and worker on one member) takes the same asynchronous path.
      this.opts.clock.setTimer(0, () => this.opts.router.dispatch(this.opts.self, msg));
      return;
    }
    this.opts.transport.send(to, msg);
  }

  #map(name: string): IMap<unknown, unknown> {
    return this.opts.getMap(name);
  }

  #retry() {
    return { clock: this.opts.clock, budgetMs: 15_000 };
  }

  #notify(jobId: string, what: "submitted" | "cancel"): void {
    const master = this.opts.view.master();
    if (master) this.#send(master, { t: Kind.JobNotify, jobId, what });
  }

  /**
   * Submits a job. A submit retried with the same `id` and definition is applied once and
   * returns the same id; the same id with another definition is a CONFLICT.
   *
   * @param input the job definition (validated; see docs/jobs.md)
   * @param id a client-chosen id, so retries are safe; generated when absent
   * @returns the job id
   * @throws InvalidJobError (code INVALID_ARGUMENT) for a bad definition or id
   */
  async submit(input: JobDefinitionInput | unknown, id?: string): Promise<string> {
    const def: JobDefinition = this.registry.normalizeDefinition(input);
    const refused = this.opts.gate?.();
    if (refused) throw refused;
    if (id !== undefined) {
      const r = JobIdSchema.safeParse(id);
      if (!r.success) throw new ShoalError("INVALID_ARGUMENT", `Invalid job id: ${r.error.issues[0].message}`);
    }
    const jobId = id ?? `job-${this.opts.rng.id(16)}`;
    const jobs = this.#map(JobMaps.jobs);
    const existing = (await retrying(() => jobs.get(jobId), this.#retry())) as JobEntry | undefined;
    if (existing) {
      if (!sameValue(existing.definition, def)) {
        throw new ShoalError("CONFLICT", `Cannot submit job ${jobId}: a different job has that id`);
      }
      this.#notify(jobId, "submitted");
      return jobId;
    }
    const now = this.opts.clock.now();
    const plan = buildPlan(jobId, def);
    const states = this.#map(JobMaps.jobStates);
    const created = (): JobStateRecord => ({ state: "CREATED", timestamps: { CREATED: now }, term: 0, epoch: 0 });
    // States first, the job entry last: a job is visible to the coordinator only once complete.
    await this.#claimState(jobId, created);
    await retrying(() => states.putIfAbsent(pipelineStateKey(plan.pipelines[0].id), created()), this.#retry());
    for (const t of planTasks(plan)) {
      const ts: TaskStateRecord = { state: "CREATED", timestamps: { CREATED: now }, term: 0, epoch: 0, attempt: 1 };
      await retrying(() => states.putIfAbsent(taskStateKey(t.id), ts), this.#retry());
    }
    const entry: JobEntry = { id: jobId, definition: def, plan, createdAt: now };
    const prev = (await retrying(() => jobs.putIfAbsent(jobId, entry), this.#retry())) as JobEntry | undefined;
    if (prev && !sameValue(prev.definition, def)) {
      throw new ShoalError("CONFLICT", `Cannot submit job ${jobId}: a different job has that id`);
    }
    // Index it for a future coordinator (best effort: the coordinator's scan finds it too).
    await casUpdate<ActiveJobs>(states, activeJobsKey, (cur) => {
      const ids = activeIds(cur);
      if (ids.includes(jobId) || ids.length >= maxIndexedJobs) return undefined;
      return { ids: [...ids, jobId] };
    }, this.#retry()).catch((err) =>
      this.opts.log.warn("jobs.job.index_failed", { job: jobId, error: (err as Error).message })
    );
    this.opts.log.info("jobs.job.submitted", { job: jobId, name: def.name, parallelism: def.parallelism });
    this.#notify(jobId, "submitted");
    return jobId;
  }

  /**
   * Writes job `jobId`'s first state record. An ended job's state without its entry is what a
   * purge leaves for a moment (or for good, when cut short: job_records.ts); a job gets an entry
   * before it can run, so that job is gone and the new one starts afresh over it. A purge's last
   * step (removing that state) may land between the read and the replace: then the write is
   * tried again, or the job had no state record and never ran (found by an internal review).
   */
  async #claimState(jobId: string, created: () => JobStateRecord): Promise<void> {
    const states = this.#map(JobMaps.jobStates);
    for (let tries = 0; tries < 5; tries++) {
      const prev = (await retrying(() => states.putIfAbsent(jobStateKey(jobId), created()), this.#retry())) as
        | JobStateRecord
        | undefined;
      // Absent (written now), or a state a concurrent submit of the same id wrote.
      if (typeof prev !== "object" || prev === null || !isJobTerminal(prev.state)) return;
      if (await retrying(() => states.replace(jobStateKey(jobId), prev, created()), this.#retry())) return;
    }
    throw new ShoalError("CONFLICT", `Cannot submit job ${jobId}: its state record keeps changing`);
  }

  /**
   * Every job with its status: every active one (from the active-jobs index), and ended ones up
   * to {@link maxListedJobs} in all. The walk of the jobs map stops at that many entries in
   * partition order: before, active jobs past it were missing from `GET /jobs` and the
   * SeaTunnel routes once more than that many jobs had ended (found by an internal review).
   */
  async list(): Promise<JobSummary[]> {
    // The jobs map is an ordinary map: anything a client wrote there that is not a job entry is passed over.
    const entries = (await this.#values<unknown>(JobMaps.jobs, maxListedJobs)).filter(isJobEntry);
    const listed = new Set(entries.map((e) => e.id));
    const unlisted = activeIds(await this.#map(JobMaps.jobStates).get(activeJobsKey)).filter((id) => !listed.has(id));
    if (unlisted.length > 0) {
      for (const v of (await this.#map(JobMaps.jobs).getAll(unlisted)).values()) if (isJobEntry(v)) entries.push(v);
    }
    const states = await this.#map(JobMaps.jobStates).getAll(entries.map((e) => jobStateKey(e.id)));
    return entries
      .sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1))
      .map((e) => ({
        id: e.id,
        name: e.definition.name,
        status: (states.get(jobStateKey(e.id)) as JobStateRecord | undefined)?.state ?? "CREATED",
      }));
  }

  /** The job's definition entry, if it exists. */
  async entry(id: string): Promise<JobEntry | undefined> {
    const e = await this.#map(JobMaps.jobs).get(id);
    return isJobEntry(e) ? e : undefined;
  }

  /** A job's status, tasks and metrics, or undefined when there is no such job. */
  async get(id: string): Promise<JobInfo | undefined> {
    const entry = await this.entry(id);
    if (!entry) return undefined;
    const tasks = planTasks(entry.plan);
    const stateKeys = [jobStateKey(id), ...tasks.map((t) => taskStateKey(t.id))];
    const states = await this.#map(JobMaps.jobStates).getAll(stateKeys);
    const metrics = await this.#map(JobMaps.jobMetrics).getAll([
      jobMetricsKey(id),
      ...tasks.map((t) => taskMetricsKey(t.id)),
    ]);
    const js = states.get(jobStateKey(id)) as JobStateRecord | undefined;
    const taskRows = tasks.map((t) => {
      const s = states.get(taskStateKey(t.id)) as TaskStateRecord | undefined;
      const m = metrics.get(taskMetricsKey(t.id)) as TaskMetrics | undefined;
      return {
        id: t.id,
        state: s?.state ?? "CREATED",
        worker: s?.worker ?? null,
        attempt: s?.attempt ?? 1,
        recordsWritten: m?.recordsWritten ?? 0,
      };
    });
    const total = metrics.get(jobMetricsKey(id)) as JobMetrics | undefined;
    const sum = (f: (m: TaskMetrics) => number) =>
      tasks.reduce(
        (acc, t) =>
          acc +
          f(
            (metrics.get(taskMetricsKey(t.id)) as TaskMetrics | undefined) ??
              { recordsRead: 0, recordsWritten: 0 } as TaskMetrics,
          ),
        0,
      );
    const info: JobInfo = {
      id,
      name: entry.definition.name,
      status: js?.state ?? "CREATED",
      createdAt: entry.createdAt,
      timestamps: js?.timestamps ?? {},
      tasks: taskRows,
      metrics: total
        ? { recordsRead: total.recordsRead, recordsWritten: total.recordsWritten }
        : { recordsRead: sum((m) => m.recordsRead), recordsWritten: sum((m) => m.recordsWritten) },
    };
    if (js?.error) info.error = js.error;
    return info;
  }

  /**
   * Requests cancellation; the coordinator moves the job through CANCELING to CANCELED.
   * @returns the job's status when the request was recorded
   * @throws ShoalError NOT_FOUND when there is no such job
   */
  async cancel(id: string): Promise<JobStatus> {
    const entry = await this.entry(id);
    if (!entry) throw new ShoalError("NOT_FOUND", `Cannot cancel job ${id}: no such job`);
    const states = this.#map(JobMaps.jobStates);
    const js = (await states.get(jobStateKey(id))) as JobStateRecord | undefined;
    const status = js?.state ?? "CREATED";
    if (isJobTerminal(status)) return status;
    const req: CancelRequest = { requestedAt: this.opts.clock.now(), by: this.opts.self };
    await retrying(() => states.putIfAbsent(cancelKey(id), req), this.#retry());
    this.#notify(id, "cancel");
    return status;
  }

  /** Worker slot entries from the `workers` map. */
  async workers(): Promise<WorkerEntry[]> {
    const out = await this.#values<WorkerEntry>(JobMaps.workers, 4096);
    return out.sort((a, b) => (a.member < b.member ? -1 : 1));
  }

  /** The values of map `name`, at most `max` of them. */
  async #values<T>(name: string, max: number): Promise<T[]> {
    const out: T[] = [];
    for await (const [, v] of this.#map(name).entries()) {
      out.push(v as T);
      if (out.length >= max) break;
    }
    return out;
  }

  /** Which member coordinates (for `GET /cluster`), from the coordinator record. */
  async coordinatorRecord(): Promise<CoordinatorRecord | undefined> {
    return (await this.#map(JobMaps.jobStates).get(coordinatorKey)) as CoordinatorRecord | undefined;
  }
}
