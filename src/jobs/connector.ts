/**
 * The connector interface: sources, transforms and sinks a job chains together. Built-in
 * connectors are `sequence` (source), `map` (transform) and `map`/`log` (sinks); users
 * register their own on a {@link ConnectorRegistry} (connector_registry.ts).
 *
 * Exactness rests on two rules connectors must follow: a source is replayable from a
 * position (reading the same positions again yields the same records), and a sink either
 * writes idempotently or stages its output and publishes it only in {@link SinkWriter.commit},
 * which must be idempotent.
 */
import { ShoalError } from "../core/errors.ts";
import type { IMap } from "../map/imap.ts";
import type { ConnectorConfig } from "./job_definition.ts";
import { JobMaps } from "./map_names.ts";
import { isInternalMap } from "../map/map_config.ts";

/** One record flowing through a job. */
export interface JobRecord {
  id: number;
  value: unknown;
}

/** The positions `[start, end)` of the source one task reads. */
export interface SourceSplit {
  index: number;
  start: number;
  end: number;
}

/** A replayable, finite source split into position ranges. */
export interface SourceConnector {
  readonly type: string;
  /** Validates a source block and fills defaults; throws a TypeError/RangeError with a message on bad input. */
  configure(block: ConnectorConfig): ConnectorConfig;
  /** Parallelism the config asks for, if it says. */
  parallelism(config: ConnectorConfig): number | undefined;
  /** The split read by task `index` of `parallelism`. */
  split(config: ConnectorConfig, index: number, parallelism: number): SourceSplit;
  /** Records per second for one task of `parallelism`, or undefined for as fast as possible. */
  ratePerSecond(config: ConnectorConfig, parallelism: number): number | undefined;
  /** Reads up to `max` records starting at position `from` (inside `split`). Same positions, same records. */
  read(config: ConnectorConfig, split: SourceSplit, from: number, max: number): Promise<JobRecord[]> | JobRecord[];
}

/** A pure per-record function. */
export interface TransformConnector {
  readonly type: string;
  configure(block: ConnectorConfig): ConnectorConfig;
  /** Returns the function; it must be pure (same input, same output) so replays are exact. */
  open(config: ConnectorConfig): (r: JobRecord) => JobRecord;
}

/** What a sink can reach while it runs. */
export interface SinkContext {
  jobId: string;
  /**
   * Which submission of the job this is (its entry's `createdAt`): a job submitted again under
   * an id whose records were purged numbers its checkpoints from 1 again, so a sink that keeps
   * what it applied by checkpoint number tells the runs apart by it.
   */
  run: number;
  taskId: string;
  attempt: number;
  getMap(name: string): IMap<unknown, unknown>;
  /** The `checkpoints` map, where two-phase sinks stage output keyed by checkpoint. */
  checkpoints: IMap<unknown, unknown>;
}

/** One task's sink. Calls come one at a time, never overlapping. */
export interface SinkWriter {
  /** Accepts records in order. May write through (idempotent sinks) or buffer. */
  write(records: JobRecord[]): Promise<void>;
  /**
   * Phase one of checkpoint `checkpointId`: make everything written since the previous
   * checkpoint durable (flushed, or staged under a key derived from the attempt and the
   * checkpoint). Returns a small marker stored in the checkpoint record.
   */
  prepare(checkpointId: number): Promise<unknown>;
  /**
   * Phase two, after the checkpoint record with `marker` is stored: publish the staged
   * output. Idempotent: it is also called again, with the stored marker, when a task is
   * restored from that checkpoint (the previous attempt may have died before or after it).
   */
  commit(checkpointId: number, marker: unknown): Promise<void>;
  /** Records buffered and not yet prepared; the task checkpoints early when this grows large. */
  pendingCount(): number;
}

export interface SinkConnector {
  readonly type: string;
  configure(block: ConnectorConfig): ConnectorConfig;
  open(ctx: SinkContext, config: ConnectorConfig): SinkWriter;
}

/** Reads a required positive integer field of a connector block. */
export function intField(block: ConnectorConfig, field: string, min: number, max: number, fallback?: number): number {
  const v = block[field] ?? fallback;
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    throw new RangeError(`${block.type}.${field} must be an integer in [${min}, ${max}]`);
  }
  return v;
}

/**
 * Reads a required map-name field of a connector block: a user map, not one of the job
 * system's own maps (a sink writing there would corrupt every job's state) nor a name reserved
 * for the grid (`\u0001…`).
 */
export function mapNameField(block: ConnectorConfig, field: string): string {
  const v = block[field];
  if (typeof v !== "string" || v.length < 1 || v.length > 200) {
    throw new TypeError(`${block.type}.${field} must be a map name (1–200 characters)`);
  }
  if ((Object.values(JobMaps) as string[]).includes(v) || isInternalMap(v)) {
    throw new TypeError(`${block.type}.${field} cannot be ${JSON.stringify(v)}: the name is reserved`);
  }
  return v;
}

/** The `configure` of a connector whose one setting is the map it writes (field `map`). */
export function mapConfigured(type: string): (block: ConnectorConfig) => ConnectorConfig {
  return (block) => ({ type, map: mapNameField(block, "map") });
}

/**
 * Thrown by connectors to fail a task with a clear reason. The attempt ends FAILED; the
 * coordinator restarts the task from its last checkpoint until the job's `maxTaskRestarts`
 * is used up, then fails the job with this message in its `error`.
 */
export class TaskFailure extends ShoalError {
  override name = "TaskFailure";
  constructor(message: string) {
    super("INTERNAL", message);
  }
}
