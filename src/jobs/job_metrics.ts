/**
 * Prometheus metric families of the job layer, for `GET /metrics` (the HTTP layer passes
 * them through its `extraMetrics` option). Shapes match src/http/prometheus.ts.
 */
import type { JobService } from "./job_service.ts";
import { JobStatus } from "./job_state.ts";

export interface JobMetricFamily {
  name: string;
  help: string;
  type: "counter" | "gauge";
  samples: { labels?: Record<string, string>; value: number }[];
}

/** Jobs per state, worker slots, and this member's coordinator counters. */
export async function jobMetricFamilies(service: JobService): Promise<JobMetricFamily[]> {
  const [jobs, workers] = await Promise.all([service.list(), service.workers()]);
  const byState = new Map<string, number>(Object.values(JobStatus).map((s) => [s, 0]));
  for (const j of jobs) byState.set(j.status, (byState.get(j.status) ?? 0) + 1);
  const c = service.coordinator.stats;
  return [
    {
      name: "shoal_jobs",
      help: "Jobs by state (cluster-wide, from the jobs maps).",
      type: "gauge",
      samples: [...byState].map(([state, value]) => ({ labels: { state }, value })),
    },
    {
      name: "shoal_job_slots_total",
      help: "Task slots offered by workers.",
      type: "gauge",
      samples: [{ value: workers.reduce((a, w) => a + w.total, 0) }],
    },
    {
      name: "shoal_job_slots_free",
      help: "Task slots not holding a task.",
      type: "gauge",
      samples: [{ value: workers.reduce((a, w) => a + w.free, 0) }],
    },
    {
      name: "shoal_job_workers",
      help: "Members offering task slots.",
      type: "gauge",
      samples: [{ value: workers.length }],
    },
    {
      name: "shoal_job_tasks_running_local",
      help: "Task attempts running on this member.",
      type: "gauge",
      samples: [{ value: service.worker?.running().size ?? 0 }],
    },
    {
      name: "shoal_job_coordinator_takeovers_total",
      help: "Times this member took over as coordinator.",
      type: "counter",
      samples: [{ value: c.takeovers }],
    },
    {
      name: "shoal_job_task_restarts_total",
      help: "Task restarts ordered by this member's coordinator.",
      type: "counter",
      samples: [{ value: c.restarts }],
    },
    {
      name: "shoal_job_tasks_reattached_total",
      help: "Running tasks re-attached after a coordinator takeover here.",
      type: "counter",
      samples: [{ value: c.reattached }],
    },
  ];
}
