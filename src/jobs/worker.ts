/**
 * The worker side of the job layer, on every data member: offers `slots` slots to the
 * coordinator, runs the task attempts it is given, and reports each attempt's end to the
 * master until the master acknowledges it. When the master dies the worker keeps its tasks
 * running, says hello to the new master and re-sends pending reports there. When the master's
 * member list drops this member (it was paused or cut off past failure detection), the
 * coordinator has given up on this worker and runs its tasks elsewhere: the worker stops its
 * tasks, takes a new worker id, and says hello again once the member is listed again. The same
 * when this member's side of a split merges into another cluster.
 */
import type { Timer } from "../core/clock.ts";
import type { NodeId } from "../transport/transport.ts";
import { Kind } from "../wire/kinds.ts";
import type { ConnectorRegistry } from "./connector_registry.ts";
import type { JobDeps } from "./job_deps.ts";
import { type JobEntry, JobMaps } from "./map_names.ts";
import { planTasks } from "./job_plan.ts";
import type {
  JobCancelTask,
  JobDeployTask,
  JobTaskDone,
  JobTaskDoneAck,
  JobTaskQuery,
  JobTaskReport,
  JobWorkerHelloAck,
} from "./messages.ts";
import { retrying } from "./state_store.ts";
import { TaskRunner } from "./task_runner.ts";
import { setNewest } from "../core/bounded.ts";

export interface WorkerOptions extends JobDeps {
  registry: ConnectorRegistry;
  slots: number;
  /** Re-send hellos and pending reports this often. @default 500 */
  resendIntervalMs?: number;
  /** Passed to task runners. */
  tickMs?: number;
  batchMax?: number;
}

interface Running {
  jobId: string;
  attempt: number;
  runner: TaskRunner;
}

/** Most finished-but-unacknowledged reports kept; beyond it the oldest are dropped (the coordinator re-queries). */
const maxPendingReports = 4096;
/** Most acknowledged reports remembered, to answer a later query about the same attempt. */
const maxAckedReports = 4096;

export class Worker {
  /**
   * Random per start, and new again when the member comes back after the master's list dropped
   * it (its tasks were stopped): the coordinator treats assignments with another id as lost.
   */
  #workerId: string;
  #tasks = new Map<string, Running>();
  #starting = new Set<string>();
  /**
   * Cancels that came while their task was still starting (reading the job's entry): the task
   * must not start, and the cancel is answered once the start stopped. Answering "nothing runs
   * here" at once let the coordinator end the job CANCELED while the start went on, and the
   * task then ran to its end, writing its whole output (found by an internal review).
   */
  #cancelWhileStarting = new Map<string, { attempt: number; from: NodeId }>();
  #reports = new Map<string, JobTaskDone>();
  /**
   * Reports some master acknowledged, by task id. A coordinator that later finds the task
   * still RUNNING in the maps (its state was restored from an older copy, say) and asks
   * about it gets the outcome again instead of "unknown", so it applies it rather than
   * restarting a task that finished.
   */
  #acked = new Map<string, JobTaskDone>();
  #helloAckedBy: NodeId | undefined;
  #highestTerm = 0;
  #timer: Timer | undefined;
  #stopped = false;
  /** This member is out of the master's member list (see the module's comment). */
  #outOfList = false;
  #unsubscribe: (() => void) | undefined;

  constructor(readonly opts: WorkerOptions) {
    this.#workerId = this.#newId();
  }

