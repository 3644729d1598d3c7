/**
 * Answers for SeaTunnel Engine's REST v2 read endpoints (`/overview`, `/running-jobs`,
 * `/job-info/:jobId`, `/finished-jobs/:state`) with its field names, so tools written for
 * SeaTunnel can read Shoal's job state. Numbers are strings where SeaTunnel sends strings.
 * Shoal's FINISHING state has no SeaTunnel counterpart and is reported as RUNNING.
 */
import type { JobInfo, JobService, JobSummary } from "./job_service.ts";
import type { JobEntry } from "./map_names.ts";
import type { JobStatus } from "./job_state.ts";

/** The version string `/overview` reports. */
export const projectVersion = "shoal-0.1.0";

/** SeaTunnel's date format: `yyyy-MM-dd HH:mm:ss` (UTC here). */
export function seatunnelTime(ms: number | undefined): string {
  if (ms === undefined) return "";
  return new Date(ms).toISOString().replace("T", " ").slice(0, 19);
}

/** The status name SeaTunnel tools expect. */
export function seatunnelStatus(s: JobStatus): string {
  return s === "FINISHING" ? "RUNNING" : s;
}

function jobDag(entry: JobEntry) {
  const d = entry.definition;
  const vertices = [{
    vertexId: 1,
    type: "source",
    vertexName: `Source[0]-${d.source.type}`,
    tablePaths: [] as string[],
  }];
  if (d.transform) {
    vertices.push({ vertexId: 2, type: "transform", vertexName: `Transform[0]-${d.transform.type}`, tablePaths: [] });
  }
  vertices.push({
    vertexId: vertices.length + 1,
    type: "sink",
    vertexName: `Sink[0]-${d.sink.type}`,
    tablePaths: typeof d.sink.map === "string" ? [d.sink.map] : [],
  });
  const edges = vertices.slice(1).map((v, i) => ({
    inputVertexId: String(vertices[i].vertexId),
    targetVertexId: String(v.vertexId),
  }));
  return { jobId: entry.id, envOptions: [], vertexInfoMap: vertices, pipelineEdges: { "0": edges } };
}

const envOptions = (entry: JobEntry) => ({
  "job.mode": "BATCH",
  "job.name": entry.definition.name,
  "checkpoint.interval": String(entry.definition.checkpointIntervalMs),
  parallelism: String(entry.definition.parallelism),
});

function detailedMetrics(info: JobInfo) {
  return {
    SourceReceivedCount: String(info.metrics.recordsRead),
    SourceReceivedQPS: "0",
    SourceReceivedBytes: "0",
    SourceReceivedBytesPerSeconds: "0",
    SinkWriteCount: String(info.metrics.recordsWritten),
    SinkWriteQPS: "0",
    SinkWriteBytes: "0",
    SinkWriteBytesPerSeconds: "0",
    TableSourceReceivedCount: {},
    TableSourceReceivedBytes: {},
    TableSourceReceivedBytesPerSeconds: {},
    TableSourceReceivedQPS: {},
    TableSinkWriteCount: {},
    TableSinkWriteQPS: {},
    TableSinkWriteBytes: {},
    TableSinkWriteBytesPerSeconds: {},
  };
}

const finishTime = (info: JobInfo) => info.timestamps.FINISHED ?? info.timestamps.FAILED ?? info.timestamps.CANCELED;

/** `GET /overview`. */
export async function overview(service: JobService) {
  const [jobs, workers] = await Promise.all([service.list(), service.workers()]);
  const count = (pred: (s: JobStatus) => boolean) => String(jobs.filter((j) => pred(j.status)).length);
  return {
    projectVersion,
    gitCommitAbbrev: "",
    totalSlot: String(workers.reduce((a, w) => a + w.total, 0)),
    unassignedSlot: String(workers.reduce((a, w) => a + w.free, 0)),
    works: String(workers.length),
    runningJobs: count((s) => s !== "FINISHED" && s !== "FAILED" && s !== "CANCELED"),
    finishedJobs: count((s) => s === "FINISHED"),
    failedJobs: count((s) => s === "FAILED"),
    cancelledJobs: count((s) => s === "CANCELED"),
  };
}

async function details(service: JobService, id: string): Promise<[JobEntry, JobInfo] | undefined> {
  const entry = await service.entry(id);
  if (!entry) return undefined;
  const info = await service.get(id);
  return info ? [entry, info] : undefined;
}

/** The listed jobs whose status `keep` accepts, with their entries and details (jobs gone meanwhile are skipped). */
async function listed(
  service: JobService,
  keep: (status: string) => boolean,
): Promise<Array<[JobSummary, JobEntry, JobInfo]>> {
  const out: Array<[JobSummary, JobEntry, JobInfo]> = [];
  for (const j of await service.list()) {
    if (!keep(j.status)) continue;
    const d = await details(service, j.id);
    if (d) out.push([j, ...d]);
  }
  return out;
}

/** `GET /job-info/:jobId`; `{jobId}` alone when the job is unknown, as SeaTunnel answers. */
export async function jobInfo(service: JobService, id: string) {
  const d = await details(service, id);
  if (!d) return { jobId: id };
  const [entry, info] = d;
  const base = {
    jobId: id,
    jobName: info.name,
    jobStatus: seatunnelStatus(info.status),
    createTime: seatunnelTime(info.createdAt),
    jobDag: jobDag(entry),
    metrics: detailedMetrics(info),
  };
  const end = finishTime(info);
  if (end !== undefined) return { ...base, finishedTime: seatunnelTime(end), errorMsg: info.error ?? null };
  return { ...base, envOptions: envOptions(entry), pluginJarsUrls: [], isStartWithSavePoint: false };
}

/** `GET /running-jobs`: every job not yet in a terminal state. */
export async function runningJobs(service: JobService) {
  const out = [];
  for (const [j, entry, info] of await listed(service, (s) => s !== "FINISHED" && s !== "FAILED" && s !== "CANCELED")) {
    out.push({
      jobId: j.id,
      jobName: info.name,
      jobStatus: seatunnelStatus(info.status),
      envOptions: envOptions(entry),
      createTime: seatunnelTime(info.createdAt),
      jobDag: jobDag(entry),
      pluginJarsUrls: [],
      isStartWithSavePoint: false,
      metrics: {
        sourceReceivedCount: String(info.metrics.recordsRead),
        sinkWriteCount: String(info.metrics.recordsWritten),
      },
    });
  }
  return out;
}

/** The states `/finished-jobs/:state` accepts (SeaTunnel's names). */
export const finishedStates = ["FINISHED", "CANCELED", "FAILED", "UNKNOWABLE"] as const;

/** `GET /finished-jobs/:state` (or every finished job when `state` is undefined). */
export async function finishedJobs(service: JobService, state?: string) {
  const out = [];
  const keep = (s: string) =>
    (s === "FINISHED" || s === "FAILED" || s === "CANCELED") && (state === undefined || s === state);
  for (const [j, entry, info] of await listed(service, keep)) {
    out.push({
      jobId: j.id,
      jobName: info.name,
      jobStatus: info.status,
      errorMsg: info.error ?? null,
      createTime: seatunnelTime(info.createdAt),
      finishTime: seatunnelTime(finishTime(info)),
      jobDag: jobDag(entry),
      metrics: detailedMetrics(info),
    });
  }
  return out;
}
