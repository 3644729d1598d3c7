/**
 * The job coordinator between real member processes over real WebRTC, Bun and Deno mixed
 * (issue 5, "Must show"). Three members (Bun, Deno, Bun; the first started is the master).
 *
 * - Five rounds: a 6,000-record parallelism-3 job with a `map` sink and one with a `log`
 *   sink run; `kill -9` of the master at a different moment each round (just started,
 *   early, mid, late, during finishing). A new coordinator (the oldest survivor) takes
 *   over; both jobs FINISH; the map sink holds exactly the 6,000 transformed records and
 *   the log sink 6,000 entries with no duplicate and no gap. Between rounds the killed
 *   member is restarted (a new process joining the same cluster), so every round has three.
 * - Throughout each failover every surviving member answers `GET /jobs/:id`, no status
 *   moves backwards, a FINISHED job stays FINISHED, and after the jobs end every live
 *   worker's `workers` entry has all slots free (dead members have none).
 * - `kill -9` of a worker that is not the master: only its tasks restart (attempt + 1)
 *   from their last checkpoint, other tasks keep their attempt, output still exact.
 * - Cancel of a running job: CANCELED, slots back to total.
 *
 * Measured takeover times are printed; only a generous bound is asserted (the machine is
 * shared and small).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { killAll, type Member, startMember } from "./support/cluster.ts";
import { until } from "./support/until.ts";
import {
  checkMapSink,
  checkpointOf,
  coordinatorRecord,
  expectedDoubled,
  jobInfo,
  logSinkJob,
  mapSinkJob,
  median,
  readLogSink,
  recordCount,
  StatusWatcher,
  submitJob,
  waitJob,
  waitNoSlotLeak,
} from "./support/jobs_checks.ts";
import type { JobInfo } from "../src/jobs/job_service.ts";

/** 6,000 records at 1,000/s: about 6 s per job on an idle machine. */
const ratePerSecond = 1000;
/** Generous bound on kill -9 → new coordinator record (the issue's target is 3 s on a quiet machine). */
const takeoverBoundMs = 15_000;
const secret = `jobs-process-${Date.now()}`;

interface ClusterJson {
  master: string | null;
  epoch: number;
  members: { id: string; name: string }[];
  partitions: { replicasMissing: number; migrating: number };
}

/** Live members, oldest first (so `live[0]` is the master). */
let live: Member[] = [];
/** Every member started here, for the logs written in afterAll. */
const started: Member[] = [];
/** Where afterAll writes each member's log (stderr) and exit code. */
const logDir = `/tmp/jobs_process_test_logs`;
const takeovers: { round: string; masterMs: number; coordinatorMs: number; rescheduledMs?: number }[] = [];
/** Every job that reached FINISHED, re-checked after later failovers. */
const finishedJobs: string[] = [];
let restartCount = 0;

afterAll(async () => {
  killAll();
  try {
    await Bun.$`mkdir -p ${logDir}`.quiet();
    for (const m of started) {
      await Bun.write(`${logDir}/${m.name}.log`, `exit ${m.child.exitCode}\n${m.stderr()}`);
    }
    console.log(`member logs: ${logDir}/`);
  } catch (e) {
    console.log(`cannot write member logs: ${e}`);
  }
  if (takeovers.length > 0) {
    console.log(
      `takeover after kill -9 of the master (ms): ${
        takeovers.map((t) =>
          `${t.round}: view ${t.masterMs.toFixed(0)}, coordinator ${
            t.coordinatorMs.toFixed(0)
          }, dead master's tasks rescheduled ${t.rescheduledMs?.toFixed(0) ?? "-"}`
        ).join("; ")
      }`,
    );
    const rescheduled = takeovers.flatMap((t) => (t.rescheduledMs === undefined ? [] : [t.rescheduledMs]));
    console.log(
      `median over ${takeovers.length} master kills: all survivors agree on the new master after ${
        median(takeovers.map((t) => t.masterMs)).toFixed(0)
      } ms; ` +
        `new coordinator term written after ${median(takeovers.map((t) => t.coordinatorMs)).toFixed(0)} ms; ` +
        `the dead master's tasks rescheduled after ${median(rescheduled).toFixed(0)} ms (${rescheduled.length} rounds)`,
    );
  }
});

