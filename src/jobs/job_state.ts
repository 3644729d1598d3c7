/**
 * Job and task state machines. Every state record written to the `job-states` map is
 * checked here first: only allowed transitions are persisted, terminal states are final,
 * and a record written by an older coordinator term can never replace a newer one.
 */

/** Job (and pipeline) states, as in SeaTunnel Engine. */
export const JobStatus = {
  CREATED: "CREATED",
  SCHEDULED: "SCHEDULED",
  RUNNING: "RUNNING",
  FINISHING: "FINISHING",
  FINISHED: "FINISHED",
  FAILING: "FAILING",
  FAILED: "FAILED",
  CANCELING: "CANCELING",
  CANCELED: "CANCELED",
} as const;
export type JobStatus = typeof JobStatus[keyof typeof JobStatus];

/** Task states. A task restarted after its worker died goes back to CREATED with attempt + 1. */
export const TaskStatus = {
  CREATED: "CREATED",
  SCHEDULED: "SCHEDULED",
  RUNNING: "RUNNING",
  FINISHED: "FINISHED",
  CANCELING: "CANCELING",
  CANCELED: "CANCELED",
  FAILED: "FAILED",
} as const;
export type TaskStatus = typeof TaskStatus[keyof typeof TaskStatus];

const jobTransitions: Record<JobStatus, readonly JobStatus[]> = {
  CREATED: ["SCHEDULED", "FAILING", "CANCELING"],
  SCHEDULED: ["RUNNING", "FAILING", "CANCELING"],
  RUNNING: ["FINISHING", "FAILING", "CANCELING"],
  FINISHING: ["FINISHED", "FAILING", "CANCELING"],
  FAILING: ["FAILED"],
  CANCELING: ["CANCELED"],
  FINISHED: [],
  FAILED: [],
  CANCELED: [],
};

const taskTransitions: Record<TaskStatus, readonly TaskStatus[]> = {
  CREATED: ["SCHEDULED", "CANCELED", "FAILED"],
  SCHEDULED: ["RUNNING", "CREATED", "FINISHED", "CANCELING", "CANCELED", "FAILED"],
  RUNNING: ["FINISHED", "CREATED", "CANCELING", "CANCELED", "FAILED"],
  CANCELING: ["CANCELED"],
  FINISHED: [],
  CANCELED: [],
  FAILED: [],
};

/** Whether a job or pipeline state is terminal (final). */
export function isJobTerminal(s: JobStatus): boolean {
  return s === "FINISHED" || s === "FAILED" || s === "CANCELED";
}

/** Whether a task state is terminal (final). */
export function isTaskTerminal(s: TaskStatus): boolean {
  return s === "FINISHED" || s === "FAILED" || s === "CANCELED";
}

/** Whether `from → to` is an allowed job (or pipeline) transition. */
export function jobTransitionAllowed(from: JobStatus, to: JobStatus): boolean {
  return jobTransitions[from].includes(to);
}

/** Whether `from → to` is an allowed task transition (restart rules are checked by {@link checkTaskWrite}). */
export function taskTransitionAllowed(from: TaskStatus, to: TaskStatus): boolean {
  return taskTransitions[from].includes(to);
}

/**
 * One state record in `job-states`. The timestamp of every state the record has been in
 * sits in the same record, written in the same compare-and-set as the state, so a reader
 * never sees a state without its timestamp (SeaTunnel writes its timestamp map before its
 * state map for the same reason).
 */
export interface StateRecord<S extends string = string> {
  state: S;
  /** Milliseconds at which each state was entered. */
  timestamps: Partial<Record<S, number>>;
  /** Coordinator term that wrote the record (0 for the submitter's initial CREATED). */
  term: number;
  /** Master epoch of the member that wrote the record, for observability. */
  epoch: number;
  /** Failure reason, when FAILING/FAILED. */
  error?: string;
}

/** A task's state record: also carries the attempt number and the worker it runs on. */
export interface TaskStateRecord extends StateRecord<TaskStatus> {
  attempt: number;
  worker?: string;
}

