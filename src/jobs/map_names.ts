/**
 * The IMaps that hold all job state, their key formats and value shapes. These names and
 * shapes are a public contract (docs/jobs.md): any member, and any tool reading the maps,
 * can reconstruct every job from them.
 */
import { type JobDefinition, JobDefinitionSchema } from "./job_definition.ts";
import type { JobPlan } from "./job_plan.ts";
import type { JobStatus, StateRecord, TaskStateRecord } from "./job_state.ts";

/** Map names. */
export const JobMaps = {
  /** job id → {@link JobEntry} */
  jobs: "jobs",
  /** `job/<id>`, `pipeline/<pipelineId>`, `task/<taskId>` → state records; `coordinator` → {@link CoordinatorRecord}; `cancel/<id>` → {@link CancelRequest} */
  jobStates: "job-states",
  /** member id → {@link WorkerEntry} */
  workers: "workers",
  /** task id → {@link AssignmentEntry} */
  assignments: "assignments",
  /** task id → {@link CheckpointEntry}; `stage/<taskId>/a<attempt>/c<n>` → staged sink output */
  checkpoints: "checkpoints",
  /** `task/<taskId>` → {@link TaskMetrics}; `job/<id>` → {@link JobMetrics} */
  jobMetrics: "job-metrics",
} as const;

/** `jobs` value: the definition and the plan derived from it. */
export interface JobEntry {
  id: string;
  definition: JobDefinition;
  plan: JobPlan;
  /** Milliseconds at submit. */
  createdAt: number;
}

/** A stored definition: as submitted, with its defaults filled in. */
const StoredDefinition = JobDefinitionSchema.required({
  parallelism: true,
  checkpointIntervalMs: true,
  maxTaskRestarts: true,
});

/**
 * Whether `v` has a job entry's shape, its definition within the limits a submit checks. The jobs
 * map is an ordinary map any client or member can write to: a definition with a parallelism near
 * 2^53 made the master build its plan without end.
 */
export function isJobEntry(v: unknown): v is JobEntry {
  const e = v as Partial<JobEntry> | null;
  return typeof e === "object" && e !== null && typeof e.id === "string" && Number.isFinite(e.createdAt) &&
    typeof e.plan === "object" && e.plan !== null && Array.isArray(e.plan.pipelines) &&
    StoredDefinition.safeParse(e.definition).success;
}

/** `job-states` key `coordinator`: which member coordinates, under which term. */
export interface CoordinatorRecord {
  member: string;
  /** Fencing token: every takeover bumps it by one through compare-and-set. */
  term: number;
  /** The member's master epoch when it took over. */
  epoch: number;
  since: number;
}

/** `job-states` key `cancel/<jobId>`: a cancel request any member may write. */
export interface CancelRequest {
  requestedAt: number;
  by: string;
}

/** `workers` value. Written by the coordinator from the worker's hello and from assignments. */
export interface WorkerEntry {
  member: string;
  /** Random per start of the worker: assignments naming another workerId are stale. */
  workerId: string;
  total: number;
  free: number;
  /** Tasks holding a slot. */
  tasks: string[];
  /** Coordinator term that wrote the entry. */
  term: number;
  updatedAt: number;
}

/** `assignments` value. */
export interface AssignmentEntry {
  jobId: string;
  worker: string;
  workerId: string;
  attempt: number;
  term: number;
  assignedAt: number;
}

/** `checkpoints` value: the last completed checkpoint of a task. */
export interface CheckpointEntry {
  /** 0 before the first checkpoint; then 1, 2, … across attempts. */
  checkpointId: number;
  /** Next source position to read. */
  offset: number;
  /** The attempt that owns the task now; a lower attempt can no longer checkpoint. */
  attempt: number;
  /** The sink's commit marker for this checkpoint (null for sinks that write through). */
  marker: unknown;
  /** Records read from the source up to `offset`. */
  recordsRead: number;
  at: number;
}

/** `job-metrics` value of `task/<taskId>`. */
export interface TaskMetrics {
  recordsRead: number;
  recordsWritten: number;
  attempt: number;
  checkpointId: number;
  at: number;
}

/** `job-metrics` value of `job/<jobId>`. */
export interface JobMetrics {
  recordsRead: number;
  recordsWritten: number;
  at: number;
}

export type JobStateRecord = StateRecord<JobStatus>;
export type { TaskStateRecord };

/** Key of a job's state record. */
export const jobStateKey = (jobId: string): string => `job/${jobId}`;
/** Key of a pipeline's state record. */
export const pipelineStateKey = (pipelineId: string): string => `pipeline/${pipelineId}`;
/** Key of a task's state record. */
export const taskStateKey = (taskId: string): string => `task/${taskId}`;
/** Key of a job's cancel request. */
export const cancelKey = (jobId: string): string => `cancel/${jobId}`;
/** Key of the coordinator record. */
export const coordinatorKey = "coordinator";
/**
 * Key of the active-jobs index in `job-states`: the ids of jobs not yet known to be
 * terminal, so a new coordinator finds them with one read instead of a walk over every
 * partition. Submit adds an id after writing the job; the coordinator removes it once the
 * job is terminal. An index that is full (or missed an id) only costs time: the
 * coordinator's background scan of `jobs` finds every job.
 */
export const activeJobsKey = "active";
/** Most ids the active-jobs index holds. */
export const maxIndexedJobs = 1000;

/** The active-jobs index. */
export interface ActiveJobs {
  ids: string[];
}

/**
 * The ids of a stored active-jobs index. It sits in an ordinary map: anything but a list of ids
 * (`{ ids: 5 }` from a member holding the secret made every takeover, scan, submit and listing
 * throw) reads as the ids it holds, or none.
 */
export function activeIds(v: unknown): string[] {
  const ids = (v as Partial<ActiveJobs> | null | undefined)?.ids;
  return Array.isArray(ids) ? ids.filter((x): x is string => typeof x === "string").slice(0, maxIndexedJobs) : [];
}

/** Key of a staged sink segment in `checkpoints`. */
export const stageKey = (taskId: string, attempt: number, checkpointId: number): string =>
  `stage/${taskId}/a${attempt}/c${checkpointId}`;
/** Key of a task's metrics. */
export const taskMetricsKey = (taskId: string): string => `task/${taskId}`;
/** Key of a job's metrics. */
export const jobMetricsKey = (jobId: string): string => `job/${jobId}`;
