/**
 * Runs one attempt of one task on a worker: claims the task's checkpoint record for this
 * attempt, rolls the sink forward to the last checkpoint, then reads, transforms and writes
 * records, checkpointing at the job's interval (source offset + sink commit marker, one
 * compare-and-set). A newer attempt claiming the checkpoint record fences this one out:
 * its next checkpoint fails and it stops without publishing anything more.
 */
import type { Clock } from "../core/clock.ts";
import type { Logger } from "../core/log.ts";
import type { IMap } from "../map/imap.ts";
import type { JobRecord, SinkWriter } from "./connector.ts";
import type { ConnectorRegistry } from "./connector_registry.ts";
import { type CheckpointEntry, type JobEntry, JobMaps, type TaskMetrics, taskMetricsKey } from "./map_names.ts";
import type { TaskPlan } from "./job_plan.ts";
import { casUpdate, clean, retrying, sameValue, sleep, StateWriteRejected } from "./state_store.ts";

/** How an attempt ended. `ABORTED`: a newer attempt owns the task; nothing is reported for this one. */
export interface TaskOutcome {
  state: "FINISHED" | "FAILED" | "CANCELED" | "ABORTED";
  error?: string;
  recordsRead: number;
  recordsWritten: number;
}

export interface TaskRunnerOptions {
  clock: Clock;
  log: Logger;
  getMap: (name: string) => IMap<unknown, unknown>;
  registry: ConnectorRegistry;
  /** Pause between batches. @default 20 */
  tickMs?: number;
  /** Most records read per batch. @default 500 */
  batchMax?: number;
  /** Checkpoint early when the sink buffers this many records. @default 20000 */
  maxPendingRecords?: number;
}

export class TaskRunner {
  readonly done: Promise<TaskOutcome>;
  #cancelled = false;
  #aborted: string | undefined;
  recordsRead = 0;
  recordsWritten = 0;
  checkpointId = 0;

  constructor(
    readonly opts: TaskRunnerOptions,
    readonly entry: JobEntry,
    readonly task: TaskPlan,
    readonly attempt: number,
  ) {
    this.done = this.#run().catch((err) => this.#failed(err));
  }

  /** Stops at the next batch boundary; the outcome is CANCELED. */
  cancel(): void {
    this.#cancelled = true;
  }

  /** Stops at the next batch boundary without reporting (a newer attempt took over). */
  abort(reason: string): void {
    this.#aborted = reason;
  }

