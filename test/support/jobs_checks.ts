/**
 * REST-side checks of the job layer for tests against real member processes: submit and
 * read jobs, read sink output back through `GET /maps/<map>/<key>`, watch every member's
 * `GET /jobs/:id` through a failover, and check the `workers` entries for slot leaks.
 * Everything here talks HTTP only, so it checks what a client of the cluster sees.
 */
import type { JobRecord } from "../../src/jobs/connector.ts";
import type { JobInfo } from "../../src/jobs/job_service.ts";
import type { CheckpointEntry, CoordinatorRecord, WorkerEntry } from "../../src/jobs/map_names.ts";
import type { LogList } from "../../src/jobs/sink_log.ts";
import { sequenceValue } from "../../src/jobs/source_sequence.ts";
import { mapFunctions } from "../../src/jobs/transform_map.ts";
import type { Member } from "./cluster.ts";

/** Records every test job produces. */
export const recordCount = 6000;

/**
 * The `POST /jobs` body of a `sequence → map(double) → map sink` job.
 * @param more.count records the source produces @default recordCount
 * @param more.name the job's name @default `copy-${id}`
 */
export function mapSinkJob(
  id: string,
  map: string,
  ratePerSecond: number,
  checkpointIntervalMs = 500,
  more: { count?: number; name?: string } = {},
) {
  return {
    id,
    name: more.name ?? `copy-${id}`,
    source: { type: "sequence", count: more.count ?? recordCount, parallelism: 3, ratePerSecond },
    transform: { type: "map", fn: "double" },
    sink: { type: "map", map },
    checkpointIntervalMs,
  };
}

/** The `POST /jobs` body of a `sequence → log sink` job (no transform). */
export function logSinkJob(id: string, map: string, ratePerSecond: number, checkpointIntervalMs = 500) {
  return {
    id,
    name: `log-${id}`,
    source: { type: "sequence", count: recordCount, parallelism: 3, ratePerSecond },
    sink: { type: "log", map },
    checkpointIntervalMs,
  };
}

/** The value the map sink must hold for record `id` of a `double` job. */
export function expectedDoubled(id: number): number {
  return mapFunctions.double(sequenceValue(id)) as number;
}

/** Order of job states along the happy path; terminal states rank highest. */
const rank: Record<string, number> = {
  CREATED: 0,
  SCHEDULED: 1,
  RUNNING: 2,
  FINISHING: 3,
  FAILING: 3,
  CANCELING: 3,
  FINISHED: 4,
  FAILED: 4,
  CANCELED: 4,
};

/** Whether going from `a` to `b` moves a job backwards (e.g. FINISHED → RUNNING). */
export function regresses(a: string, b: string): boolean {
  return (rank[b] ?? -1) < (rank[a] ?? -1) || (rank[a] === 4 && a !== b);
}

async function fetchJson<T>(url: string, init?: RequestInit, timeoutMs = 10_000): Promise<{ status: number; body: T }> {
  const r = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
  const text = await r.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: r.status, body: body as T };
}

/**
 * Submits a job through `POST /jobs`, retried (same id, so applied once) until a member
 * answers 201.
 * @returns the job id
 */
