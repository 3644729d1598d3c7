/**
 * A member whose cluster-wide settings differ from the cluster's is refused at join (issue
 * 11): it exits non-zero with a message naming the setting, both values and the flag, and
 * never prints its ready line. Under Bun and Deno (the refused joiner runs under the other
 * runtime than the member it joins, in both directions).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { killAll, type RuntimeKind, runToExit, startMember } from "./support/cluster.ts";

afterAll(() => killAll());

/** A setting the joiner sets differently from the cluster, and what its refusal says. */
const partitionCount = {
  args: ["--partition-count", "100"],
  differs: `partition count 100 differs from the cluster's 271 (--partition-count)`,
};
const mergePolicy = (policy: string) => ({
  args: ["--merge-policy", policy],
  differs: `merge policy "${policy}" differs from the cluster's "latestUpdate" (--merge-policy)`,
});

const cases: Array<{ joiner: RuntimeKind; member: RuntimeKind; args: string[]; differs: string }> = [
  { joiner: "bun", member: "deno", ...partitionCount },
  { joiner: "deno", member: "bun", ...mergePolicy("discard") },
  { joiner: "deno", member: "bun", ...partitionCount },
  { joiner: "bun", member: "deno", ...mergePolicy("passThrough") },
];

describe("join with settings that differ from the cluster's", () => {
  for (const c of cases) {
    test(`${c.joiner} joiner with ${c.args.join(" ")} is refused by a ${c.member} member`, async () => {
      const secret = `settings-${Date.now()}`;
      const a = await startMember({ name: "sa", runtime: c.member, secret });
      const r = await runToExit(c.joiner, [
        "node",
        "--name",
        "odd",
        "--http",
        "127.0.0.1:0",
        "--secret",
        secret,
        "--join",
        a.url,
        ...c.args,
      ]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain(`Cannot join cluster "shoal": ${c.differs}`);
      expect(r.stdout).not.toContain('"event":"ready"');
      // The cluster did not take it in.
      expect((await a.json<{ members: unknown[] }>("/cluster")).members.length).toBe(1);
      a.kill9();
    }, 60_000);
  }
});