  #failed(err: unknown): TaskOutcome {
    if (err instanceof StateWriteRejected || this.#aborted) {
      return {
        state: "ABORTED",
        error: this.#aborted ?? (err as Error).message,
        recordsRead: this.recordsRead,
        recordsWritten: this.recordsWritten,
      };
    }
    const msg = err instanceof Error ? err.message : String(err);
    this.opts.log.warn("jobs.task.failed", { task: this.task.id, attempt: this.attempt, error: msg });
    return {
      state: "FAILED",
      error: msg.slice(0, 1900),
      recordsRead: this.recordsRead,
      recordsWritten: this.recordsWritten,
    };
  }

  async #run(): Promise<TaskOutcome> {
    const { clock, registry, getMap } = this.opts;
    const tickMs = this.opts.tickMs ?? 20;
    const batchMax = this.opts.batchMax ?? 500;
    const maxPending = this.opts.maxPendingRecords ?? 20_000;
    const def = this.entry.definition;
    const taskId = this.task.id;
    const attempt = this.attempt;
    const retry = { clock, stopped: () => this.#aborted !== undefined };
    const checkpoints = getMap(JobMaps.checkpoints);
    const metrics = getMap(JobMaps.jobMetrics);

    const source = registry.source(def.source.type);
    const split = source.split(def.source, this.task.index, def.parallelism);
    const transform = def.transform ? registry.transform(def.transform.type).open(def.transform) : (r: JobRecord) => r;
    const sink: SinkWriter = registry.sink(def.sink.type).open(
      { jobId: this.entry.id, run: this.entry.createdAt, taskId, attempt, getMap, checkpoints },
      def.sink,
    );

    // Claim the task for this attempt: from now on an older attempt cannot checkpoint.
    const claimed = await casUpdate<CheckpointEntry>(checkpoints, taskId, (cur) => {
      if (!cur) return { checkpointId: 0, offset: split.start, attempt, marker: null, recordsRead: 0, at: clock.now() };
      if (cur.attempt > attempt) throw new StateWriteRejected("STALE_EPOCH", `attempt ${cur.attempt} owns ${taskId}`);
      if (cur.attempt === attempt) return undefined;
      return { ...cur, attempt };
    }, retry);
    const restored = claimed!;
    this.checkpointId = restored.checkpointId;
    this.recordsRead = restored.recordsRead;
    this.recordsWritten = restored.recordsRead;
    // Roll forward: the previous attempt may have died between storing the marker and committing.
    if (restored.checkpointId > 0) await retrying(() => sink.commit(restored.checkpointId, restored.marker), retry);

    let offset = restored.offset;
    let last = restored;
    let lastCheckpointAt = clock.now();
    const rate = source.ratePerSecond(def.source, def.parallelism);
    let credit = 0;
    let lastTick = clock.now();

    const checkpoint = async () => {
      const id = last.checkpointId + 1;
      const marker = await retrying(() => sink.prepare(id), retry);
      const next: CheckpointEntry = clean({
        checkpointId: id,
        offset,
        attempt,
        marker,
        recordsRead: this.recordsRead,
        at: clock.now(),
      });
      const expected = last;
      const stored = await casUpdate<CheckpointEntry>(checkpoints, taskId, (cur) => {
        // This attempt's own write, which landed after an INDETERMINATE answer and its re-read.
        if (cur && sameValue(cur, next)) return undefined;
        if (cur && cur.attempt > attempt) {
          throw new StateWriteRejected("STALE_EPOCH", `${taskId} attempt ${attempt} no longer owns its checkpoint`);
        }
        if (!cur || cur.attempt !== attempt || cur.checkpointId !== expected.checkpointId) {
          // No newer attempt owns the record, yet it is not the one this attempt wrote: it went back
          // (a split-brain merge without protection brought an older copy back). Ending silently, as
          // for a newer attempt, would leave the task RUNNING with nothing running it: fail the
          // attempt instead, and the coordinator restarts it from the checkpoint the record holds.
          throw new Error(
            `${taskId} attempt ${attempt}: its checkpoint record went back to attempt ${cur?.attempt ?? "none"}, ` +
              `checkpoint ${cur?.checkpointId ?? "none"} (expected ${expected.checkpointId})`,
          );
        }
        return next;
      }, retry);
      last = stored!;
      this.checkpointId = id;
      await retrying(() => sink.commit(id, marker), retry);
      this.recordsWritten = this.recordsRead;
      const m: TaskMetrics = {
        recordsRead: this.recordsRead,
        recordsWritten: this.recordsWritten,
        attempt,
        checkpointId: id,
        at: clock.now(),
      };
      await retrying(() => metrics.set(taskMetricsKey(taskId), m), retry);
      lastCheckpointAt = clock.now();
    };

    for (;;) {
      if (this.#aborted) throw new StateWriteRejected("STALE_EPOCH", this.#aborted);
      if (this.#cancelled) {
        return { state: "CANCELED", recordsRead: this.recordsRead, recordsWritten: this.recordsWritten };
      }
      const now = clock.now();
      let max = batchMax;
      if (rate !== undefined) {
        credit = Math.min(credit + ((now - lastTick) * rate) / 1000, Math.max(rate, 1));
        max = Math.min(batchMax, Math.floor(credit));
      }
      lastTick = now;
      if (max > 0 && offset < split.end) {
        const records = await source.read(def.source, split, offset, Math.min(max, split.end - offset));
        if (records.length > 0) {
          credit -= records.length;
          const out = records.map(transform);
          await retrying(() => sink.write(out), retry);
          offset += records.length;
          this.recordsRead += records.length;
        }
      }
      const atEnd = offset >= split.end;
      if (atEnd || clock.now() - lastCheckpointAt >= def.checkpointIntervalMs || sink.pendingCount() >= maxPending) {
        await checkpoint();
        if (atEnd) return { state: "FINISHED", recordsRead: this.recordsRead, recordsWritten: this.recordsWritten };
      }
      await sleep(clock, tickMs);
    }
  }
}

export { TaskFailure } from "./connector.ts";