export async function submitJob(members: Member[], body: { id: string }, timeoutMs = 30_000): Promise<string> {
  const end = performance.now() + timeoutMs;
  let last = "";
  for (let i = 0;; i++) {
    const m = members[i % members.length];
    try {
      const r = await fetchJson<{ id?: string; error?: string }>(`${m.url}/jobs`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      if (r.status === 201 && r.body.id === body.id) return body.id;
      last = `${r.status} ${JSON.stringify(r.body)}`;
      if (r.status === 400 || r.status === 409) throw new Error(`submit of ${body.id} refused: ${last}`);
    } catch (e) {
      if (String(e).includes("refused")) throw e;
      last = String(e);
    }
    if (performance.now() > end) throw new Error(`submit of ${body.id} failed: ${last}`);
    await Bun.sleep(200);
  }
}

/** `GET /jobs/:id` of one member, or undefined when it did not answer 200. */
export async function jobInfo(m: Member, id: string): Promise<JobInfo | undefined> {
  try {
    const r = await fetchJson<JobInfo>(`${m.url}/jobs/${id}`);
    return r.status === 200 ? r.body : undefined;
  } catch {
    return undefined;
  }
}

/** A value of `GET /maps/<map>/<key>`: `undefined` on 404, throws on other failures. */
export async function mapValue<V>(m: Member, map: string, key: string): Promise<V | undefined> {
  const r = await fetchJson<{ value?: V; error?: string }>(
    `${m.url}/maps/${encodeURIComponent(map)}/${encodeURIComponent(key)}`,
  );
  if (r.status === 404) return undefined;
  if (r.status !== 200) throw new Error(`GET /maps/${map}/${key} on ${m.name}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.value;
}

/** `GET /maps/<map>` size. */
export async function mapSize(m: Member, map: string): Promise<number> {
  const r = await fetchJson<{ size: number }>(`${m.url}/maps/${encodeURIComponent(map)}`);
  if (r.status !== 200) throw new Error(`GET /maps/${map} on ${m.name}: ${r.status}`);
  return r.body.size;
}

/** The coordinator record (`job-states` / `coordinator`). */
export function coordinatorRecord(m: Member): Promise<CoordinatorRecord | undefined> {
  return mapValue<CoordinatorRecord>(m, "job-states", "coordinator");
}

/** The checkpoint record of a task. */
export function checkpointOf(m: Member, taskId: string): Promise<CheckpointEntry | undefined> {
  return mapValue<CheckpointEntry>(m, "checkpoints", taskId);
}

/** Polls `GET /jobs/:id` on `m` until `pred` holds. */
export async function waitJob(
  m: Member | (() => Member),
  id: string,
  pred: (info: JobInfo) => boolean,
  timeoutMs: number,
  what = "state",
): Promise<JobInfo> {
  const end = performance.now() + timeoutMs;
  let last: JobInfo | undefined;
  for (;;) {
    const member = typeof m === "function" ? m() : m;
    last = (await jobInfo(member, id)) ?? last;
    if (last && pred(last)) return last;
    if (performance.now() > end) {
      throw new Error(`job ${id} did not reach ${what} in ${timeoutMs} ms; last: ${JSON.stringify(last)}`);
    }
    await Bun.sleep(100);
  }
}

/** Runs `f` over `items` with at most `width` in flight. */
export async function pool<T>(items: T[], width: number, f: (x: T, i: number) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, async () => {
    while (i < items.length) {
      const k = i++;
      await f(items[k], k);
    }
  }));
}

/**
 * Reads every record `0 … count-1` of a map sink back through REST (spread over
 * `members`) and lists what is wrong: missing keys, wrong ids or values, and a size other
 * than `count`.
 */
export async function checkMapSink(
  members: Member[],
  map: string,
  expected: (id: number) => unknown,
  count = recordCount,
): Promise<string[]> {
  const wrong: string[] = [];
  const size = await mapSize(members[0], map);
  if (size !== count) wrong.push(`size ${size}, expected ${count}`);
  const ids = Array.from({ length: count }, (_, i) => i);
  await pool(ids, 24, async (id, i) => {
    const m = members[i % members.length];
    let v: JobRecord | undefined;
    for (let tries = 0;; tries++) {
      try {
        v = await mapValue<JobRecord>(m, map, String(id));
        break;
      } catch (e) {
        if (tries >= 5) {
          wrong.push(`${id}: ${e}`);
          return;
        }
        await Bun.sleep(200);
      }
    }
    if (!v) wrong.push(`${id}: missing`);
    else if (v.id !== id || v.value !== expected(id)) wrong.push(`${id}: got ${JSON.stringify(v)}`);
  });
  return wrong;
}

/** What a log sink holds, summed over its per-task lists. */
export interface LogSinkSummary {
  entries: number;
  distinct: number;
  duplicates: number[];
  missing: number[];
  badValues: number[];
}

/** Reads the per-task lists of a log sink (`GET /maps/<map>/<taskId>`) and counts duplicates and gaps. */
export async function readLogSink(
  m: Member,
  map: string,
  taskIds: string[],
  count = recordCount,
): Promise<LogSinkSummary> {
  const seen = new Uint16Array(count);
  let entries = 0;
  const badValues: number[] = [];
  for (const t of taskIds) {
    const list = await mapValue<LogList>(m, map, t);
    for (const r of list?.entries ?? []) {
      entries++;
      if (!Number.isInteger(r.id) || r.id < 0 || r.id >= count || r.value !== sequenceValue(r.id)) {
        badValues.push(r.id);
        continue;
      }
      seen[r.id]++;
    }
  }
  const duplicates: number[] = [], missing: number[] = [];
  let distinct = 0;
  for (let i = 0; i < count; i++) {
    if (seen[i] > 0) distinct++;
    if (seen[i] > 1) duplicates.push(i);
    if (seen[i] === 0) missing.push(i);
  }
  return { entries, distinct, duplicates, missing, badValues };
}

/** The `workers` entries of `members` (undefined where a member has none). */
export async function workerEntries(
  reader: Member,
  memberIds: string[],
): Promise<Map<string, WorkerEntry | undefined>> {
  const out = new Map<string, WorkerEntry | undefined>();
  for (const id of memberIds) out.set(id, await mapValue<WorkerEntry>(reader, "workers", id));
  return out;
}

/**
 * Waits until every live member's `workers` entry shows all slots free and no tasks, and
 * dead members have no entry. Returns the entries, or throws with the last ones seen.
 */
export async function waitNoSlotLeak(
  reader: Member,
  live: string[],
  dead: string[],
  timeoutMs = 30_000,
): Promise<Map<string, WorkerEntry | undefined>> {
  const end = performance.now() + timeoutMs;
  let last: Map<string, WorkerEntry | undefined> | undefined;
  let err = "";
  for (;;) {
    try {
      last = await workerEntries(reader, [...live, ...dead]);
      const ok = live.every((id) => {
        const w = last!.get(id);
        return w !== undefined && w.free === w.total && w.tasks.length === 0;
      }) && dead.every((id) => last!.get(id) === undefined);
      if (ok) return last;
    } catch (e) {
      err = String(e);
    }
    if (performance.now() > end) {
      throw new Error(`slots not back to total in ${timeoutMs} ms: ${JSON.stringify(last ? [...last] : err)}`);
    }
    await Bun.sleep(250);
  }
}

/**
 * Polls `GET /jobs/:id` for some jobs on every given member in the background and records
 * what a client would notice: requests that did not answer 200 and a job status moving
 * backwards (a FINISHED job coming back, say).
 */
export class StatusWatcher {
  readonly failures: string[] = [];
  readonly regressions: string[] = [];
  /** Answers per member name. */
  readonly answers = new Map<string, number>();
  /** Statuses seen per job, in order, without repeats. */
  readonly seen = new Map<string, string[]>();
  #last = new Map<string, string>();
  #stop = false;
  #loops: Promise<void>[] = [];

  constructor(members: Member[], readonly jobIds: string[], intervalMs = 250) {
    for (const m of members) this.#loops.push(this.#loop(m, intervalMs));
  }

  async #loop(m: Member, intervalMs: number): Promise<void> {
    while (!this.#stop) {
      for (const id of this.jobIds) {
        if (this.#stop) break;
        const t0 = performance.now();
        try {
          const r = await fetchJson<JobInfo>(`${m.url}/jobs/${id}`, undefined, 15_000);
          if (this.#stop) break;
          if (r.status !== 200) {
            this.failures.push(
              `${m.name} ${id}: ${r.status} ${JSON.stringify(r.body).slice(0, 200)} after ${
                Math.round(performance.now() - t0)
              } ms`,
            );
            continue;
          }
          this.answers.set(m.name, (this.answers.get(m.name) ?? 0) + 1);
          const key = `${m.name}\u0000${id}`;
          const prev = this.#last.get(key);
          const now = r.body.status;
          if (prev !== undefined && regresses(prev, now)) this.regressions.push(`${m.name} ${id}: ${prev} → ${now}`);
          this.#last.set(key, now);
          const list = this.seen.get(id) ?? [];
          if (list[list.length - 1] !== now) list.push(now);
          this.seen.set(id, list);
        } catch (e) {
          if (!this.#stop) this.failures.push(`${m.name} ${id}: ${e} after ${Math.round(performance.now() - t0)} ms`);
        }
      }
      await Bun.sleep(intervalMs);
    }
  }

  /** Stops polling (waits for the requests in flight). */
  async stop(): Promise<void> {
    this.#stop = true;
    await Promise.all(this.#loops);
  }
}

/** The median of some numbers. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}
