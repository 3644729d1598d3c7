/**
 * The `sequence` source: records `{id, value}` for ids `0 … count-1`, where `value` is a
 * deterministic function of `id` ({@link sequenceValue}). Task `i` of `p` reads a contiguous
 * range of ids; positions are ids, so a task resumes exactly at its checkpointed offset.
 *
 * `failAtRecord: n` makes the task whose range holds id `n` fail on purpose when it reaches
 * that record: it emits ids before `n`, then every attempt ends FAILED with
 * {@link failAtRecordMessage}, so the task uses up the job's `maxTaskRestarts` and the job
 * ends FAILED with that reason. Deterministic: the same record fails on every attempt and
 * every member. For demonstrating and testing the failure path.
 */
import { type ConnectorConfig } from "./job_definition.ts";
import { intField, type JobRecord, type SourceConnector, type SourceSplit, TaskFailure } from "./connector.ts";

/** Most records a sequence may produce. */
export const maxSequenceCount = 100_000_000;

/** The value of record `id` of a sequence: `(id * 7919) mod 1000003`. */
export function sequenceValue(id: number): number {
  return (id * 7919) % 1_000_003;
}

/** The contiguous id range `[start, end)` of task `index` of `parallelism` over `count` ids. */
export function sequenceSplit(count: number, index: number, parallelism: number): SourceSplit {
  if (index < 0 || index >= parallelism) throw new RangeError(`Cannot split: task ${index} of ${parallelism}`);
  return {
    index,
    start: Math.floor((index * count) / parallelism),
    end: Math.floor(((index + 1) * count) / parallelism),
  };
}

/** The failure reason of a task that reached its `failAtRecord`. */
export function failAtRecordMessage(id: number): string {
  return `sequence source failed on purpose at record ${id} (failAtRecord)`;
}

export const sequenceSource: SourceConnector = {
  type: "sequence",
  configure(block: ConnectorConfig): ConnectorConfig {
    const count = intField(block, "count", 0, maxSequenceCount);
    const parallelism = intField(block, "parallelism", 1, 256, 1);
    const rate = block.ratePerSecond ?? 0;
    if (typeof rate !== "number" || !Number.isFinite(rate) || rate < 0 || rate > 10_000_000) {
      throw new RangeError("sequence.ratePerSecond must be a number in [0, 10000000] (0 = unlimited)");
    }
    const out: ConnectorConfig = { type: "sequence", count, parallelism, ratePerSecond: rate };
    if (block.failAtRecord !== undefined) {
      if (count === 0) throw new RangeError("sequence.failAtRecord needs count ≥ 1");
      out.failAtRecord = intField(block, "failAtRecord", 0, count - 1);
    }
    return out;
  },
  parallelism: (config) => config.parallelism as number,
  split: (config, index, parallelism) => sequenceSplit(config.count as number, index, parallelism),
  ratePerSecond(config, parallelism) {
    const r = config.ratePerSecond as number;
    return r > 0 ? r / parallelism : undefined;
  },
  read(config, split, from, max): JobRecord[] {
    const out: JobRecord[] = [];
    let end = Math.min(split.end, from + max);
    const failAt = config.failAtRecord as number | undefined;
    if (failAt !== undefined && failAt >= Math.max(from, split.start) && failAt < end) {
      // Emit the records before it; the next read starts at it and fails.
      if (failAt === Math.max(from, split.start)) throw new TaskFailure(failAtRecordMessage(failAt));
      end = failAt;
    }
    for (let id = Math.max(from, split.start); id < end; id++) out.push({ id, value: sequenceValue(id) });
    return out;
  },
};
