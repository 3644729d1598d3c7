/**
 * The examples run under Bun as a user would run them (`bun run examples/…`), checked by
 * exit code and output: local-cluster.ts (three members in one process over WebRTC, the
 * master leaves, every entry survives) and embedding.ts, alone and as a member joining a
 * running cluster process whose REST API then serves what the example wrote; work-queue.ts
 * (a consumer dies mid-job, every job done exactly once).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { killAll, launcher, runScript, startMember } from "./support/cluster.ts";
import { until } from "./support/until.ts";

afterAll(killAll);

async function runExample(file: string, env: Record<string, string> = {}, timeoutMs = 120_000) {
  const r = await runScript([...launcher("bun"), file], env, timeoutMs);
  if (r.code !== 0) console.error(`${file} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** The example exited 0 and its output holds each of `lines` (a text it contains, or a pattern it matches). */
function expectOutput(r: { code: number | null; stdout: string }, lines: Array<string | RegExp>): void {
  expect(r.code).toBe(0);
  for (const l of lines) {
    if (typeof l === "string") expect(r.stdout).toContain(l);
    else expect(r.stdout).toMatch(l);
  }
}

describe("examples under Bun", () => {
  test("local-cluster.ts: 3 members over WebRTC, the master leaves, data survives, exit 0", async () => {
    expectOutput(await runExample("examples/local-cluster.ts"), [
      "cluster of 3 over WebRTC: a, b, c; master a",
      /links from a: \w+ direct, \w+ direct/,
      'b wrote 300 entries into map "cities"',
      "members now: b, c; new master b",
      "all 300 entries survived",
      "done",
    ]);
  }, 150_000);

  test("work-queue.ts: a consumer dies mid-job, every job is still done exactly once, exit 0", async () => {
    expectOutput(await runExample("examples/work-queue.ts"), [
      /c stops dead in the middle of a job after \d+ jobs/,
      /jobs handed back by the janitor: [1-9]/,
      "results 200, completions counted 200",
      "every one of 200 jobs done exactly once",
    ]);
  }, 150_000);

  test("embedding.ts alone: IMap API and REST agree, exit 0", async () => {
    expectOutput(await runExample("examples/embedding.ts"), [
      "(1 member(s))",
      /cart: \[\s*"book", "pen", "lamp", "mug"\s*\]/,
      "size 52, guests seen by iteration 50, containsKey(s-2) true",
      /GET http:\/\/127\.0\.0\.1:\d+\/maps\/sessions\/s-1 → \{"value":\{"user":"ada"/,
    ]);
  }, 150_000);

  test(
    "embedding.ts as a member of a running cluster: what it wrote stays in the cluster after it leaves",
    async () => {
      const secret = "embedding-join-test";
      const member = await startMember({ name: "host", runtime: "bun", secret, args: ["--log-level", "warn"] });
      expectOutput(await runExample("examples/embedding.ts", { SHOAL_JOIN: member.url, SHOAL_SECRET: secret }), [
        "(2 member(s))",
      ]);
      // The example left gracefully (its partitions migrated to the host) and kept its map.
      const s1 = await until(
        async () => {
          const res = await member.get("/maps/sessions/s-1");
          return res.ok ? (await res.json()).value : undefined;
        },
        20_000,
        "s-1 readable on the host",
      );
      expect(s1).toEqual({ user: "ada", cart: ["book", "pen", "lamp", "mug"], visits: 5 });
      expect((await member.json<{ size: number }>("/maps/sessions")).size).toBe(51);
      expect((await member.json<{ members: unknown[] }>("/cluster")).members.length).toBe(1);
    },
    150_000,
  );
});