  #newId(): string {
    return `w-${this.opts.rng.id(12)}`;
  }

  get workerId(): string {
    return this.#workerId;
  }

  /** Tasks this worker runs now: task id → attempt. */
  running(): Map<string, number> {
    return new Map([...this.#tasks].map(([id, r]) => [id, r.attempt]));
  }

  start(): void {
    this.#unsubscribe = this.opts.view.subscribe((e) => {
      if (e.type === "masterChanged") {
        this.#helloAckedBy = undefined;
        // Terms fence a deposed coordinator's messages, and coordinator messages come only from the
        // master (#fromMaster): the old master's terms say nothing about the new one's. A new master
        // may claim a lower term than the last one heard, when it found the coordinator record forged
        // far ahead (coordinator_memory.ts nextCoordinatorTerm): kept, that dropped its every deploy.
        this.#highestTerm = 0;
        this.#resend();
      }
      if (e.type === "memberListChanged") this.#checkListed();
      // This member's side merged into another cluster: that cluster's coordinator did not assign
      // what runs here, and counts this worker's slots free: start over as when dropped.
      if (e.type === "merge") this.#restartAfterLeaving("this member's side merged into another cluster");
    });
    this.#schedule();
    this.#resend();
  }

  stop(): void {
    this.#stopped = true;
    this.#timer?.cancel();
    this.#unsubscribe?.();
    for (const r of this.#tasks.values()) r.runner.abort("worker stopped");
  }

  /**
   * Stops every task once the master's list no longer holds this member: the coordinator
   * restarts them on other workers (or a new coordinator does, when this member was the master),
   * so running them on only wastes slots and races the new attempts. Once listed again, the
   * worker says hello again (the coordinator dropped its entry).
   */
  #checkListed(): void {
    const self = this.opts.view.self;
    const listed = this.opts.view.members().some((m) => m.id === self);
    if (listed === !this.#outOfList) return;
    this.#outOfList = !listed;
    if (!listed) return this.#restartAfterLeaving("this member was removed from the cluster");
    this.#helloAckedBy = undefined;
    this.#resend();
  }

  /**
   * Stops every task and takes a new id. The new id: the member can be listed again before the
   * coordinator restarted these tasks, and must not be taken for the worker still running them.
   */
  #restartAfterLeaving(reason: string): void {
    const old = this.#workerId;
    this.#workerId = this.#newId();
    this.#helloAckedBy = undefined;
    this.opts.log.warn("jobs.worker.started_over", {
      reason,
      tasksStopped: this.#tasks.size,
      old,
      now: this.#workerId,
    });
    for (const r of this.#tasks.values()) r.runner.abort(reason);
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = this.opts.clock.setTimer(this.opts.resendIntervalMs ?? 500, () => {
      this.#resend();
      this.#schedule();
    });
  }

  #resend(): void {
    if (this.#stopped || this.#outOfList) return;
    const master = this.opts.view.master();
    if (!master) return;
    if (this.#helloAckedBy !== master) {
      this.opts.send(master, { t: Kind.JobWorkerHello, workerId: this.workerId, slots: this.opts.slots });
    }
    for (const r of this.#reports.values()) this.opts.send(master, r);
  }

  onHelloAck(from: NodeId, msg: JobWorkerHelloAck): void {
    if (msg.workerId !== this.workerId || !this.#fromMaster(from)) return;
    this.#highestTerm = Math.max(this.#highestTerm, msg.term);
    this.#helloAckedBy = from;
  }

  onDeploy(from: NodeId, msg: JobDeployTask): void {
    if (this.#stopped || this.#outOfList) return;
    const ack = (ok: boolean, reason?: string) =>
      this.opts.send(from, {
        t: Kind.JobDeployAck,
        taskId: msg.taskId,
        attempt: msg.attempt,
        workerId: this.workerId,
        ok,
        ...(reason ? { reason } : {}),
      });
    if (!this.#fromMaster(from) || msg.term < this.#highestTerm) return; // a deposed coordinator
    this.#highestTerm = msg.term;
    if (msg.workerId !== this.workerId) {
      // The coordinator holds another id for this member: an earlier start's, or one a member
      // holding the secret claimed in a hello in our name. Say hello again, so that it learns
      // ours and moves the tasks it gave the other id (it ignores this refusal's id).
      this.#helloAckedBy = undefined;
      return ack(false, `worker restarted (now ${this.workerId})`);
    }
    const cur = this.#tasks.get(msg.taskId);
    if (cur && cur.attempt === msg.attempt) return ack(true);
    if (cur && cur.attempt > msg.attempt) return ack(false, `attempt ${cur.attempt} already runs here`);
    const rep = this.#reports.get(msg.taskId);
    if (rep && rep.attempt === msg.attempt) return ack(true); // ended; the report follows
    if (this.#starting.has(msg.taskId)) return;
    if (cur) cur.runner.abort(`superseded by attempt ${msg.attempt}`);
    else if (this.#tasks.size + this.#starting.size >= this.opts.slots) return ack(false, "no free slot");
    this.#starting.add(msg.taskId);
    void this.#startTask(msg).then(
      () => ack(true),
      (err) => ack(false, `cannot start: ${(err as Error).message}`.slice(0, 1900)),
    ).finally(() => {
      this.#starting.delete(msg.taskId);
      const cancel = this.#cancelWhileStarting.get(msg.taskId);
      if (!cancel) return;
      this.#cancelWhileStarting.delete(msg.taskId);
      const cur = this.#tasks.get(msg.taskId);
      if (cur && cur.attempt <= cancel.attempt) cur.runner.cancel();
      // Not started (an older attempt may still wind down, and reports itself): answer for this one.
      if (cur?.attempt !== msg.attempt) this.#answerCanceled(cancel.from, msg.taskId, cancel.attempt);
    });
  }

  async #startTask(msg: JobDeployTask): Promise<void> {
    const jobs = this.opts.getMap(JobMaps.jobs);
    const entry = (await retrying(() => jobs.get(msg.jobId), { clock: this.opts.clock, budgetMs: 10_000 })) as
      | JobEntry
      | undefined;
    if (!entry) throw new Error(`job ${msg.jobId} is unknown`);
    const task = planTasks(entry.plan).find((t) => t.id === msg.taskId);
    if (!task) throw new Error(`task ${msg.taskId} is not in the plan of ${msg.jobId}`);
    if (this.#outOfList) throw new Error("this member was removed from the cluster");
    // Out of the list and back while the entry was read: the deploy was for the old id.
    if (msg.workerId !== this.#workerId) throw new Error(`worker restarted (now ${this.#workerId})`);
    const cancel = this.#cancelWhileStarting.get(msg.taskId);
    if (cancel && cancel.attempt >= msg.attempt) throw new Error("canceled while starting");
    const prev = this.#tasks.get(msg.taskId);
    if (prev && prev.attempt >= msg.attempt) return;
    this.#reports.delete(msg.taskId);
    this.#acked.delete(msg.taskId);
    const runner = new TaskRunner(
      {
        clock: this.opts.clock,
        log: this.opts.log,
        getMap: this.opts.getMap,
        registry: this.opts.registry,
        tickMs: this.opts.tickMs,
        batchMax: this.opts.batchMax,
      },
      entry,
      task,
      msg.attempt,
    );
    const running: Running = { jobId: msg.jobId, attempt: msg.attempt, runner };
    this.#tasks.set(msg.taskId, running);
    void runner.done.then((outcome) => {
      if (this.#tasks.get(msg.taskId) === running) this.#tasks.delete(msg.taskId);
      if (outcome.state === "ABORTED" || this.#stopped) return;
      const report: JobTaskDone = {
        t: Kind.JobTaskDone,
        jobId: msg.jobId,
        taskId: msg.taskId,
        attempt: msg.attempt,
        workerId: this.workerId,
        state: outcome.state,
        recordsRead: outcome.recordsRead,
        recordsWritten: outcome.recordsWritten,
        ...(outcome.error ? { error: outcome.error } : {}),
      };
      this.#acked.delete(msg.taskId);
      this.#keepReport(report);
      const master = this.opts.view.master();
      if (master) this.opts.send(master, report);
    });
  }

  onCancel(from: NodeId, msg: JobCancelTask): void {
    if (!this.#fromMaster(from) || msg.term < this.#highestTerm) return;
    this.#highestTerm = msg.term;
    const cur = this.#tasks.get(msg.taskId);
    if (cur && cur.attempt <= msg.attempt) cur.runner.cancel();
    if (this.#starting.has(msg.taskId)) {
      // A start under way (the first attempt, or a newer one while an older one winds down): it
      // will not start, and the cancel is answered then (see #cancelWhileStarting).
      this.#cancelWhileStarting.set(msg.taskId, { attempt: msg.attempt, from });
      return;
    }
    if (cur && cur.attempt <= msg.attempt) return;
    // Nothing runs here: say so, so the coordinator can finish cancelling.
    if (!cur && !this.#reports.has(msg.taskId)) this.#answerCanceled(from, msg.taskId, msg.attempt);
  }

  /**
   * Whether a coordinator message comes from the member this worker follows as master: the
   * coordinator runs only there, and resends each message until it is answered, so one that
   * arrives before this member learned of a new master is sent again. Any other member's is
   * dropped: a member holding the secret could otherwise cancel tasks, or raise the term this
   * worker heard to 2^53 - 1, after which it dropped every deploy of the real coordinator.
   */
  #fromMaster(from: NodeId): boolean {
    return from === this.opts.view.master();
  }

  #answerCanceled(to: NodeId, taskId: string, attempt: number): void {
    this.opts.send(to, {
      t: Kind.JobTaskDone,
      jobId: taskId.slice(0, Math.max(1, taskId.lastIndexOf("/p"))),
      taskId,
      attempt,
      workerId: this.workerId,
      state: "CANCELED",
      recordsRead: 0,
      recordsWritten: 0,
    });
  }

  onDoneAck(from: NodeId, msg: JobTaskDoneAck): void {
    if (!this.#fromMaster(from)) return; // the report goes on to the master until it acks
    const r = this.#reports.get(msg.taskId);
    if (r && r.attempt <= msg.attempt) {
      this.#reports.delete(msg.taskId);
      setNewest(this.#acked, msg.taskId, r, maxAckedReports);
    }
  }

  /**
   * Answers a coordinator's "which of these tasks do you run?". A task still being started
   * is left out of the answer (the coordinator asks again), so "unknown" always means that
   * nothing runs here and no outcome is known: only then may the coordinator restart it.
   * A task whose acknowledged outcome is remembered is answered "done" and its report is
   * sent again until acknowledged.
   */
  onQuery(from: NodeId, msg: JobTaskQuery): void {
    if (this.#outOfList || !this.#fromMaster(from) || msg.term < this.#highestTerm) return;
    this.#highestTerm = msg.term;
    const tasks: JobTaskReport["tasks"] = [];
    for (const taskId of msg.taskIds) {
      const cur = this.#tasks.get(taskId);
      if (cur) {
        tasks.push({ taskId, attempt: cur.attempt, status: "running" });
        continue;
      }
      if (this.#starting.has(taskId)) continue;
      let rep = this.#reports.get(taskId);
      const acked = this.#acked.get(taskId);
      if (!rep && acked) {
        rep = acked;
        this.#acked.delete(taskId);
        this.#keepReport(rep);
        this.opts.send(from, rep);
      }
      tasks.push(rep ? { taskId, attempt: rep.attempt, status: "done" } : { taskId, attempt: 0, status: "unknown" });
    }
    this.opts.send(from, { t: Kind.JobTaskReport, reqId: msg.reqId, workerId: this.workerId, tasks });
  }

  /** Keeps a report until acknowledged (bounded: the oldest goes first). */
  #keepReport(report: JobTaskDone): void {
    setNewest(this.#reports, report.taskId, report, maxPendingReports);
  }
}
