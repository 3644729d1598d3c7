/**
 * A job failing past its retry limit, between real member processes over real WebRTC
 * (Bun, Deno, Bun; issue 5, "Must show"). The failure is requested through `POST /jobs`
 * with the sequence source's `failAtRecord`: the task holding that record fails there on
 * every attempt. A healthy job is submitted alongside.
 *
 * - The doomed job ends FAILED, and every member's `GET /jobs/:id` (and SeaTunnel's
 *   `/job-info/:id`) gives the reason: the task, its attempts, the record.
 * - The failing task ran exactly 1 + maxTaskRestarts attempts; each resumed from its last
 *   checkpoint, so its log sink list is a prefix of its range below the record, without
 *   duplicates.
 * - Every slot is returned: `free == total` in every member's `workers` entry.
 * - The healthy job FINISHES with exact output.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { killAll, type Member, startMember } from "./support/cluster.ts";
import { until } from "./support/until.ts";
import {
  checkMapSink,
  coordinatorRecord,
  expectedDoubled,
  jobInfo,
  mapValue,
  submitJob,
  waitJob,
  waitNoSlotLeak,
} from "./support/jobs_checks.ts";
import type { JobInfo } from "../src/jobs/job_service.ts";
import type { LogList } from "../src/jobs/sink_log.ts";
import { failAtRecordMessage, sequenceValue } from "../src/jobs/source_sequence.ts";

const secret = `jobs-failure-${Date.now()}`;
const count = 3000;
const failAt = 1100; // task t1 of 3 reads ids 1000…1999
const maxTaskRestarts = 2;
let members: Member[] = [];

beforeAll(async () => {
  const a = await startMember({ name: "fa", runtime: "bun", secret });
  const [b, c] = await Promise.all([
    startMember({ name: "fb", runtime: "deno", join: a.url, secret }),
    startMember({ name: "fc", runtime: "bun", join: a.url, secret }),
  ]);
  members = [a, b, c];
  await until(
    async () => {
      const vs = await Promise.all(
        members.map((m) =>
          m.json<{ master: string; members: unknown[]; partitions: { replicasMissing: number } }>("/cluster")
        ),
      );
      return vs.every((v) => v.members.length === 3 && v.master === a.id && v.partitions.replicasMissing === 0)
        ? true
        : undefined;
    },
    60_000,
    "3 members with full replicas",
  );
  await until(
    async () => (await coordinatorRecord(b))?.member === a.id ? true : undefined,
    20_000,
    "coordinator record",
  );
  await waitNoSlotLeak(c, members.map((m) => m.id), []);
}, 90_000);

afterAll(() => {
  killAll();
});

test(
  "a job whose task fails past the retry limit ends FAILED with the reason on every member; slots return; a healthy job still finishes exactly",
  async () => {
    const [a, b, c] = members;
    const doomed = {
      id: "doomed",
      name: "doomed",
      source: { type: "sequence", count, parallelism: 3, ratePerSecond: 1500, failAtRecord: failAt },
      sink: { type: "log", map: "log-doomed" },
      checkpointIntervalMs: 200,
      maxTaskRestarts,
    };
    const healthy = {
      id: "healthy",
      name: "healthy",
      source: { type: "sequence", count, parallelism: 3, ratePerSecond: 1500 },
      transform: { type: "map", fn: "double" },
      sink: { type: "map", map: "out-healthy" },
      checkpointIntervalMs: 300,
    };
    await Promise.all([submitJob([b], doomed), submitJob([c], healthy)]);

    const failed = await waitJob(
      a,
      "doomed",
      (i) => i.status === "FAILED" || i.status === "FINISHED" || i.status === "CANCELED",
      60_000,
      "FAILED",
    );
    const failing = failed.tasks.find((t) => t.id === "doomed/p0/t1")!;
    console.log(
      `doomed: ${failed.status}; ${
        failed.tasks.map((t) => `${t.id.slice(-2)}:${t.state}#${t.attempt}`).join(" ")
      }; error: ${failed.error}`,
    );
    expect(failed.status).toBe("FAILED");
    const reason = `task doomed/p0/t1 failed after ${1 + maxTaskRestarts} attempts: ${failAtRecordMessage(failAt)}`;
    expect(failed.error).toBe(reason);
    expect([failing.state, failing.attempt]).toEqual(["FAILED", 1 + maxTaskRestarts]);
    // The other tasks either finished before the job failed or were cancelled by it.
    for (const t of failed.tasks) if (t !== failing) expect(["FINISHED", "CANCELED"]).toContain(t.state);

    // Every member answers with the same final state and reason (reads come from the maps).
    for (const m of members) {
      const info = (await jobInfo(m, "doomed")) as JobInfo;
      expect(`${m.name} (${m.runtime}): ${info.status}: ${info.error}`).toBe(
        `${m.name} (${m.runtime}): FAILED: ${reason}`,
      );
      const st = await m.json<{ jobStatus: string; errorMsg: string | null }>("/job-info/doomed");
      expect([st.jobStatus, st.errorMsg]).toEqual(["FAILED", reason]);
    }
    const listed = await c.json<{ jobId: string; errorMsg: string | null }[]>("/finished-jobs/FAILED");
    expect(listed.find((j) => j.jobId === "doomed")?.errorMsg).toBe(reason);

    // Each attempt resumed from the last checkpoint: the failing task's log list is a prefix
    // of 1000…1099 without duplicates (nothing at or after the failing record).
    const list = await mapValue<LogList>(b, "log-doomed", "doomed/p0/t1");
    const ids = (list?.entries ?? []).map((r) => r.id);
    console.log(
      `doomed/p0/t1 log: ${ids.length} entries (${ids[0]}…${ids[ids.length - 1]}), checkpoint ${list?.applied}`,
    );
    expect(ids).toEqual(Array.from({ length: ids.length }, (_, i) => 1000 + i));
    expect(ids.every((id) => id < failAt)).toBe(true);
    expect((list?.entries ?? []).every((r) => r.value === sequenceValue(r.id))).toBe(true);

    // The healthy job finishes with exact output.
    const ok = await waitJob(c, "healthy", (i) => i.status === "FINISHED" || i.status === "FAILED", 60_000, "FINISHED");
    expect([ok.status, ok.error]).toEqual(["FINISHED", undefined]);
    expect(ok.tasks.map((t) => `${t.state}#${t.attempt}`)).toEqual(["FINISHED#1", "FINISHED#1", "FINISHED#1"]);
    expect(ok.metrics.recordsWritten).toBe(count);
    const wrong = await checkMapSink(members, "out-healthy", expectedDoubled, count);
    expect(wrong.slice(0, 10)).toEqual([]);

    // No slot leaks: every worker's slots are free again, as seen from each member.
    for (const m of members) await waitNoSlotLeak(m, members.map((x) => x.id), [], 20_000);
    // And the failed job stays FAILED.
    expect((await jobInfo(b, "doomed"))?.status).toBe("FAILED");
  },
  90_000,
);
