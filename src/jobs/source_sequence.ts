/**
 * The `sequence` source: records `{id, value}` for ids `0 … count-1`, where `value` is a
 * deterministic function of `id` ({@link sequenceValue}). Task `i` of `p` reads a contiguous
 * range of ids; positions are ids, so a task resumes exactly at its checkpointed offset.
 */
import { type ConnectorConfig } from "./job_definition.ts";
import { intField, type JobRecord, type SourceConnector, type SourceSplit } from "./connector.ts";

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

export const sequenceSource: SourceConnector = {
  type: "sequence",
  configure(block: ConnectorConfig): ConnectorConfig {
    const count = intField(block, "count", 0, maxSequenceCount);
    const parallelism = intField(block, "parallelism", 1, 256, 1);
    const rate = block.ratePerSecond ?? 0;
    if (typeof rate !== "number" || !Number.isFinite(rate) || rate < 0 || rate > 10_000_000) {
      throw new RangeError("sequence.ratePerSecond must be a number in [0, 10000000] (0 = unlimited)");
    }
    return { type: "sequence", count, parallelism, ratePerSecond: rate };
  },
  parallelism: (config) => config.parallelism as number,
  split: (config, index, parallelism) => sequenceSplit(config.count as number, index, parallelism),
  ratePerSecond(config, parallelism) {
    const r = config.ratePerSecond as number;
    return r > 0 ? r / parallelism : undefined;
  },
  read(_config, split, from, max): JobRecord[] {
    const out: JobRecord[] = [];
    const end = Math.min(split.end, from + max);
    for (let id = Math.max(from, split.start); id < end; id++) out.push({ id, value: sequenceValue(id) });
    return out;
  },
};
