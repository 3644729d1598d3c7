/**
 * Job-layer wire messages (kinds 160–199), between workers and the coordinator. Every
 * message is validated against these schemas before a handler sees it. PROTOCOL.md ("Jobs")
 * describes each kind.
 */
import { z } from "zod";
import { Kind } from "../wire/kinds.ts";
import { defineMessage, w } from "../wire/message.ts";

/** Most task ids in one query or report. */
export const maxTasksPerMessage = 1024;
const taskIdField = () => w.str(256).min(1);
const errorField = () => w.str(2000);
/** The fields naming one attempt of a task. */
const attemptFields = () => ({ taskId: taskIdField(), attempt: w.uint().min(1) });

/** Worker → master: this member offers `slots` slots under the per-start `workerId`. Repeated until acked. */
export const JobWorkerHelloMsg = defineMessage(Kind.JobWorkerHello, "JobWorkerHello", {
  workerId: w.id(),
  slots: w.uint().max(4096),
});

/** Master → worker: the hello was applied to the `workers` map. */
export const JobWorkerHelloAckMsg = defineMessage(Kind.JobWorkerHelloAck, "JobWorkerHelloAck", {
  workerId: w.id(),
  term: w.uint(),
});

/** Coordinator → worker: run `taskId` as `attempt`. Repeated until acked; duplicates are harmless. */
export const JobDeployTaskMsg = defineMessage(Kind.JobDeployTask, "JobDeployTask", {
  jobId: w.id(),
  ...attemptFields(),
  workerId: w.id(),
  term: w.uint(),
});

/** Worker → coordinator: the task runs (`ok`) or was refused with `reason`. */
export const JobDeployAckMsg = defineMessage(Kind.JobDeployAck, "JobDeployAck", {
  ...attemptFields(),
  workerId: w.id(),
  ok: z.boolean(),
  reason: errorField().optional(),
});

/** Coordinator → worker: stop `taskId` (that attempt or older); the worker answers with JobTaskDone CANCELED. */
export const JobCancelTaskMsg = defineMessage(Kind.JobCancelTask, "JobCancelTask", {
  ...attemptFields(),
  term: w.uint(),
});

/** Worker → master: a task attempt ended. Repeated (to whoever is master) until acked. */
export const JobTaskDoneMsg = defineMessage(Kind.JobTaskDone, "JobTaskDone", {
  jobId: w.id(),
  ...attemptFields(),
  workerId: w.id(),
  state: z.enum(["FINISHED", "FAILED", "CANCELED"]),
  error: errorField().optional(),
  recordsRead: w.uint(),
  recordsWritten: w.uint(),
});

/** Coordinator → worker: the completion report was applied (or was already). */
export const JobTaskDoneAckMsg = defineMessage(Kind.JobTaskDoneAck, "JobTaskDoneAck", attemptFields());

/** New coordinator → worker: which of these tasks do you run? */
export const JobTaskQueryMsg = defineMessage(Kind.JobTaskQuery, "JobTaskQuery", {
  reqId: w.uint(),
  term: w.uint(),
  taskIds: w.list(taskIdField(), maxTasksPerMessage),
});

/** Worker → coordinator: the answer to a query, for each asked task. */
export const JobTaskReportMsg = defineMessage(Kind.JobTaskReport, "JobTaskReport", {
  reqId: w.uint(),
  workerId: w.id(),
  tasks: w.list(
    z.object({
      taskId: taskIdField(),
      attempt: w.uint(),
      status: z.enum(["running", "done", "unknown"]),
    }),
    maxTasksPerMessage,
  ),
});

/** Any member → master: a job was submitted or a cancel requested; look at the maps. A hint only. */
export const JobNotifyMsg = defineMessage(Kind.JobNotify, "JobNotify", {
  jobId: w.id(),
  what: z.enum(["submitted", "cancel"]),
});

export type JobWorkerHello = z.infer<typeof JobWorkerHelloMsg>;
export type JobWorkerHelloAck = z.infer<typeof JobWorkerHelloAckMsg>;
export type JobDeployTask = z.infer<typeof JobDeployTaskMsg>;
export type JobDeployAck = z.infer<typeof JobDeployAckMsg>;
export type JobCancelTask = z.infer<typeof JobCancelTaskMsg>;
export type JobTaskDone = z.infer<typeof JobTaskDoneMsg>;
export type JobTaskDoneAck = z.infer<typeof JobTaskDoneAckMsg>;
export type JobTaskQuery = z.infer<typeof JobTaskQueryMsg>;
export type JobTaskReport = z.infer<typeof JobTaskReportMsg>;
export type JobNotify = z.infer<typeof JobNotifyMsg>;