/** When the job or task of record `r` entered its current state (ms; `fallback` when the record has no stamp). */
export function endedAt(r: StateRecord, fallback: number): number {
  return (r.timestamps as Record<string, number | undefined>)[r.state] ?? fallback;
}

/** Result of checking a write. */
export type WriteCheck = { ok: true } | { ok: false; code: "STALE_EPOCH" | "CONFLICT"; reason: string };

function fence(current: StateRecord | undefined, next: StateRecord): WriteCheck | undefined {
  if (current && next.term < current.term) {
    return {
      ok: false,
      code: "STALE_EPOCH",
      reason: `coordinator term ${next.term} is older than term ${current.term} of the stored record`,
    };
  }
  return undefined;
}

/**
 * Checks a job or pipeline state write against the stored record: the first record must be
 * CREATED, terminal states are final, only allowed transitions pass, and a writer with an
 * older coordinator term is rejected. Re-writing the same state with a newer term (the new
 * coordinator stamping a record on takeover) is allowed.
 *
 * @param current the stored record, if any
 * @param next the record to write
 * @returns ok, or the code and reason of the rejection
 */
export function checkJobWrite(current: StateRecord<JobStatus> | undefined, next: StateRecord<JobStatus>): WriteCheck {
  if (!current) {
    return next.state === "CREATED"
      ? { ok: true }
      : { ok: false, code: "CONFLICT", reason: `a job starts CREATED, not ${next.state}` };
  }
  const f = fence(current, next);
  if (f) return f;
  if (isJobTerminal(current.state)) {
    return { ok: false, code: "CONFLICT", reason: `job state ${current.state} is final` };
  }
  if (current.state === next.state) return { ok: true };
  if (!jobTransitionAllowed(current.state, next.state)) {
    return { ok: false, code: "CONFLICT", reason: `job cannot go from ${current.state} to ${next.state}` };
  }
  return { ok: true };
}

/**
 * Checks a task state write: as {@link checkJobWrite}, plus the attempt rules: the attempt
 * never goes down, a restart (back to CREATED) must bump the attempt by exactly one, and any
 * other transition keeps the attempt.
 *
 * @param current the stored record, if any
 * @param next the record to write
 * @returns ok, or the code and reason of the rejection
 */
export function checkTaskWrite(current: TaskStateRecord | undefined, next: TaskStateRecord): WriteCheck {
  if (!current) {
    if (next.state !== "CREATED") {
      return { ok: false, code: "CONFLICT", reason: `a task starts CREATED, not ${next.state}` };
    }
    return next.attempt >= 1 ? { ok: true } : { ok: false, code: "CONFLICT", reason: "attempts start at 1" };
  }
  const f = fence(current, next);
  if (f) return f;
  if (isTaskTerminal(current.state)) {
    return { ok: false, code: "CONFLICT", reason: `task state ${current.state} is final` };
  }
  if (next.attempt < current.attempt) {
    return { ok: false, code: "STALE_EPOCH", reason: `attempt ${next.attempt} is older than ${current.attempt}` };
  }
  const restart = next.state === "CREATED" && current.state !== "CREATED";
  if (restart) {
    return next.attempt === current.attempt + 1 ? { ok: true } : {
      ok: false,
      code: "CONFLICT",
      reason: `a restart must move attempt ${current.attempt} to ${current.attempt + 1}`,
    };
  }
  if (next.attempt !== current.attempt) {
    return {
      ok: false,
      code: "CONFLICT",
      reason: `only a restart changes the attempt (${current.attempt} → ${next.attempt})`,
    };
  }
  if (current.state === next.state) return { ok: true };
  if (!taskTransitionAllowed(current.state, next.state)) {
    return { ok: false, code: "CONFLICT", reason: `task cannot go from ${current.state} to ${next.state}` };
  }
  return { ok: true };
}

/**
 * Builds the next record of a transition: the new state's timestamp is added to the same
 * record as the state.
 */
export function advance<S extends string, R extends StateRecord<S>>(
  current: R,
  state: S,
  nowMs: number,
  term: number,
  epoch: number,
  extra: Partial<R> = {},
): R {
  return {
    ...current,
    ...extra,
    state,
    timestamps: { ...current.timestamps, [state]: nowMs },
    term,
    epoch,
  };
}
