/**
 * The `log` sink: appends each record to a per-task list in an IMap (key = task id). An
 * append is not idempotent, so the sink is two-phase:
 *
 * 1. `prepare(c)` stages the records buffered since checkpoint c-1 in the `checkpoints`
 *    map under `stage/<taskId>/a<attempt>/c<c>` (the attempt in the key keeps a stale
 *    attempt from overwriting a newer attempt's stage);
 * 2. the task stores checkpoint c with that stage key as its commit marker;
 * 3. `commit(c)` appends the stage to the list with the built-in `append-once` entry
 *    processor, which records `applied = c` with it atomically on the key's primary, so a
 *    segment is appended at most once, then deletes the stage.
 *
 * A task restored from checkpoint c calls `commit(c)` again: if the previous attempt died
 * between 2 and 3 the segment is appended now (no gap); if it died after 3 nothing happens
 * (no duplicate). Records after checkpoint c were never committed and are produced again.
 */
import { ShoalError } from "../core/errors.ts";
import type { IMap } from "../map/imap.ts";
import { appendOnce, type AppendOnceList } from "../map/entry_processor.ts";
import { type JobRecord, mapConfigured, type SinkConnector, type SinkWriter } from "./connector.ts";
import { stageKey } from "./map_names.ts";

/** Most entries one task's list may hold (its value must fit one message). */
export const maxLogEntriesPerTask = 200_000;

/** The per-task list stored in the log map (`applied` = the highest checkpoint whose segment has been appended). */
export type LogList = AppendOnceList<JobRecord>;

/** A staged segment in the `checkpoints` map. */
export interface LogStage {
  checkpointId: number;
  records: JobRecord[];
}

/** The commit marker of a log sink checkpoint. */
export interface LogMarker {
  stage: string | null;
  count: number;
}

/**
 * The list after appending segment `checkpointId`, or undefined when that segment (or a
 * later one) is already applied: the rule `append-once` applies on the primary.
 * @throws ShoalError OVERLOADED past {@link maxLogEntriesPerTask} entries
 */
export function appendSegment(
  list: LogList | undefined,
  checkpointId: number,
  records: JobRecord[],
  run?: number,
): LogList | undefined {
  try {
    return appendOnce(list, checkpointId, records, maxLogEntriesPerTask, run);
  } catch {
    throw new ShoalError("OVERLOADED", `Cannot append to log: more than ${maxLogEntriesPerTask} entries for one task`);
  }
}

function isMarker(m: unknown): m is LogMarker {
  return typeof m === "object" && m !== null && "stage" in m;
}

/**
 * Appends staged segment `checkpointId` (named by `marker`) to the task's list, once.
 * Exported for the task runner's tests and for custom two-phase sinks built the same way.
 */
export async function commitLogSegment(
  list: IMap<unknown, unknown>,
  checkpoints: IMap<unknown, unknown>,
  taskId: string,
  checkpointId: number,
  marker: unknown,
  run?: number,
): Promise<void> {
  if (!isMarker(marker) || marker.stage === null) return;
  const stage = (await checkpoints.get(marker.stage)) as LogStage | undefined;
  if (stage) {
    const arg = run === undefined
      ? { seq: checkpointId, items: stage.records, max: maxLogEntriesPerTask }
      : { seq: checkpointId, items: stage.records, max: maxLogEntriesPerTask, run };
    await list.executeOnKey(taskId, "append-once", arg);
  } else {
    // The stage is deleted only after its segment was applied.
    const cur = (await list.get(taskId)) as LogList | undefined;
    if (!cur || cur.applied < checkpointId || (run !== undefined && cur.run !== undefined && cur.run !== run)) {
      throw new ShoalError(
        "INTERNAL",
        `Cannot commit log segment ${checkpointId} of ${taskId}: stage ${marker.stage} is missing`,
      );
    }
  }
  await checkpoints.delete(marker.stage);
}

export const logSink: SinkConnector = {
  type: "log",
  configure: mapConfigured("log"),
  open(ctx, config): SinkWriter {
    const list = ctx.getMap(config.map as string);
    let buffer: JobRecord[] = [];
    return {
      write(records) {
        buffer = buffer.concat(records);
        return Promise.resolve();
      },
      async prepare(checkpointId): Promise<LogMarker> {
        if (buffer.length === 0) return { stage: null, count: 0 };
        const key = stageKey(ctx.taskId, ctx.attempt, checkpointId);
        const stage: LogStage = { checkpointId, records: buffer };
        await ctx.checkpoints.set(key, stage);
        const count = buffer.length;
        buffer = [];
        return { stage: key, count };
      },
      commit: (checkpointId, marker) =>
        commitLogSegment(list, ctx.checkpoints, ctx.taskId, checkpointId, marker, ctx.run),
      pendingCount: () => buffer.length,
    };
  },
};
