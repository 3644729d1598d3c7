/**
 * What the parts of the job coordinator share: the runtime records of the jobs, tasks and
 * workers it coordinates, the events its loop handles, and what each part is handed by
 * `Coordinator` (coordinator.ts): the options, the current term and master epoch, and the
 * retry options of its map writes.
 */
import type { NodeId } from "../transport/transport.ts";
import type { JobDeps } from "./job_deps.ts";
import type { TaskPlan } from "./job_plan.ts";
import type { TaskStateRecord } from "./job_state.ts";
import type { AssignmentEntry, JobEntry, JobStateRecord, WorkerEntry } from "./map_names.ts";
import type { JobDeployAck, JobNotify, JobTaskDone, JobTaskReport, JobWorkerHello } from "./messages.ts";
import type { RetryOptions } from "./state_store.ts";

export interface CoordinatorOptions extends JobDeps {
  /** Loop period. @default 50 */
  tickMs?: number;
  /** Re-send deploy/cancel/query messages this often. @default 500 */
  resendIntervalMs?: number;
  /**
   * Look for cancel requests in the maps, and in the active-jobs index for jobs nobody told
   * this coordinator about, this often. @default 2000
   */
  scanIntervalMs?: number;
  /**
   * Walk the `jobs` map (one call per partition) for jobs the index misses on every this
   * many scans (and on the first after takeover; every fifth while the index is full). @default 30
   */
  walkEveryScans?: number;
  /** Re-read the coordinator record this often to notice a newer term. @default 1000 */
  fenceCheckIntervalMs?: number;
  /**
   * A master may override a coordinator record from a newer master epoch once it has seen
   * that same record, and stayed master, for this long (see `takeover`). @default 5000
   */
  claimAfterMs?: number;
  /** Most non-terminal jobs coordinated at once; further jobs wait in CREATED. @default 1000 */
  maxActiveJobs?: number;
  /**
   * How long an ended job's records stay in the maps (ms from when it ended); the scan then
   * deletes them. 0 keeps them for ever. @default 86400000 (a day, SeaTunnel's `history-job-expire-minutes`)
   */
  historyMs?: number;
}

/** Default of {@link CoordinatorOptions.historyMs}. */
export const defaultJobHistoryMs = 24 * 60 * 60 * 1000;
/** Most ended jobs one scan purges. */
export const maxPurgesPerScan = 100;

export interface CoordinatorPart {
  readonly opts: CoordinatorOptions;
  /** Retry budget of map reads and writes; gives up once the coordinator stopped. */
  readonly retry: RetryOptions;
  /** The coordinator term this member claimed (0 before the first takeover). */
  term(): number;
  /** The master epoch of that claim. */
  epoch(): number;
}

export interface TaskRt {
  plan: TaskPlan;
  state: TaskStateRecord;
  asg?: AssignmentEntry;
  lastSentAt: number;
  /** False after takeover until the worker confirmed a RUNNING task. */
  verified: boolean;
}

export interface JobRt {
  id: string;
  entry: JobEntry;
  state: JobStateRecord;
  pipeline: JobStateRecord;
  tasks: Map<string, TaskRt>;
  cancel: boolean;
}

export interface WorkerRt {
  member: NodeId;
  workerId: string;
  total: number;
  tasks: Set<string>;
  written?: WorkerEntry;
}

export type CoordEvent =
  | { kind: "hello"; from: NodeId; msg: JobWorkerHello }
  | { kind: "deployAck"; from: NodeId; msg: JobDeployAck }
  | { kind: "done"; from: NodeId; msg: JobTaskDone }
  | { kind: "report"; from: NodeId; msg: JobTaskReport }
  | { kind: "notify"; from: NodeId; msg: JobNotify }
  | { kind: "memberRemoved"; member: NodeId }
  | { kind: "found"; jobId: string }
  | { kind: "cancelFound"; jobId: string }
  | { kind: "staleWorker"; member: NodeId; entry: WorkerEntry };
