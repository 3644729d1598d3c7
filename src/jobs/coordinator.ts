/**
 * The job coordinator (SeaTunnel's CoordinatorService + JobMaster): runs only on the master.
 *
 * On takeover it claims the next coordinator term in `job-states` (compare-and-set), then
 * restores every non-terminal job from the maps: rebuilds the plan, stamps every
 * non-terminal state record with its term (after which a deposed coordinator's
 * compare-and-set writes to them fail the term check), rebuilds slot accounting from the
 * assignments, asks the assigned workers whether their RUNNING tasks still run, re-attaches
 * those (same attempt) and restarts from the last checkpoint only tasks whose worker is dead
 * or lost them, up to the job's restart limit.
 *
 * All mutation happens in one serial loop (`#tick`); message handlers only queue events.
 * The loop, its event handlers and the scan all read and change the same private job state;
 * what needs none of it lives in job_records.ts, job_plan.ts and map_names.ts.
 */
import type { Timer } from "../core/clock.ts";
import type { IMap } from "../map/imap.ts";
import type { NodeId } from "../transport/transport.ts";
import { Kind } from "../wire/kinds.ts";
import type { Message } from "../wire/message.ts";
import { endedAt, isJobTerminal, isTaskTerminal, type TaskStateRecord, type TaskStatus } from "./job_state.ts";
import {
  type CoordEvent,
  type CoordinatorOptions,
  defaultJobHistoryMs,
  type JobRt,
  maxPurgesPerScan,
  type TaskRt,
  type WorkerRt,
} from "./coordinator_context.ts";
import { JobRecords } from "./job_records.ts";
import { buildPlan, planTasks, type TaskPlan } from "./job_plan.ts";
import {
  activeIds,
  activeJobsKey,
  type AssignmentEntry,
  cancelKey,
  type CancelRequest,
  coordinatorKey,
  type CoordinatorRecord,
  isJobEntry,
  JobMaps,
  jobStateKey,
  type JobStateRecord,
  maxIndexedJobs,
  pipelineStateKey,
  taskStateKey,
  type WorkerEntry,
} from "./map_names.ts";
import type { JobDeployAck, JobTaskDone, JobTaskReport, JobWorkerHello } from "./messages.ts";
import { casUpdate, retrying, type RetryOptions, sameValue, StateWriteRejected } from "./state_store.ts";
import { mapBounded } from "../core/map_bounded.ts";
import { CoordinatorMemory, nextCoordinatorTerm } from "./coordinator_memory.ts";

export type { CoordinatorOptions } from "./coordinator_context.ts";

const maxEvents = 10_000;
/** Most map reads in flight while loading jobs (takeover) or the tasks of one job. */
const loadWidth = 8;

/** A completion report for a job that could not be loaded tries loading it again at most this often. */
const reloadForReportMs = 1000;

export class Coordinator {
  #active = false;
  #starting = false;
  #term = 0;
  #epoch = 0;
  #jobs = new Map<string, JobRt>();
  #workers = new Map<NodeId, WorkerRt>();
  #events: CoordEvent[] = [];
  #memory = new CoordinatorMemory();
  /** Reports answering queries of an earlier term (reqId below this) are ignored. */
  #firstReqIdOfTerm = 1;
  #timer: Timer | undefined;
  #ticking = false;
  #lastScanAt = 0;
  #scans = 0;
  #scanning = false;
  /** Whether the `workers` map still needs its one-off sweep for entries of dead members. */
  #sweepWorkers = false;
  #lastFenceAt = 0;
  /** A coordinator record from a newer master epoch that blocked a claim, and when it was first seen. */
  #blockedBy: { term: number; member: NodeId; at: number } | undefined;
  #lastQueryAt = new Map<NodeId, number>();
  #reqId = 0;
  #stopped = false;
  readonly #retry: RetryOptions;
  readonly #records: JobRecords;
  /** Counters for tests and metrics. */
  readonly stats = { takeovers: 0, restarts: 0, reattached: 0, deposed: 0, walks: 0, foreignReports: 0 };

  constructor(readonly opts: CoordinatorOptions) {
    this.#retry = { clock: opts.clock, budgetMs: 30_000, stopped: () => !this.#active && !this.#starting };
    this.#records = new JobRecords({ opts, retry: this.#retry, term: () => this.#term, epoch: () => this.#epoch });
  }

  get active(): boolean {
    return this.#active;
  }
  get term(): number {
    return this.#term;
  }

