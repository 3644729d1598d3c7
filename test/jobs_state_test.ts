import { describe, expect, test } from "bun:test";
import {
  advance,
  checkJobWrite,
  checkTaskWrite,
  isJobTerminal,
  JobStatus,
  jobTransitionAllowed,
  type StateRecord,
  type TaskStateRecord,
  TaskStatus,
} from "../src/jobs/job_state.ts";

const job = (state: JobStatus, term = 1): StateRecord<JobStatus> => ({
  state,
  timestamps: { [state]: 1 },
  term,
  epoch: 1,
});
const task = (state: TaskStatus, attempt = 1, term = 1): TaskStateRecord => ({
  state,
  timestamps: { [state]: 1 },
  term,
  epoch: 1,
  attempt,
});

describe("job state machine", () => {
  test("the happy path CREATED → SCHEDULED → RUNNING → FINISHING → FINISHED is allowed step by step", () => {
    const path: JobStatus[] = ["CREATED", "SCHEDULED", "RUNNING", "FINISHING", "FINISHED"];
    for (let i = 1; i < path.length; i++) {
      expect(checkJobWrite(job(path[i - 1]), job(path[i]))).toEqual({ ok: true });
    }
  });

  test("skipping states is refused", () => {
    expect(checkJobWrite(job("CREATED"), job("RUNNING")).ok).toBe(false);
    expect(checkJobWrite(job("RUNNING"), job("FINISHED")).ok).toBe(false);
    expect(checkJobWrite(job("FAILING"), job("CANCELED")).ok).toBe(false);
  });

  test("terminal states are final, even for a newer term", () => {
    for (const s of ["FINISHED", "FAILED", "CANCELED"] as const) {
      expect(isJobTerminal(s)).toBe(true);
      for (const to of Object.values(JobStatus)) {
        const r = checkJobWrite(job(s, 1), job(to, 5));
        expect(r.ok).toBe(false);
      }
    }
  });

  test("every non-terminal state can fail or be cancelled", () => {
    for (const s of ["CREATED", "SCHEDULED", "RUNNING", "FINISHING"] as const) {
      expect(jobTransitionAllowed(s, "FAILING")).toBe(true);
      expect(jobTransitionAllowed(s, "CANCELING")).toBe(true);
    }
    expect(jobTransitionAllowed("FAILING", "FAILED")).toBe(true);
    expect(jobTransitionAllowed("CANCELING", "CANCELED")).toBe(true);
  });

  test("a write from an older coordinator term is rejected as STALE_EPOCH", () => {
    const r = checkJobWrite(job("RUNNING", 3), job("FINISHING", 2));
    expect(r).toMatchObject({ ok: false, code: "STALE_EPOCH" });
  });

  test("a newer term may stamp the same state (takeover) and an older one may not", () => {
    expect(checkJobWrite(job("RUNNING", 2), job("RUNNING", 3)).ok).toBe(true);
    expect(checkJobWrite(job("RUNNING", 3), job("RUNNING", 2)).ok).toBe(false);
  });

  test("the first record must be CREATED", () => {
    expect(checkJobWrite(undefined, job("CREATED", 0)).ok).toBe(true);
    expect(checkJobWrite(undefined, job("RUNNING", 0)).ok).toBe(false);
  });

  test("advance records the new state's timestamp in the same record and keeps earlier ones", () => {
    const a = job("CREATED");
    const b = advance(a, "SCHEDULED" as JobStatus, 500, 2, 7);
    expect(b.state).toBe("SCHEDULED");
    expect(b.timestamps).toEqual({ CREATED: 1, SCHEDULED: 500 });
    expect(b.term).toBe(2);
    expect(b.epoch).toBe(7);
  });
});

describe("task state machine", () => {
  test("a restart goes back to CREATED and must bump the attempt by exactly one", () => {
    expect(checkTaskWrite(task("RUNNING", 1), task("CREATED", 2)).ok).toBe(true);
    expect(checkTaskWrite(task("SCHEDULED", 2), task("CREATED", 3)).ok).toBe(true);
    expect(checkTaskWrite(task("RUNNING", 1), task("CREATED", 1)).ok).toBe(false);
    expect(checkTaskWrite(task("RUNNING", 1), task("CREATED", 3)).ok).toBe(false);
  });

  test("the attempt never goes down and changes only on restart", () => {
    expect(checkTaskWrite(task("RUNNING", 3), task("FINISHED", 2))).toMatchObject({ ok: false, code: "STALE_EPOCH" });
    expect(checkTaskWrite(task("SCHEDULED", 1), task("RUNNING", 2)).ok).toBe(false);
  });

  test("terminal task states are final", () => {
    for (const s of ["FINISHED", "FAILED", "CANCELED"] as const) {
      for (const to of Object.values(TaskStatus)) {
        expect(checkTaskWrite(task(s, 1), task(to, 2, 9)).ok).toBe(false);
      }
    }
  });

  test("cancel goes through CANCELING unless the task never ran", () => {
    expect(checkTaskWrite(task("RUNNING"), task("CANCELING")).ok).toBe(true);
    expect(checkTaskWrite(task("CANCELING"), task("CANCELED")).ok).toBe(true);
    expect(checkTaskWrite(task("CREATED"), task("CANCELED")).ok).toBe(true);
    expect(checkTaskWrite(task("CANCELING"), task("RUNNING")).ok).toBe(false);
  });

  test("a deposed coordinator cannot move a task the new coordinator stamped", () => {
    const stamped = task("RUNNING", 1, 4);
    expect(checkTaskWrite(stamped, task("CREATED", 2, 3))).toMatchObject({ ok: false, code: "STALE_EPOCH" });
    expect(checkTaskWrite(stamped, task("FINISHED", 1, 4)).ok).toBe(true);
  });
});
