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

describe("examples under Bun", () => {
  test("local-cluster.ts: 3 members over WebRTC, the master leaves, data survives, exit 0", async () => {
    const r = await runExample("examples/local-cluster.ts");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("cluster of 3 over WebRTC: a, b, c; master a");
    expect(r.stdout).toMatch(/links from a: \w+ direct, \w+ direct/);
    expect(r.stdout).toContain('b wrote 300 entries into map "cities"');
    expect(r.stdout).toContain("members now: b, c; new master b");
    expect(r.stdout).toContain("all 300 entries survived");
    expect(r.stdout).toContain("done");
  }, 150_000);

  test("work-queue.ts: a consumer dies mid-job, every job is still done exactly once, exit 0", async () => {
    const r = await runExample("examples/work-queue.ts");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/c stops dead in the middle of a job after \d+ jobs/);
    expect(r.stdout).toMatch(/jobs handed back by the janitor: [1-9]/);
    expect(r.stdout).toContain("results 200, completions counted 200");
    expect(r.stdout).toContain("every one of 200 jobs done exactly once");
  }, 150_000);

  test("embedding.ts alone: IMap API and REST agree, exit 0", async () => {
    const r = await runExample("examples/embedding.ts");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("(1 member(s))");
    expect(r.stdout).toMatch(/cart: \[\s*"book", "pen", "lamp", "mug"\s*\]/);
    expect(r.stdout).toContain("size 52, guests seen by iteration 50, containsKey(s-2) true");
    expect(r.stdout).toMatch(/GET http:\/\/127\.0\.0\.1:\d+\/maps\/sessions\/s-1 → \{"value":\{"user":"ada"/);
  }, 150_000);

  test(
    "embedding.ts as a member of a running cluster: what it wrote stays in the cluster after it leaves",
    async () => {
      const secret = "embedding-join-test";
      const member = await startMember({ name: "host", runtime: "bun", secret, args: ["--log-level", "warn"] });
      const r = await runExample("examples/embedding.ts", { SHOAL_JOIN: member.url, SHOAL_SECRET: secret });
      expect(r.code).toBe(0);
      expect(r.stdout).toContain("(2 member(s))");
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
