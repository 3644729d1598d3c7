/**
 * The physical plan of a job, derived deterministically from its definition: one pipeline
 * (source → transform → sink), `parallelism` task groups, one task per group. Ids are
 * derived from the job id and indexes only, so a new coordinator rebuilds the same plan
 * and finds every task's state, assignment and checkpoint under the same keys.
 */
import type { JobDefinition } from "./job_definition.ts";

export interface TaskPlan {
  /** `<jobId>/p<pipeline>/t<index>` */
  id: string;
  pipelineId: string;
  taskGroupId: string;
  index: number;
}

export interface TaskGroupPlan {
  /** `<jobId>/p<pipeline>/g<index>` */
  id: string;
  tasks: TaskPlan[];
}

export interface PipelinePlan {
  /** `<jobId>/p<index>` */
  id: string;
  index: number;
  taskGroups: TaskGroupPlan[];
}

export interface JobPlan {
  jobId: string;
  pipelines: PipelinePlan[];
}

/** The id of task `index` of pipeline `pipeline` of a job. */
export function taskId(jobId: string, pipeline: number, index: number): string {
  return `${jobId}/p${pipeline}/t${index}`;
}

/**
 * Builds the plan of a job.
 * @param jobId the job id
 * @param def the validated definition
 * @returns the plan; the same inputs always give the same plan
 * @example
 * ```ts
 * const plan = buildPlan("j1", def); // def.parallelism = 3
 * plan.pipelines[0].taskGroups.map((g) => g.tasks[0].id); // ["j1/p0/t0", "j1/p0/t1", "j1/p0/t2"]
 * ```
 */
export function buildPlan(jobId: string, def: Pick<JobDefinition, "parallelism">): JobPlan {
  const pipelineId = `${jobId}/p0`;
  const taskGroups: TaskGroupPlan[] = [];
  for (let i = 0; i < def.parallelism; i++) {
    const groupId = `${pipelineId}/g${i}`;
    taskGroups.push({ id: groupId, tasks: [{ id: taskId(jobId, 0, i), pipelineId, taskGroupId: groupId, index: i }] });
  }
  return { jobId, pipelines: [{ id: pipelineId, index: 0, taskGroups }] };
}

/** Every task of a plan, in order. */
export function planTasks(plan: JobPlan): TaskPlan[] {
  return plan.pipelines.flatMap((p) => p.taskGroups.flatMap((g) => g.tasks));
}

/** The job id part of a task id. */
export function jobIdOfTask(id: string): string {
  const i = id.lastIndexOf("/p");
  return i > 0 ? id.slice(0, i) : id;
}