async function views(members: Member[]): Promise<ClusterJson[]> {
  return await Promise.all(members.map((m) => m.json<ClusterJson>("/cluster")));
}

/**
 * How each of `members` sees the cluster (master and member names), for an assertion that
 * they still form one cluster: a split between survivors (each declared the other dead) would
 * otherwise show up only later, as a missing worker entry or job statuses that disagree.
 */
async function clusterViews(members: Member[]): Promise<string[]> {
  const name = (id: string | null) => members.find((m) => m.id === id)?.name ?? id?.slice(0, 6) ?? "none";
  return (await views(members)).map((v, i) =>
    `${members[i].name}: master ${name(v.master)}, members ${v.members.map((m) => name(m.id)).sort().join(",")}`
  );
}

/** Waits until every member sees all of `members`, the same master, and full replicas. */
async function settled(members: Member[], timeoutMs = 90_000): Promise<void> {
  await until(
    async () => {
      const vs = await views(members);
      const ok = vs.every((v) =>
        v.members.length === members.length && v.master === members[0].id && v.partitions.replicasMissing === 0 &&
        v.partitions.migrating === 0
      );
      return ok ? true : undefined;
    },
    timeoutMs,
    `${members.length} members, master ${members[0].name}, full replicas`,
  );
}

async function restart(victim: Member, join: Member): Promise<Member> {
  restartCount++;
  const m = await startMember({
    name: `${victim.name.replace(/\d+$/, "")}${restartCount}`,
    runtime: victim.runtime,
    join: join.url,
    secret,
  });
  started.push(m);
  live.push(m);
  return m;
}

/** The new coordinator's own account (from its log): when it took over and restarted tasks, relative to `sinceMs`. */
function logTimeline(m: Member, sinceMs: number): string {
  const out: string[] = [];
  for (const line of m.stderr().split("\n")) {
    if (!line.includes('"layer":"jobs"') && !line.includes('"cluster.member.dead"')) continue;
    let rec: Record<string, unknown>;
    try {
      rec = JSON.parse(line);
    } catch {
      continue;
    }
    const at = Date.parse(String(rec.ts)) - sinceMs;
    if (!(at >= 0)) continue;
    if (rec.event === "cluster.member.dead") out.push(`member dead +${at} ms`);
    else if (rec.event === "jobs.coordinator.took_over") {
      out.push(`took over (term ${rec.term}, ${rec.jobs} jobs) +${at} ms`);
    } else if (rec.event === "jobs.task.restarted") {
      out.push(`restart ${String(rec.task).slice(String(rec.task).indexOf("/") - 3)} +${at} ms`);
    }
  }
  return out.slice(0, 8).join(", ");
}

function written(info: JobInfo | undefined): number {
  return info?.tasks.reduce((a, t) => a + t.recordsWritten, 0) ?? 0;
}

function taskSummary(info: JobInfo): string {
  return info.tasks.map((t) =>
    `${t.id.slice(t.id.lastIndexOf("/") + 1)}:${t.state}@${
      live.find((m) => m.id === t.worker)?.name ?? t.worker?.slice(0, 6)
    }#${t.attempt}`
  ).join(" ");
}

