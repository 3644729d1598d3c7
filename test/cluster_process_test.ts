/**
 * Membership between real processes over real WebRTC, Bun and Deno mixed: five members
 * form one cluster; kill -9 of the master makes every survivor agree on the oldest
 * survivor; a restarted member re-joins under a new identity; a wrong secret is refused.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { killAll, type Member, runToExit, startMember } from "./support/cluster.ts";
import { until } from "./support/until.ts";

afterAll(killAll);

interface ClusterJson {
  master: string;
  epoch: number;
  memberListVersion: number;
  members: { id: string; name: string; runtime: string; joinedAt: number }[];
}

describe("membership across processes", () => {
  test("5 members (Bun and Deno), kill -9 of the master, restart, wrong secret", async () => {
    const a = await startMember({ name: "a", runtime: "bun" });
    const rest: Member[] = [];
    const plan: ["bun" | "deno", string][] = [["deno", "b"], ["bun", "c"], ["deno", "d"], ["bun", "e"]];
    for (const [runtime, name] of plan) rest.push(await startMember({ name, runtime, join: a.url }));
    const all = [a, ...rest];

    // One view everywhere: 5 members, the same master (the oldest, a), the same version.
    const views = await until(
      async () => {
        const vs = await Promise.all(all.map((m) => m.json<ClusterJson>("/cluster")));
        const ok = vs.every((v) =>
          v.members.length === 5 && v.master === a.id && v.memberListVersion === vs[0].memberListVersion
        );
        return ok ? vs : undefined;
      },
      30_000,
      "5-member view",
    );
    expect(views[0].members.map((m) => m.name)).toEqual(["a", "b", "c", "d", "e"]);
    expect(new Set(views.flatMap((v) => v.members.map((m) => m.runtime)))).toEqual(new Set(["bun", "deno"]));
    for (const m of all) expect((await m.json<{ status: string }>("/health")).status).toBe("ok");
    // Every real member renders its metrics (job families included) without error.
    for (const m of [a, rest[0]]) {
      const r = await m.get("/metrics");
      expect(r.status).toBe(200);
      const text = await r.text();
      expect(text).toContain('shoal_members{lite="false"} 5');
      expect(text).toContain("shoal_jobs{");
      expect(text).toMatch(/shoal_replication_events_total\{event="snapshotChunksResent"\} \d+/);
      expect(text).toMatch(/shoal_transport_message_bytes_total\{kind="ClusterPing[A-Za-z]*"\} [1-9]\d*/);
    }

    // kill -9 the master: every survivor agrees on the oldest survivor, b.
    const before = views.map((v) => v.epoch);
    const t0 = performance.now();
    a.kill9();
    const survivors = rest;
    await until(
      async () => {
        const vs = await Promise.all(survivors.map((m) => m.json<ClusterJson>("/cluster")));
        return vs.every((v) => v.master === rest[0].id && v.members.length === 4) ? vs : undefined;
      },
      15_000,
      "new master agreed by all survivors",
    );
    const detectMs = performance.now() - t0;
    console.log(`kill -9 of the master → all 4 survivors agree on the new master after ${detectMs.toFixed(0)} ms`);
    const after = await Promise.all(survivors.map((m) => m.json<ClusterJson>("/cluster")));
    for (let i = 0; i < after.length; i++) expect(after[i].epoch).toBeGreaterThan(before[i + 1]);
    expect(after.every((v) => !v.members.some((m) => m.id === a.id))).toBe(true);

    // A restarted member (same name, new process) re-joins with a new identity.
    const c = rest[1];
    c.kill9();
    const t1 = performance.now();
    await until(
      async () => {
        const vs = await Promise.all([rest[0], rest[2], rest[3]].map((m) => m.json<ClusterJson>("/cluster")));
        return vs.every((v) => v.members.length === 3) ? true : undefined;
      },
      30_000,
      "c removed",
    ).catch(async (e) => {
      for (const m of [rest[0], rest[2], rest[3]]) {
        const v = await m.json<ClusterJson>("/cluster");
        console.log(m.name, v.master, v.memberListVersion, v.members.map((x) => x.name).join(","));
        console.log(m.stderr().split("\n").filter((l) => /suspect|dead|removed|master/.test(l)).slice(-15).join("\n"));
      }
      throw e;
    });
    console.log(`kill -9 of a member → removed everywhere after ${(performance.now() - t1).toFixed(0)} ms`);
    const c2 = await startMember({ name: "c", runtime: "bun", join: rest[0].url });
    expect(c2.id).not.toBe(c.id);
    const rejoined = await until(
      async () => {
        const vs = await Promise.all([rest[0], rest[2], rest[3], c2].map((m) => m.json<ClusterJson>("/cluster")));
        return vs.every((v) =>
            v.members.length === 4 && v.members.some((m) => m.id === c2.id) && v.master === rest[0].id
          )
          ? vs
          : undefined;
      },
      30_000,
      "restarted member re-joined",
    );
    expect(rejoined[0].members.at(-1)!.name).toBe("c"); // youngest again

    // A member with the wrong secret is refused with a clear reason and a non-zero exit.
    const wrong = await runToExit("bun", [
      "node",
      "--name",
      "intruder",
      "--http",
      "127.0.0.1:0",
      "--secret",
      "not-the-secret",
      "--join",
      rest[0].url,
    ], 60_000);
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr.toLowerCase()).toContain("secret");
    const finalView = await rest[0].json<ClusterJson>("/cluster");
    expect(finalView.members.some((m) => m.name === "intruder")).toBe(false);
  }, 180_000);
});
