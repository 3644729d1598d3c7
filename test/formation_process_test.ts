/**
 * Safe from the first second, on real member processes over real WebRTC (issue 11, "Must
 * show"): three members (Bun and Deno) form a cluster with empty maps; the moment all three
 * list each other, REST writes start through the two members that will stay (32 in flight,
 * each key written once), a job is submitted 0.5 s later, and the master is killed with
 * SIGKILL between 0.5 and 1.5 s after formation. Writes go on for a second after the kill.
 *
 * - Every acknowledged write reads back with its value (0 lost).
 * - The job finishes with exact output.
 * - `GET /health` reports `safe` on both survivors once their table is whole again.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { killAll, type Member, type RuntimeKind, startMember } from "./support/cluster.ts";
import { until } from "./support/until.ts";
import { checkMapSink, expectedDoubled, mapSinkJob, pool, submitJob, waitJob } from "./support/jobs_checks.ts";

afterAll(() => killAll());

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface ClusterBody {
  master: string;
  members: Array<{ id: string }>;
  partitions: { replicasMissing: number; dataLoss: number };
}

/** Prints what the members say about themselves (on a failure). */
async function dump(members: Member[]): Promise<void> {
  for (const m of members) {
    const view = await m.json<ClusterBody>("/cluster").then((v) => JSON.stringify({ ...v, links: undefined }), String);
    const log = m.stderr().split("\n").filter((l) => /warn|error|job|master|member/.test(l)).slice(-30);
    console.log(`${m.name} /cluster: ${view.slice(0, 600)}\n${m.name} log:\n${log.join("\n")}`);
  }
}

async function scenario(runtimes: [RuntimeKind, RuntimeKind, RuntimeKind], killAfterMs: number): Promise<void> {
  const secret = `formation-${Date.now()}`;
  const a = await startMember({ name: "fa", runtime: runtimes[0], secret });
  const [b, c] = await Promise.all([
    startMember({ name: "fb", runtime: runtimes[1], join: a.url, secret }),
    startMember({ name: "fc", runtime: runtimes[2], join: a.url, secret }),
  ]);
  const all = [a, b, c];
  await until(
    async () => {
      const vs = await Promise.all(all.map((m) => m.json<ClusterBody>("/cluster")));
      return vs.every((v) => v.members.length === 3) ? true : undefined;
    },
    30_000,
    "all three members list each other",
  );
  const formedAt = performance.now();
  const first = await a.json<ClusterBody>("/cluster");
  console.log(`formed; replicasMissing then: ${first.partitions.replicasMissing}`);

  // Writers: 32 in flight through b and c, each key written once.
  const acked = new Map<string, number>();
  let failed = 0;
  let slowest = 0;
  const errors = new Map<string, number>();
  let next = 0;
  let writing = true;
  const writer = async (w: number) => {
    while (writing) {
      const i = next++;
      const m = [b, c][w % 2];
      const t = performance.now();
      try {
        const r = await fetch(`${m.url}/maps/formation/k${i}`, {
          method: "PUT",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(i * 7 + 1),
          signal: AbortSignal.timeout(10_000),
        });
        const text = await r.text();
        if (r.status === 200) acked.set(`k${i}`, i * 7 + 1);
        else {
          failed++;
          errors.set(`${r.status} ${text.slice(0, 80)}`, (errors.get(`${r.status} ${text.slice(0, 80)}`) ?? 0) + 1);
        }
      } catch (e) {
        failed++;
        errors.set(String(e).slice(0, 80), (errors.get(String(e).slice(0, 80)) ?? 0) + 1);
      }
      slowest = Math.max(slowest, performance.now() - t);
    }
  };
  const writers = Array.from({ length: 32 }, (_, w) => writer(w));

  await sleep(Math.max(0, formedAt + 500 - performance.now()));
  const job = mapSinkJob("formation-job", "formation-out", 3000, 300);
  // Submitted (and retried, same id) while the master may die: on a loaded machine the answer
  // can come after the kill.
  let submittedAt = -1;
  const submitted = submitJob([b, c], job, 60_000).then(
    () => (submittedAt = performance.now() - formedAt),
    async (e) => {
      await dump([b, c]);
      throw e;
    },
  );
  await sleep(Math.max(0, formedAt + killAfterMs - performance.now()));
  const ackedBeforeKill = acked.size;
  a.kill9();
  const killedAt = performance.now() - formedAt;
  await submitted;
  console.log(
    `job submitted (201) at ${submittedAt.toFixed(0)} ms; master killed at ${killedAt.toFixed(0)} ms ` +
      `with ${ackedBeforeKill} writes acknowledged`,
  );
  await sleep(1000);
  writing = false;
  await Promise.all(writers);
  console.log(
    `${acked.size} writes acknowledged, ${failed} failed (${JSON.stringify([...errors])}); slowest ${
      slowest.toFixed(0)
    } ms`,
  );

  const survivors = [b, c];
  await until(
    async () => {
      const vs = await Promise.all(survivors.map((m) => m.json<ClusterBody>("/cluster")));
      return vs.every((v) => v.members.length === 2 && v.partitions.replicasMissing === 0) ? vs : undefined;
    },
    30_000,
    "survivors with full replicas",
  );
  for (const m of survivors) {
    const h = await m.json<{ safe: boolean }>("/health");
    expect(h.safe).toBe(true);
    // Partitions whose backups were not in sync yet when the master died are reported lost
    // (their new primary found no copy of the history); writes to them were held, so no
    // acknowledged write was in them. On a loaded machine a kill at 0.6 s can come first.
    const loss = (await m.json<ClusterBody>("/cluster")).partitions.dataLoss;
    if (loss > 0) console.log(`${m.name}: ${loss} partitions reported lost (backups not yet in sync at the kill)`);
  }

  const lost: string[] = [];
  await pool([...acked], 16, async ([k, v], i) => {
    const m = survivors[i % 2];
    const r = await fetch(`${m.url}/maps/formation/${k}`, { signal: AbortSignal.timeout(10_000) });
    const body = await r.text();
    if (r.status !== 200 || JSON.parse(body).value !== v) lost.push(`${k}: ${r.status} ${body.slice(0, 100)}`);
  });
  console.log(`${lost.length} of ${acked.size} acknowledged writes lost`);
  expect(lost.slice(0, 5)).toEqual([]);
  expect(acked.size).toBeGreaterThan(0);

  const info = await waitJob(b, job.id, (j) => j.status === "FINISHED" || j.status === "FAILED", 90_000, "FINISHED")
    .catch(async (e) => {
      await dump(survivors);
      throw e;
    });
  expect(info.status).toBe("FINISHED");
  expect(await checkMapSink(survivors, "formation-out", expectedDoubled)).toEqual([]);
  killAll();
}

describe("formation: kill -9 of the master right after three members list each other", () => {
  test("Bun master, Deno and Bun members: killed at 1.0 s", () => scenario(["bun", "deno", "bun"], 1000), 180_000);
  test("Deno master, Bun and Deno members: killed at 0.6 s", () => scenario(["deno", "bun", "deno"], 600), 180_000);
  test("Bun master, Bun and Deno members: killed at 1.4 s", () => scenario(["bun", "bun", "deno"], 1400), 180_000);
});