/** Checks both sinks of a round and that both jobs stay FINISHED. */
async function checkOutput(
  reader: Member[],
  mapJobId: string,
  outMap: string,
  logJobId: string,
  logMap: string,
): Promise<void> {
  const wrong = await checkMapSink(reader, outMap, expectedDoubled);
  if (wrong.length > 0) console.log(`${outMap}: ${wrong.length} wrong, e.g. ${wrong.slice(0, 5).join("; ")}`);
  expect(wrong.slice(0, 10)).toEqual([]);
  const logInfo = (await jobInfo(reader[0], logJobId))!;
  const log = await readLogSink(reader[0], logMap, logInfo.tasks.map((t) => t.id));
  if (log.duplicates.length + log.missing.length + log.badValues.length > 0) {
    console.log(
      `${logMap}: ${log.entries} entries, ${log.duplicates.length} duplicated (e.g. ${
        log.duplicates.slice(0, 5)
      }), ${log.missing.length} missing (e.g. ${log.missing.slice(0, 5)}), ${log.badValues.length} bad`,
    );
  }
  expect({
    entries: log.entries,
    distinct: log.distinct,
    duplicates: log.duplicates.length,
    missing: log.missing.length,
    bad: log.badValues.length,
  })
    .toEqual({ entries: recordCount, distinct: recordCount, duplicates: 0, missing: 0, bad: 0 });
  const mapInfo = (await jobInfo(reader[0], mapJobId))!;
  expect(mapInfo.metrics.recordsWritten).toBe(recordCount);
  expect(logInfo.metrics.recordsWritten).toBe(recordCount);
}

/** Every job that finished earlier is still FINISHED on every live member. */
async function checkStillFinished(): Promise<void> {
  const got = await Promise.all(
    live.flatMap((m) => finishedJobs.map(async (id) => `${id} on ${m.name}: ${(await jobInfo(m, id))?.status}`)),
  );
  expect(got).toEqual(live.flatMap((m) => finishedJobs.map((id) => `${id} on ${m.name}: FINISHED`)));
}

interface Moment {
  name: string;
  /** Whether to kill now, given the two jobs' current status. */
  now: (map: JobInfo, log: JobInfo) => boolean;
}

const running = (i: JobInfo) => i.status === "RUNNING" || i.status === "FINISHING";
const anyTaskFinished = (i: JobInfo) => i.status === "FINISHING" || i.tasks.some((t) => t.state === "FINISHED");

const moments: Moment[] = [
  // Before the first checkpoint of most tasks: everything restarts from offset 0 or close.
  {
    name: "just after every task started running",
    now: (a, b) => [...a.tasks, ...b.tasks].every((t) => t.state === "RUNNING"),
  },
  {
    name: "early (≥ 10 % written)",
    now: (a, b) => running(a) && running(b) && Math.min(written(a), written(b)) >= 600,
  },
  { name: "mid (≥ 50 % written)", now: (a, b) => running(a) && running(b) && Math.min(written(a), written(b)) >= 3000 },
  {
    name: "late (≥ 70 % written)",
    now: (a, b) => running(a) && running(b) && Math.min(written(a), written(b)) >= 4200,
  },
  // The first task of a job finished: the job is FINISHING (or about to be).
  { name: "during finishing", now: (a, b) => anyTaskFinished(a) || anyTaskFinished(b) },
];

