/**
 * The job definition a user submits (REST body of `POST /jobs`, or `JobService.submit`),
 * validated with zod. Connector blocks keep their own fields; the connector named by
 * `type` validates them (see connectors.ts), so users can add connector types.
 */
import { z } from "zod";

/** Limits on a definition, so a submit cannot make the coordinator allocate without bound. */
export const DefinitionLimits = {
  maxNameLength: 200,
  maxParallelism: 256,
  maxIdLength: 100,
  minCheckpointIntervalMs: 10,
  maxCheckpointIntervalMs: 3_600_000,
} as const;

const connectorBlock = z.object({ type: z.string().min(1).max(64) }).catchall(z.unknown());

/** A job id: letters, digits, `-`, `_`, `.`; it appears in map keys and task ids. */
export const JobIdSchema = z.string().min(1).max(DefinitionLimits.maxIdLength).regex(
  /^[A-Za-z0-9._-]+$/,
  "job id may hold only letters, digits, '.', '_' and '-'",
);

/** Schema of a job definition. */
export const JobDefinitionSchema = z.object({
  name: z.string().min(1).max(DefinitionLimits.maxNameLength),
  source: connectorBlock,
  transform: connectorBlock.optional(),
  sink: connectorBlock,
  /** Tasks the job runs in parallel; defaults to the source's `parallelism`, else 1. */
  parallelism: z.number().int().min(1).max(DefinitionLimits.maxParallelism).optional(),
  /** How often a task checkpoints (source offset + sink commit). @default 1000 */
  checkpointIntervalMs: z.number().int().min(DefinitionLimits.minCheckpointIntervalMs).max(
    DefinitionLimits.maxCheckpointIntervalMs,
  ).optional(),
  /** Restarts allowed per task before the job fails. @default 3 */
  maxTaskRestarts: z.number().int().min(0).max(100).optional(),
});

/** A job definition as submitted. */
export type JobDefinitionInput = z.input<typeof JobDefinitionSchema>;

/** A connector block: `type` plus the connector's own fields. */
export type ConnectorConfig = { type: string; [field: string]: unknown };

/** A validated definition with defaults filled in; stored in the `jobs` map. */
export interface JobDefinition {
  name: string;
  source: ConnectorConfig;
  transform?: ConnectorConfig;
  sink: ConnectorConfig;
  parallelism: number;
  checkpointIntervalMs: number;
  maxTaskRestarts: number;
}

/** Body of `POST /jobs`: a definition plus an optional client-chosen id (retries reuse it). */
export const SubmitBodySchema = JobDefinitionSchema.extend({ id: JobIdSchema.optional() });

/** Default checkpoint interval. */
export const defaultCheckpointIntervalMs = 1000;
/** Default restart limit per task. */
export const defaultMaxTaskRestarts = 3;