  #map(name: string): IMap<unknown, unknown> {
    return this.opts.getMap(name);
  }

  /** Queues an event from a worker or the cluster. */
  push(e: CoordEvent): void {
    if (!this.#active && !this.#starting) return;
    if (this.#events.length >= maxEvents) return; // senders retry
    this.#events.push(e);
    this.#kick();
  }

  /** Takes over as coordinator (this member just became master). */
  async takeover(): Promise<void> {
    if (this.#active || this.#starting || this.#stopped) return;
    this.#starting = true;
    const { clock, log, view, self } = this.opts;
    try {
      const epoch = view.masterEpoch;
      const rec = await casUpdate<CoordinatorRecord>(this.#map(JobMaps.jobStates), coordinatorKey, (cur) => {
        if (!view.isMaster()) throw new StateWriteRejected("STALE_EPOCH", "no longer master");
        // Master epochs agree once views converge: a coordinator record from a newer epoch
        // means this member's mastership is already stale.
        if (cur && cur.member !== self && cur.epoch > epoch) {
          // Usually this member's mastership is stale and its view will change in a moment.
          // But master epochs are counted per side of a split: after a healed split the
          // record can come from the other side's master, which is master no more. So a
          // member that stays master while the same record sits there for claimAfterMs
          // claims anyway (the term, not the epoch, fences the loser).
          const now = clock.now();
          if (this.#blockedBy?.term !== cur.term || this.#blockedBy.member !== cur.member) {
            this.#blockedBy = { term: cur.term, member: cur.member, at: now };
          }
          if (cur.member === view.master() || now - this.#blockedBy.at < (this.opts.claimAfterMs ?? 5000)) {
            throw new StateWriteRejected(
              "STALE_EPOCH",
              `coordinator ${cur.member} holds master epoch ${cur.epoch} > ${epoch}`,
            );
          }
          this.opts.log.warn("jobs.coordinator.claimed_from_former_master", {
            member: cur.member,
            term: cur.term,
            epoch: cur.epoch,
            mine: epoch,
          });
        }
        return { member: self, term: nextCoordinatorTerm(cur?.term ?? 0, this.#term, log), epoch, since: clock.now() };
      }, this.#retry);
      this.#term = rec!.term;
      this.#epoch = epoch;
      this.#jobs.clear();
      this.#workers.clear();
      this.#memory.forgetLoadTries();
      this.#lastQueryAt.clear();
      this.#firstReqIdOfTerm = this.#reqId + 1;
      this.#events = this.#events.filter((e) => e.kind !== "report");
      // Workers: the live members' entries (one batched read), known until their hello
      // arrives. Entries of dead members are swept by the background scan; a full scan
      // here would hold the takeover up for a walk over every partition.
      const workersMap = this.#map(JobMaps.workers);
      const memberIds = view.members().map((m) => m.id);
      const entries = await retrying(() => workersMap.getAll(memberIds), this.#retry);
      for (const [member, value] of entries) {
        const w = value as WorkerEntry;
        this.#workers.set(member as string, {
          member: member as string,
          workerId: w.workerId,
          total: w.total,
          tasks: new Set(),
        });
      }
      this.#sweepWorkers = true;
      // Jobs: those in the active-jobs index now; the background scan finds any other.
      const index = await retrying(() => this.#map(JobMaps.jobStates).get(activeJobsKey), this.#retry);
      const ids = activeIds(index).slice(0, this.opts.maxActiveJobs ?? 1000);
      // A job that cannot be loaded now is left to the scan: one such job failed every takeover.
      const loadFailed = (id: string) => (err: unknown) =>
        log.warn("jobs.job.load_failed", { job: id, error: (err as Error).message });
      await mapBounded(ids, loadWidth, (id) => this.#load(id).catch(loadFailed(id)));
      for (const w of this.#workers.values()) await this.#records.writeWorker(w);
      this.#active = true;
      this.#lastScanAt = -Infinity; // scan (and walk) right away
      this.#scans = 0;
      this.#lastFenceAt = clock.now();
      this.stats.takeovers++;
      log.info("jobs.coordinator.took_over", {
        term: this.#term,
        epoch,
        jobs: this.#jobs.size,
        workers: this.#workers.size,
      });
      this.#kick();
    } catch (err) {
      log.warn("jobs.coordinator.takeover_failed", { error: (err as Error).message });
      this.#jobs.clear();
      // Try again while still master.
      if (!this.#stopped && view.isMaster()) clock.setTimer(500, () => void this.takeover());
    } finally {
      this.#starting = false;
    }
  }

  /** Stops coordinating (lost mastership, or a newer term appeared). */
  depose(reason: string): void {
    if (!this.#active && !this.#starting) return;
    this.#active = false;
    this.#jobs.clear();
    this.#workers.clear();
    this.#events = [];
    this.#timer?.cancel();
    this.stats.deposed++;
    this.opts.log.info("jobs.coordinator.deposed", { term: this.#term, reason });
  }

  /**
   * Deposes, and while still master claims again later: the claim rule decides whether the newer
   * term stands. A write refused for a newer term deposed without that, and the master coordinated
   * no more until the next master change.
   */
  #deposeAndReclaim(reason: string): void {
    this.depose(reason);
    if (!this.opts.view.isMaster() || this.#stopped) return;
    this.opts.clock.setTimer(this.opts.fenceCheckIntervalMs ?? 1000, () => void this.takeover());
  }

  stop(): void {
    this.#stopped = true;
    this.depose("stopped");
  }

  #kick(): void {
    if (!this.#active || this.#ticking) return;
    this.#timer?.cancel();
    this.#timer = this.opts.clock.setTimer(0, () => void this.#tick());
  }

  #scheduleTick(): void {
    if (!this.#active) return;
    this.#timer?.cancel();
    const tickMs = this.opts.tickMs ?? 50;
    let delay = tickMs;
    if (this.#jobs.size === 0 && this.#events.length === 0) {
      // Nothing to reconcile: sleep until the next fence check or scan is due (an event wakes
      // the loop at once, see push; a lost mastership deposes it through the view).
      const fenceAt = this.#lastFenceAt + (this.opts.fenceCheckIntervalMs ?? 1000);
      const scanAt = this.#scanning ? Infinity : this.#lastScanAt + (this.opts.scanIntervalMs ?? 2000);
      delay = Math.max(tickMs, Math.min(fenceAt, scanAt) - this.opts.clock.now());
    }
    this.#timer = this.opts.clock.setTimer(delay, () => void this.#tick());
  }

  async #tick(): Promise<void> {
    if (!this.#active || this.#ticking) return;
    this.#ticking = true;
    const { clock, view, log } = this.opts;
    try {
      if (!view.isMaster()) return this.depose("no longer master");
      const now = clock.now();
      if (now - this.#lastFenceAt >= (this.opts.fenceCheckIntervalMs ?? 1000)) {
        this.#lastFenceAt = now;
        const rec = (await this.#map(JobMaps.jobStates).get(coordinatorKey)) as CoordinatorRecord | undefined;
        if (rec && rec.term !== this.#term) return this.#deposeAndReclaim(`term ${rec.term} of ${rec.member} is newer`);
      }
      while (this.#events.length > 0 && this.#active) {
        await this.#handle(this.#events.shift()!);
      }
      if (this.#active && !this.#scanning && now - this.#lastScanAt >= (this.opts.scanIntervalMs ?? 2000)) {
        // A scan walks every partition of the maps: far too slow for this loop, so it runs
        // beside it and hands what it finds back as events.
        this.#scanning = true;
        const term = this.#term;
        void this.#scan(term).catch((err) =>
          log.warn("jobs.coordinator.scan_failed", { error: (err as Error).message })
        ).finally(() => {
          this.#scanning = false;
          this.#lastScanAt = clock.now();
          // The loop may sleep past the next scan's time: wake it then (a tick under way does it).
          if (!this.#ticking) this.#scheduleTick();
        });
      }
      for (const job of [...this.#jobs.values()]) {
        if (!this.#active) break;
        await this.#reconcile(job);
      }
    } catch (err) {
      if (err instanceof StateWriteRejected && err.code === "STALE_EPOCH") this.#deposeAndReclaim(err.message);
      else log.warn("jobs.coordinator.tick_failed", { error: (err as Error).message });
    } finally {
      this.#ticking = false;
      this.#scheduleTick();
    }
  }

  #releaseSlot(t: TaskRt): WorkerRt | undefined {
    if (!t.asg) return undefined;
    const w = this.#workers.get(t.asg.worker);
    if (w && w.workerId === t.asg.workerId && w.tasks.delete(t.plan.id)) return w;
    return undefined;
  }

  // ---- loading -------------------------------------------------------------------

  /**
   * Loads a job from the maps into the loop (rebuilds the plan, stamps its records, rebuilds
   * slot accounting). Leaves it alone, and remembers when, if its entry or any of its state
   * records cannot be read.
   */
  async #load(jobId: string): Promise<void> {
    if (this.#jobs.has(jobId) || this.#memory.ended(jobId)) return;
    // Warn once per job and term; reports for an unloadable job retry the load every second.
    const again = this.#memory.loadTriedAt(jobId) !== undefined;
    const warn = (event: string, fields: Record<string, unknown>) =>
      again ? this.opts.log.debug(event, fields) : this.opts.log.warn(event, fields);
    this.#memory.loadTried(jobId, this.opts.clock.now());
    const states = this.#map(JobMaps.jobStates);
    const entry = await retrying(() => this.#map(JobMaps.jobs).get(jobId), this.#retry);
    if (!entry) return;
    if (!isJobEntry(entry)) return warn("jobs.job.entry_invalid", { job: jobId });
    const plan = buildPlan(jobId, entry.definition);
    if (!sameValue(plan, entry.plan)) {
      this.opts.log.warn("jobs.job.plan_rebuilt", { job: jobId });
    }
    entry.plan = plan;
    const now = this.opts.clock.now();
    const created = (): JobStateRecord => ({
      state: "CREATED",
      timestamps: { CREATED: entry.createdAt ?? now },
      term: 0,
      epoch: 0,
    });
    const cur = (await retrying(() => states.get(jobStateKey(jobId)), this.#retry)) as JobStateRecord | undefined;
    if (!cur) {
      // Submit writes every state record before the entry: an entry without its state means
      // the grid lost data (every replica of a partition died). Running it could repeat a
      // finished job, so leave it alone.
      warn("jobs.job.state_missing", { job: jobId });
      return;
    }
    if (isJobTerminal(cur.state)) {
      this.#memory.rememberEnded(jobId, endedAt(cur, now));
      await this.#records.unindex(jobId);
      return;
    }
    const state = await this.#records.stamp(jobStateKey(jobId), cur);
    if (isJobTerminal(state.state)) return this.#memory.rememberEnded(jobId, endedAt(state, now));
    // The records are independent: read and stamp them side by side (a takeover waits on this).
    const asgs = this.#map(JobMaps.assignments);
    const pipelineP = this.#records.stamp(pipelineStateKey(plan.pipelines[0].id), created());
    const cancelP = retrying(() => states.get(cancelKey(jobId)), this.#retry) as Promise<CancelRequest | undefined>;
    const loaded = await mapBounded(planTasks(plan), loadWidth, async (tp) => {
      const [ts, asg] = await Promise.all([
        retrying(() => states.get(taskStateKey(tp.id)), this.#retry) as Promise<TaskStateRecord | undefined>,
        retrying(() => asgs.get(tp.id), this.#retry) as Promise<AssignmentEntry | undefined>,
      ]);
      if (!ts) return undefined; // lost, like a missing job state
      const st = isTaskTerminal(ts.state) ? ts : await this.#records.stamp(taskStateKey(tp.id), ts);
      return { tp, st, asg };
    });
    if (loaded.some((x) => x === undefined)) {
      warn("jobs.job.task_states_missing", { job: jobId });
      return;
    }
    const [pipeline, cancel] = await Promise.all([pipelineP, cancelP]);
    const tasks = new Map<string, TaskRt>();
    for (
      const { tp, st, asg } of loaded as Array<{ tp: TaskPlan; st: TaskStateRecord; asg: AssignmentEntry | undefined }>
    ) {
      const t: TaskRt = { plan: tp, state: st, lastSentAt: 0, verified: st.state !== "RUNNING" };
      if (
        asg && asg.attempt === st.attempt &&
        (st.state === "SCHEDULED" || st.state === "RUNNING" || st.state === "CANCELING")
      ) {
        t.asg = asg;
        const w = this.#workers.get(asg.worker);
        if (w && w.workerId === asg.workerId) w.tasks.add(tp.id);
      }
      tasks.set(tp.id, t);
    }
    this.#memory.loaded(jobId);
    if (this.#jobs.has(jobId)) return; // loaded meanwhile
    this.#jobs.set(jobId, { id: jobId, entry, state, pipeline, tasks, cancel: cancel !== undefined });
  }

  /**
   * Looks through the maps for what no message told this coordinator: jobs it does not know
   * (a lost submit notification: every scan reads the active-jobs index; jobs the index does
   * not name: the walk of `jobs`, a call per partition, on the first scan after takeover, then
   * every `walkEveryScans`th, every fifth while the index is full), cancel requests, and
   * `workers` entries of dead members (once after takeover). Runs beside the loop and only
   * queues events; the loop re-checks everything before acting. It also purges the records of
   * jobs that ended more than `historyMs` ago (ended jobs are final: nothing in the loop
   * touches them; a new coordinator learns them as its walks load them).
   */
  async #scan(term: number): Promise<void> {
    const live = () => this.#active && this.#term === term;
    const n = this.#scans++, now = this.opts.clock.now(), scanMs = this.opts.scanIntervalMs ?? 2000;
    let found = 0;
    /** Queues job `id` when unknown; false once the loop has no room for more. */
    const find = (id: string, retryAfterMs = 0): boolean => {
      if (this.#jobs.size + found >= (this.opts.maxActiveJobs ?? 1000)) return false;
      if (this.#jobs.has(id) || this.#memory.ended(id)) return true;
      if (now - (this.#memory.loadTriedAt(id) ?? -Infinity) < retryAfterMs) return true;
      found++;
      this.push({ kind: "found", jobId: id });
      return true;
    };
    const index = activeIds(await this.#map(JobMaps.jobStates).get(activeJobsKey));
    if (!live()) return;
    // A job whose load failed is tried again at the pace the walk used to find it.
    for (const id of index) if (!find(id, 5 * scanMs)) break;
    const full = index.length >= maxIndexedJobs;
    if (n % (full ? 5 : Math.max(1, this.opts.walkEveryScans ?? 30)) === 0) {
      this.stats.walks++;
      for await (const id of this.#map(JobMaps.jobs).keys()) if (!live() || !find(id as string)) break;
    }
    const ids = [...this.#jobs.values()].filter((j) => !j.cancel).map((j) => j.id);
    if (ids.length > 0 && live()) {
      const got = await this.#map(JobMaps.jobStates).getAll(ids.map(cancelKey));
      for (const id of ids) if (got.has(cancelKey(id))) this.push({ kind: "cancelFound", jobId: id });
    }
    const historyMs = this.opts.historyMs ?? defaultJobHistoryMs;
    for (const id of historyMs > 0 ? this.#memory.endedBefore(now - historyMs, maxPurgesPerScan) : []) {
      if (!live()) return;
      if (await this.#records.purge(id, live)) this.opts.log.info("jobs.job.purged", { job: id });
      this.#memory.forgetEnded(id);
    }
    if (this.#sweepWorkers && live()) {
      for await (const [member, value] of this.#map(JobMaps.workers).entries()) {
        if (!live()) return;
        if (!this.opts.view.member(member as string)) {
          this.push({ kind: "staleWorker", member: member as string, entry: value as WorkerEntry });
        }
      }
      this.#sweepWorkers = false;
    }
  }

  // ---- events --------------------------------------------------------------------

  async #handle(e: CoordEvent): Promise<void> {
    switch (e.kind) {
      case "hello":
        return await this.#onHello(e.from, e.msg);
      case "deployAck":
        return await this.#onDeployAck(e.from, e.msg);
      case "done":
        return await this.#onDone(e.from, e.msg);
      case "report":
        return await this.#onReport(e.from, e.msg);
      case "notify": {
        if (e.msg.what === "submitted") {
          if (this.#jobs.size >= (this.opts.maxActiveJobs ?? 1000)) return; // the scan loads it later (active index)
          await this.#load(e.msg.jobId);
          for (const w of this.#workers.values()) await this.#records.writeWorker(w);
        } else {
          // A hint: the request is the record JobService.cancel writes first (any member can send
          // the notice; one holding the secret cancelled jobs nobody asked to). The scan retries.
          const job = this.#jobs.get(e.msg.jobId);
          if (job && (await this.#map(JobMaps.jobStates).get(cancelKey(job.id)).catch(() => undefined))) {
            job.cancel = true;
          }
        }
        return;
      }
      case "found": {
        if (this.#jobs.has(e.jobId) || this.#memory.ended(e.jobId)) return;
        await this.#load(e.jobId);
        for (const w of this.#workers.values()) await this.#records.writeWorker(w);
        return;
      }
      case "cancelFound": {
        const job = this.#jobs.get(e.jobId);
        if (job) job.cancel = true;
        return;
      }
      case "staleWorker": {
        if (this.opts.view.member(e.member)) return;
        await this.#map(JobMaps.workers).remove(e.member, e.entry).catch(() => false);
        return;
      }
      case "memberRemoved": {
        this.#workers.delete(e.member);
        const map = this.#map(JobMaps.workers);
        const cur = await map.get(e.member);
        if (cur !== undefined) await map.remove(e.member, cur);
        return;
      }
    }
  }

  async #onHello(from: NodeId, msg: JobWorkerHello): Promise<void> {
    if (!this.opts.view.member(from)) return;
    let w = this.#workers.get(from);
    if (!w || w.workerId !== msg.workerId) {
      if (w) this.opts.log.info("jobs.worker.restarted", { member: from, old: w.workerId, now: msg.workerId });
      w = { member: from, workerId: msg.workerId, total: msg.slots, tasks: new Set() };
      this.#workers.set(from, w);
    }
    w.total = msg.slots;
    await this.#records.writeWorker(w);
    this.opts.send(from, { t: Kind.JobWorkerHelloAck, workerId: msg.workerId, term: this.#term });
  }

  #findTask(taskId: string): [JobRt, TaskRt] | undefined {
    for (const job of this.#jobs.values()) {
      const t = job.tasks.get(taskId);
      if (t) return [job, t];
    }
    return undefined;
  }

  async #onDeployAck(from: NodeId, msg: JobDeployAck): Promise<void> {
    const found = this.#findTask(msg.taskId);
    if (!found) return;
    const [job, t] = found;
    if (!t.asg || t.asg.worker !== from || t.asg.workerId !== msg.workerId || t.state.attempt !== msg.attempt) return;
    if (!msg.ok) {
      if (t.state.state === "SCHEDULED" || t.state.state === "RUNNING") {
        await this.#restart(job, t, `worker ${from} refused the task: ${msg.reason ?? "no reason"}`);
      }
      return;
    }
    t.verified = true;
    if (
      t.state.state === "SCHEDULED" && !job.cancel && job.state.state !== "CANCELING" && job.state.state !== "FAILING"
    ) {
      await this.#records.setTask(t, "RUNNING");
    }
  }

  async #onDone(from: NodeId, msg: JobTaskDone): Promise<void> {
    const ack = () => this.opts.send(from, { t: Kind.JobTaskDoneAck, taskId: msg.taskId, attempt: msg.attempt });
    // A report can arrive before this coordinator loaded the job (right after a takeover):
    // load it first, or the report would be acknowledged and lost.
    if (!this.#jobs.has(msg.jobId) && !this.#memory.ended(msg.jobId)) {
      const triedAt = this.#memory.loadTriedAt(msg.jobId);
      if (triedAt !== undefined && this.opts.clock.now() - triedAt < reloadForReportMs) return; // the worker re-sends
      await this.#load(msg.jobId);
      for (const w of this.#workers.values()) await this.#records.writeWorker(w);
    }
    if (this.#memory.ended(msg.jobId)) return ack(); // nothing left to apply
    const job = this.#jobs.get(msg.jobId);
    // Not loadable now (its entry or a state record cannot be read, e.g. right after a
    // split): keep the report unacknowledged. Acknowledging it would make the worker forget
    // the outcome, and once the job loads the task would look lost and be restarted.
    if (!job) return;
    const t = job.tasks.get(msg.taskId);
    if (!t) return ack(); // not a task of this job's plan
    if (msg.attempt < t.state.attempt || isTaskTerminal(t.state.state)) return ack();
    if (msg.attempt > t.state.attempt) return;
    if (t.state.state === "CREATED") return ack();
    // Only the worker given the attempt reports its end: a member holding the secret ended others'
    // running tasks, and the job FINISHED with part of its output. Not acknowledged (not that worker).
    if (t.asg && (t.asg.worker !== from || t.asg.workerId !== msg.workerId)) return void this.stats.foreignReports++;
    const w = this.#releaseSlot(t);
    const stopping = job.cancel || job.state.state === "CANCELING" || job.state.state === "FAILING";
    if (stopping && msg.state !== "FINISHED") {
      if (t.state.state !== "CANCELING") await this.#records.setTask(t, "CANCELING");
      await this.#records.setTask(t, "CANCELED");
    } else if (msg.state === "FINISHED") {
      await this.#records.setTask(t, t.state.state === "CANCELING" ? "CANCELED" : "FINISHED");
      await this.#records.writeMetrics(t, msg);
    } else if (msg.state === "CANCELED" && t.state.state === "CANCELING") {
      await this.#records.setTask(t, "CANCELED");
    } else {
      await this.#restart(job, t, msg.error ?? `task ${msg.state.toLowerCase()} on ${from}`);
    }
    if (w) await this.#records.writeWorker(w);
    ack();
  }

  async #onReport(from: NodeId, msg: JobTaskReport): Promise<void> {
    if (msg.reqId < this.#firstReqIdOfTerm) return; // answers a query of an earlier term
    for (const r of msg.tasks) {
      const found = this.#findTask(r.taskId);
      if (!found) continue;
      const [job, t] = found;
      if (t.verified || t.state.state !== "RUNNING" || !t.asg || t.asg.worker !== from) continue;
      if (
        msg.workerId === t.asg.workerId && r.attempt === t.state.attempt &&
        (r.status === "running" || r.status === "done")
      ) {
        t.verified = true;
        this.stats.reattached++;
        this.opts.log.info("jobs.task.reattached", { task: t.plan.id, attempt: r.attempt, worker: from });
      } else {
        const w = this.#releaseSlot(t);
        await this.#restart(job, t, `worker ${from} no longer runs the task`);
        if (w) await this.#records.writeWorker(w);
      }
    }
  }

  // ---- scheduling ------------------------------------------------------------------

  /** The live worker with the most free slots (ties: the oldest member). */
  #pickWorker(): WorkerRt | undefined {
    const order = this.opts.view.members().map((m) => m.id);
    let best: WorkerRt | undefined;
    let bestFree = 0;
    for (const id of order) {
      const w = this.#workers.get(id);
      if (!w) continue;
      const free = w.total - w.tasks.size;
      if (free > bestFree) {
        best = w;
        bestFree = free;
      }
    }
    return best;
  }

  #workerLost(t: TaskRt): string | undefined {
    if (!t.asg) return undefined;
    if (!this.opts.view.member(t.asg.worker)) return `worker ${t.asg.worker} is dead`;
    const w = this.#workers.get(t.asg.worker);
    if (w && w.workerId !== t.asg.workerId) return `worker ${t.asg.worker} restarted`;
    return undefined;
  }

  /** Restarts a task from its last checkpoint as attempt + 1, or fails it past the limit. */
  async #restart(job: JobRt, t: TaskRt, reason: string): Promise<void> {
    const attempt = t.state.attempt;
    const limit = 1 + job.entry.definition.maxTaskRestarts;
    const w = this.#releaseSlot(t);
    if (w) await this.#records.writeWorker(w);
    t.asg = undefined;
    t.verified = true;
    if (attempt >= limit) {
      const error = `task ${t.plan.id} failed after ${attempt} attempt${attempt === 1 ? "" : "s"}: ${reason}`;
      await this.#records.setTask(t, "FAILED", { error });
      if (job.state.state !== "FAILING" && job.state.state !== "CANCELING" && !isJobTerminal(job.state.state)) {
        await this.#records.setJob(job, "FAILING", error);
      }
      return;
    }
    this.stats.restarts++;
    this.opts.log.info("jobs.task.restarted", { task: t.plan.id, attempt: attempt + 1, reason });
    await this.#records.setTask(t, "CREATED", { attempt: attempt + 1, worker: undefined, error: undefined });
  }

  async #assign(t: TaskRt): Promise<boolean> {
    const w = this.#pickWorker();
    if (!w) return false;
    w.tasks.add(t.plan.id);
    const asg: AssignmentEntry = {
      jobId: t.plan.id.slice(0, t.plan.id.lastIndexOf("/p")),
      worker: w.member,
      workerId: w.workerId,
      attempt: t.state.attempt,
      term: this.#term,
      assignedAt: this.opts.clock.now(),
    };
    await this.#records.writeAssignment(t.plan.id, asg);
    t.asg = asg;
    t.lastSentAt = 0;
    t.verified = true;
    await this.#records.writeWorker(w);
    await this.#records.setTask(t, "SCHEDULED", { worker: w.member });
    return true;
  }

  #deploy(t: TaskRt): void {
    this.#sendToWorker(t, (asg) => ({
      t: Kind.JobDeployTask,
      jobId: asg.jobId,
      taskId: t.plan.id,
      attempt: asg.attempt,
      workerId: asg.workerId,
      term: this.#term,
    }));
  }

  #sendCancel(t: TaskRt): void {
    this.#sendToWorker(
      t,
      () => ({ t: Kind.JobCancelTask, taskId: t.plan.id, attempt: t.state.attempt, term: this.#term }),
    );
  }

  /** Sends the message `make` builds to the task's assigned worker, at most once per resend interval. */
  #sendToWorker(t: TaskRt, make: (asg: NonNullable<TaskRt["asg"]>) => Message): void {
    const now = this.opts.clock.now();
    if (!t.asg || now - t.lastSentAt < (this.opts.resendIntervalMs ?? 500)) return;
    t.lastSentAt = now;
    this.opts.send(t.asg.worker, make(t.asg));
  }

  #query(job: JobRt): void {
    const now = this.opts.clock.now();
    const byWorker = new Map<NodeId, string[]>();
    for (const t of job.tasks.values()) {
      if (t.verified || t.state.state !== "RUNNING" || !t.asg) continue;
      const list = byWorker.get(t.asg.worker) ?? [];
      list.push(t.plan.id);
      byWorker.set(t.asg.worker, list);
    }
    for (const [worker, taskIds] of byWorker) {
      if (now - (this.#lastQueryAt.get(`${worker}\u0000${job.id}`) ?? 0) < (this.opts.resendIntervalMs ?? 500)) {
        continue;
      }
      this.#lastQueryAt.set(`${worker}\u0000${job.id}`, now);
      this.opts.send(worker, { t: Kind.JobTaskQuery, reqId: ++this.#reqId, term: this.#term, taskIds });
    }
  }

  // ---- the per-job state machine ----------------------------------------------------

  async #reconcile(job: JobRt): Promise<void> {
    if (isJobTerminal(job.state.state)) {
      this.#jobs.delete(job.id);
      this.#memory.rememberEnded(job.id, endedAt(job.state, this.opts.clock.now()));
      return;
    }
    const tasks = [...job.tasks.values()];
    if (job.cancel && job.state.state !== "CANCELING" && job.state.state !== "FAILING") {
      await this.#records.setJob(job, "CANCELING");
    }
    const s = job.state.state;
    if (s === "CANCELING" || s === "FAILING") {
      for (const t of tasks) {
        const ts = t.state.state;
        if (isTaskTerminal(ts)) continue;
        if (ts === "CREATED" || !t.asg || this.#workerLost(t)) {
          const w = this.#releaseSlot(t);
          await this.#records.setTask(
            t,
            ts === "CREATED" ? "CANCELED" : (ts === "CANCELING" ? "CANCELED" : "CANCELING"),
          );
          if (t.state.state === "CANCELING") await this.#records.setTask(t, "CANCELED");
          if (w) await this.#records.writeWorker(w);
        } else {
          if (ts !== "CANCELING") {
            await this.#records.setTask(t, "CANCELING");
            t.lastSentAt = 0;
          }
          this.#sendCancel(t);
        }
      }
      if (tasks.every((t) => isTaskTerminal(t.state.state))) {
        await this.#finishJob(job, s === "CANCELING" ? "CANCELED" : "FAILED", job.state.error);
      }
      return;
    }

    for (const t of tasks) {
      const ts = t.state.state;
      if (ts === "SCHEDULED" || ts === "RUNNING") {
        const lost = this.#workerLost(t);
        if (lost) {
          await this.#restart(job, t, lost);
          if (job.state.state === "FAILING") return;
          continue;
        }
        if (ts === "SCHEDULED") this.#deploy(t);
      }
    }
    for (const t of tasks) {
      if (t.state.state === "CREATED" && !(await this.#assign(t))) break;
    }
    for (const t of tasks) if (t.state.state === "SCHEDULED") this.#deploy(t);
    this.#query(job);

    const all = (pred: (st: TaskStatus) => boolean) => tasks.every((t) => pred(t.state.state));
    if (job.state.state === "CREATED" && all((st) => st !== "CREATED")) await this.#records.setJob(job, "SCHEDULED");
    if (job.state.state === "SCHEDULED" && all((st) => st === "RUNNING" || st === "FINISHED")) {
      await this.#records.setJob(job, "RUNNING");
    }
    if (job.state.state === "RUNNING" && tasks.some((t) => t.state.state === "FINISHED")) {
      await this.#records.setJob(job, "FINISHING");
    }
    if (job.state.state === "FINISHING" && all((st) => st === "FINISHED")) await this.#finishJob(job, "FINISHED");
  }

  async #finishJob(job: JobRt, to: "FINISHED" | "FAILED" | "CANCELED", error?: string): Promise<void> {
    const touched = new Set<WorkerRt>();
    for (const t of job.tasks.values()) {
      const w = this.#releaseSlot(t);
      if (w) touched.add(w);
    }
    for (const w of touched) await this.#records.writeWorker(w);
    await this.#records.writeTotals(job);
    await this.#records.setJob(job, to, error);
    this.#jobs.delete(job.id);
    this.#memory.rememberEnded(job.id, endedAt(job.state, this.opts.clock.now()));
    await this.#records.unindex(job.id);
    // Only an attempt that did not finish can leave a staged segment behind.
    if ([...job.tasks.values()].some((t) => t.state.attempt > 1 || t.state.state !== "FINISHED")) {
      // Best effort: a segment left behind is unreachable (its job is gone) and costs only memory.
      void this.#records.cleanupStages(job.id).catch((err) =>
        this.opts.log.warn("jobs.stage.cleanup_failed", { job: job.id, error: (err as Error)?.message ?? String(err) })
      );
    }
  }
}