describe("jobs across processes (Bun and Deno, werift): kill -9 of master and workers", () => {
  beforeAll(async () => {
    const startedAt = performance.now();
    const a = await startMember({ name: "a", runtime: "bun", secret });
    const b = await startMember({ name: "b", runtime: "deno", join: a.url, secret });
    const c = await startMember({ name: "c", runtime: "bun", join: a.url, secret });
    live = [a, b, c];
    started.push(a, b, c);
    await settled(live);
    // The master coordinates and every worker offers its slots.
    await until(
      async () => (await coordinatorRecord(b))?.member === a.id ? true : undefined,
      30_000,
      "coordinator record of a",
    );
    await waitNoSlotLeak(c, live.map((m) => m.id), []);
    console.log(
      `3 members (bun, deno, bun) ready with full replicas and worker slots after ${
        ((performance.now() - startedAt) / 1000).toFixed(1)
      } s`,
    );
  }, 180_000);

  moments.forEach((moment, round) => {
    test(`kill -9 of the master ${moment.name}: new coordinator, both jobs FINISHED, exact output`, async () => {
      const master = live[0];
      const survivors = live.slice(1);
      expect((await master.json<ClusterJson>("/cluster")).master).toBe(master.id);
      const mapId = `r${round}-map`, logId = `r${round}-log`;
      const outMap = `out-r${round}`, logMap = `log-r${round}`;
      await submitJob(survivors, mapSinkJob(mapId, outMap, ratePerSecond));
      await submitJob(survivors, logSinkJob(logId, logMap, ratePerSecond));

      // Poll until the kill moment.
      const submittedAt = performance.now();
      let atKill: [JobInfo, JobInfo] | undefined;
      const end = performance.now() + 120_000;
      while (!atKill) {
        const [a, b] = await Promise.all([jobInfo(survivors[0], mapId), jobInfo(survivors[0], logId)]);
        if (a && b && moment.now(a, b)) atKill = [a, b];
        else if (performance.now() > end) {
          throw new Error(`kill moment "${moment.name}" not reached: ${JSON.stringify([a?.status, b?.status])}`);
        } else await Bun.sleep(20);
      }
      const before = (await coordinatorRecord(survivors[0]))!;
      expect(before.member).toBe(master.id);
      const watcher = new StatusWatcher(survivors, [mapId, logId, ...finishedJobs.slice(-2)]);
      const t0 = performance.now();
      const killedAtMs = Date.now();
      master.kill9();
      live = [...survivors];
      console.log(
        `round ${round} (${moment.name}): killed master ${master.name} (${master.runtime}) ${
          ((t0 - submittedAt) / 1000).toFixed(1)
        } s after submit; map job ${atKill[0].status} ${written(atKill[0])} written [${taskSummary(atKill[0])}], ` +
          `log job ${atKill[1].status} ${written(atKill[1])} written [${taskSummary(atKill[1])}]`,
      );

      // A new coordinator: every survivor names the oldest survivor master, and that member
      // wrote the next coordinator term.
      await until(
        async () => (await views(survivors)).every((v) => v.master === survivors[0].id) ? true : undefined,
        takeoverBoundMs * 2,
        "new master",
      );
      const masterMs = performance.now() - t0;
      const rec = await until(
        async () => {
          const r = await coordinatorRecord(survivors[1]);
          return r && r.member === survivors[0].id && r.term > before.term ? r : undefined;
        },
        takeoverBoundMs * 2,
        "new coordinator record",
      );
      const coordinatorMs = performance.now() - t0;
      // The new coordinator acted: every unfinished task of the dead master runs again as attempt + 1.
      const orphans = atKill.flatMap((i) => i.tasks).filter((t) => t.worker === master.id && t.state !== "FINISHED");
      let rescheduledMs: number | undefined;
      if (orphans.length > 0) {
        await until(
          async () => {
            const now = (await Promise.all([jobInfo(survivors[0], mapId), jobInfo(survivors[0], logId)])).flatMap((i) =>
              i?.tasks ?? []
            );
            return orphans.every((o) =>
                now.some((t) => t.id === o.id && (t.attempt > o.attempt || t.state === "FINISHED"))
              )
              ? true
              : undefined;
          },
          60_000,
          "dead master's tasks rescheduled",
        );
        rescheduledMs = performance.now() - t0;
      }
      takeovers.push({ round: moment.name, masterMs, coordinatorMs, rescheduledMs });
      console.log(`round ${round}: new master's log: ${logTimeline(survivors[0], killedAtMs)}`);
      console.log(
        `round ${round}: survivors agree on master ${survivors[0].name} after ${
          masterMs.toFixed(0)
        } ms; coordinator term ${rec.term} after ${coordinatorMs.toFixed(0)} ms; ` +
          `${orphans.length} tasks of the dead master rescheduled after ${rescheduledMs?.toFixed(0) ?? "-"} ms`,
      );
      expect(coordinatorMs).toBeLessThan(takeoverBoundMs);

      const [mapDone, logDone] = await Promise.all([
        waitJob(survivors[0], mapId, (i) => i.status === "FINISHED" || i.status === "FAILED", 120_000, "FINISHED"),
        waitJob(survivors[1], logId, (i) => i.status === "FINISHED" || i.status === "FAILED", 120_000, "FINISHED"),
      ]);
      console.log(
        `round ${round}: map job ${mapDone.status} [${taskSummary(mapDone)}], log job ${logDone.status} [${
          taskSummary(logDone)
        }]${mapDone.error ?? ""}${logDone.error ?? ""}`,
      );
      // The survivors still form one cluster under the new master (no split between them).
      const names = survivors.map((m) => m.name).sort().join(",");
      expect(await clusterViews(survivors)).toEqual(
        survivors.map((m) => `${m.name}: master ${survivors[0].name}, members ${names}`),
      );
      expect([mapDone.status, logDone.status]).toEqual(["FINISHED", "FINISHED"]);
      const finishedAt = performance.now();
      // Read the output back while the watcher keeps polling: finished jobs stay finished.
      const output = checkOutput(survivors, mapId, outMap, logId, logMap).then(() => undefined, (e: unknown) => e);
      await Bun.sleep(2_000);
      await watcher.stop();
      console.log(
        `round ${round}: status seen from survivors: map ${watcher.seen.get(mapId)?.join("→")}, log ${
          watcher.seen.get(logId)?.join("→")
        }; ${watcher.failures.length} failed reads`,
      );
      expect(watcher.failures.slice(0, 5)).toEqual([]);
      expect(watcher.regressions).toEqual([]);
      for (const s of survivors) expect(watcher.answers.get(s.name) ?? 0).toBeGreaterThan(0);

      const outputError = await output;
      if (outputError) throw outputError;
      const checkedAt = performance.now();
      finishedJobs.push(mapId, logId);
      await waitNoSlotLeak(survivors[1], survivors.map((m) => m.id), [master.id]);
      // Between rounds the killed member comes back as a new process joining the cluster.
      await restart(master, survivors[0]);
      await settled(live);
      await waitNoSlotLeak(live[live.length - 1], live.map((m) => m.id), [master.id]);
      await checkStillFinished();
      console.log(
        `round ${round}: jobs ran ${((finishedAt - submittedAt) / 1000).toFixed(1)} s, output check ${
          ((checkedAt - finishedAt) / 1000).toFixed(1)
        } s, ` +
          `restart and settle ${((performance.now() - checkedAt) / 1000).toFixed(1)} s`,
      );
    }, 240_000);
  });

  test(
    "SIGSTOP of a worker past failure detection, then SIGCONT: its tasks run elsewhere, it offers its slots again",
    async () => {
      const master = live[0];
      expect(live.length).toBe(3);
      const mapId = "p-map", logId = "p-log";
      await submitJob(live.slice(1), mapSinkJob(mapId, "out-p", ratePerSecond));
      await submitJob(live.slice(1), logSinkJob(logId, "log-p", ratePerSecond));
      const victim = live[2];
      await until(
        async () => {
          const [a, b] = await Promise.all([jobInfo(master, mapId), jobInfo(master, logId)]);
          if (!a || !b) return undefined;
          const ts = [...a.tasks, ...b.tasks];
          const ok = ts.every((t) => t.state === "RUNNING" && t.recordsWritten >= 300) &&
            ts.some((t) => t.worker === victim.id && t.recordsWritten <= 1500);
          return ok ? true : undefined;
        },
        120_000,
        "every task running, the victim's far from done",
      );
      const others = live.filter((m) => m !== victim);
      const watcher = new StatusWatcher(others, [mapId, logId]);
      victim.child.kill("SIGSTOP");
      // Well past failure detection: the others drop it from the member list.
      await until(
        async () => (await master.json<ClusterJson>("/cluster")).members.every((m) => m.id !== victim.id) || undefined,
        30_000,
        "the paused worker dropped from the member list",
      );
      await Bun.sleep(2_000);
      victim.child.kill("SIGCONT");
      console.log(`paused worker ${victim.name} (${victim.runtime}) until the others dropped it, then resumed it`);
      const [mapDone, logDone] = await Promise.all([
        waitJob(master, mapId, (i) => i.status === "FINISHED" || i.status === "FAILED", 120_000, "FINISHED"),
        waitJob(master, logId, (i) => i.status === "FINISHED" || i.status === "FAILED", 120_000, "FINISHED"),
      ]);
      console.log(`after the pause: map job [${taskSummary(mapDone)}], log job [${taskSummary(logDone)}]`);
      expect([mapDone.status, logDone.status]).toEqual(["FINISHED", "FINISHED"]);
      await watcher.stop();
      expect(watcher.failures.slice(0, 5)).toEqual([]);
      expect(watcher.regressions).toEqual([]);
      // The resumed member re-joins, and its worker offers its slots again: all three workers are
      // back with every slot free (before, its entry never came back).
      await until(
        async () => (await master.json<ClusterJson>("/cluster")).members.some((m) => m.id === victim.id) || undefined,
        60_000,
        "the resumed worker back in the member list",
      );
      await settled(live);
      await checkOutput(live, mapId, "out-p", logId, "log-p");
      finishedJobs.push(mapId, logId);
      await waitNoSlotLeak(master, live.map((m) => m.id), []);
      await checkStillFinished();
    },
    240_000,
  );

  test("kill -9 of a worker that is not the master: only its tasks restart, from their last checkpoint", async () => {
    const master = live[0];
    const mapId = "w-map", logId = "w-log";
    await submitJob(live.slice(1), mapSinkJob(mapId, "out-w", ratePerSecond));
    await submitJob(live.slice(1), logSinkJob(logId, "log-w", ratePerSecond));
    // Wait until every task checkpointed at least once (so a restart from 0 would show) and a
    // non-master worker's tasks are far from done (so they cannot finish before the kill).
    const farFromDone = (m: Member, ts: JobInfo["tasks"]) =>
      ts.some((t) => t.worker === m.id) && ts.every((t) => t.worker !== m.id || t.recordsWritten <= 1500);
    const infos = await until(
      async () => {
        const [a, b] = await Promise.all([jobInfo(master, mapId), jobInfo(master, logId)]);
        if (!a || !b) return undefined;
        const ts = [...a.tasks, ...b.tasks];
        if (!ts.every((t) => t.state === "RUNNING" && t.recordsWritten >= 300)) return undefined;
        return live.some((m) => m !== master && farFromDone(m, ts)) ? [a, b] : undefined;
      },
      120_000,
      "every task checkpointed, a worker's tasks far from done",
    );
    const tasks = infos.flatMap((i) => i.tasks);
    // The youngest non-master member whose tasks are far from done.
    const victim = [...live].reverse().find((m) => m !== master && farFromDone(m, tasks))!;
    expect(victim).toBeDefined();
    const victimTasks = tasks.filter((t) => t.worker === victim.id).map((t) => t.id);
    const before = new Map(tasks.map((t) => [t.id, t.attempt]));
    const checkpointsBefore = new Map(
      await Promise.all(victimTasks.map(async (id) => [id, (await checkpointOf(master, id))!] as const)),
    );
    const survivors = live.filter((m) => m !== victim);
    const watcher = new StatusWatcher(survivors, [mapId, logId]);
    victim.kill9();
    live = [...survivors];
    console.log(`killed worker ${victim.name} (${victim.runtime}) running ${victimTasks.join(", ")}`);
    expect(await victim.child.exited).toBe(137);

    // Watch the victim's checkpoint records: the next attempt claims them where the dead one left off.
    const claimed = new Map<string, { checkpointId: number; offset: number; attempt: number }>();
    const end = performance.now() + 90_000;
    while (claimed.size < victimTasks.length && performance.now() < end) {
      for (const id of victimTasks) {
        if (claimed.has(id)) continue;
        const cp = await checkpointOf(master, id).catch(() => undefined);
        if (cp && cp.attempt > before.get(id)!) claimed.set(id, cp);
      }
      await Bun.sleep(50);
    }
    const [mapDone, logDone] = await Promise.all([
      waitJob(master, mapId, (i) => i.status === "FINISHED" || i.status === "FAILED", 120_000, "FINISHED"),
      waitJob(master, logId, (i) => i.status === "FINISHED" || i.status === "FAILED", 120_000, "FINISHED"),
    ]);
    console.log(
      `after the worker kill: map job ${mapDone.status} [${taskSummary(mapDone)}], log job ${logDone.status} [${
        taskSummary(logDone)
      }]`,
    );
    expect([mapDone.status, logDone.status]).toEqual(["FINISHED", "FINISHED"]);
    const view = await master.json<ClusterJson>("/cluster");
    expect(view.master).toBe(master.id);
    expect(view.members.map((m) => m.id)).not.toContain(victim.id);
    if (claimed.size < victimTasks.length) {
      console.log(master.stderr().split("\n").filter((l) => /"layer":"jobs"|removed/.test(l)).slice(-40).join("\n"));
    }
    for (const t of [...mapDone.tasks, ...logDone.tasks]) {
      const expected = victimTasks.includes(t.id) ? before.get(t.id)! + 1 : before.get(t.id)!;
      expect(`${t.id} attempt ${t.attempt}`).toBe(`${t.id} attempt ${expected}`);
      expect(t.worker).not.toBe(victim.id);
    }
    for (const id of victimTasks) {
      const old = checkpointsBefore.get(id)!;
      const got = claimed.get(id);
      expect(got).toBeDefined();
      console.log(
        `${id}: checkpoint ${old.checkpointId} at offset ${old.offset} before the kill; attempt ${
          got!.attempt
        } resumed at checkpoint ${got!.checkpointId}, offset ${got!.offset}`,
      );
      // Resumed from (at least) the checkpoint seen before the kill, never from the start.
      expect(old.checkpointId).toBeGreaterThan(0);
      expect(got!.checkpointId).toBeGreaterThanOrEqual(old.checkpointId);
      expect(got!.offset).toBeGreaterThanOrEqual(old.offset);
    }
    await Bun.sleep(1_000);
    await watcher.stop();
    expect(watcher.failures.slice(0, 5)).toEqual([]);
    expect(watcher.regressions).toEqual([]);
    await checkOutput(live, mapId, "out-w", logId, "log-w");
    finishedJobs.push(mapId, logId);
    await waitNoSlotLeak(master, live.map((m) => m.id), [victim.id]);
    await checkStillFinished();
  }, 240_000);

  test("cancel of a running job: CANCELED, slots back to total", async () => {
    const [master, other] = live;
    const id = "c-map";
    await submitJob([other], mapSinkJob(id, "out-c", 300));
    await waitJob(other, id, (i) => i.status === "RUNNING" && written(i) > 0, 90_000, "RUNNING with a checkpoint");
    const r = await fetch(`${other.url}/jobs/${id}/cancel`, { method: "POST", signal: AbortSignal.timeout(10_000) });
    expect(r.status).toBe(202);
    const done = await waitJob(
      master,
      id,
      (i) => i.status === "CANCELED" || i.status === "FINISHED" || i.status === "FAILED",
      60_000,
      "CANCELED",
    );
    console.log(`cancelled: ${done.status} [${taskSummary(done)}], ${written(done)} records written`);
    expect(done.status).toBe("CANCELED");
    expect(done.tasks.every((t) => t.state === "CANCELED")).toBe(true);
    expect(written(done)).toBeLessThan(recordCount);
    await waitNoSlotLeak(other, live.map((m) => m.id), []);
    // Still CANCELED a while later, on every member.
    await Bun.sleep(1_500);
    for (const m of live) expect((await jobInfo(m, id))?.status).toBe("CANCELED");
    await checkStillFinished();
    // GET /jobs lists every job of this file with its final status.
    const list = await other.json<{ id: string; status: string }[]>("/jobs");
    const status = new Map(list.map((j) => [j.id, j.status]));
    expect(finishedJobs.map((j) => `${j}: ${status.get(j)}`)).toEqual(finishedJobs.map((j) => `${j}: FINISHED`));
    expect(status.get(id)).toBe("CANCELED");
  }, 120_000);
});
