/**
 * Real member processes over real WebRTC (Bun and Deno): a member whose process does not
 * run for 1.5 s (SIGSTOP, then SIGCONT — CPU starvation, a long GC pause) is not declared
 * dead by anyone, the cluster keeps its member list, and the stopped member notices that
 * its own event loop stalled instead of accusing the others.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { killAll, type Member, startMember } from "./support/cluster.ts";
import { until } from "./support/until.ts";

afterAll(killAll);

interface ClusterJson {
  master: string;
  memberListVersion: number;
  members: { id: string; name: string }[];
}

const STOP_MS = 1500;

describe("membership across processes under CPU starvation", () => {
  test(`a member stopped for ${STOP_MS} ms (the master, then a Deno member) is kept by everyone`, async () => {
    const a = await startMember({ name: "a", runtime: "bun" });
    const b = await startMember({ name: "b", runtime: "deno", join: a.url });
    const c = await startMember({ name: "c", runtime: "bun", join: a.url });
    const all = [a, b, c];
    const views = () => Promise.all(all.map((m) => m.json<ClusterJson>("/cluster")));
    const formed = await until(
      async () => {
        const vs = await views();
        return vs.every((v) =>
            v.members.length === 3 && v.master === a.id && v.memberListVersion === vs[0].memberListVersion
          )
          ? vs
          : undefined;
      },
      30_000,
      "3-member view",
    );
    const version = formed[0].memberListVersion;

    const stop = async (victim: Member) => {
      victim.child.kill("SIGSTOP");
      await Bun.sleep(STOP_MS);
      victim.child.kill("SIGCONT");
      // Longer than a dead verdict plus the master's publication would take.
      await Bun.sleep(6_000);
      const vs = await views();
      const deaths = all.flatMap((m) =>
        m.stderr().split("\n").filter((l) => l.includes('"cluster.member.dead"')).map((l) => `${m.name}: ${l}`)
      );
      expect(deaths).toEqual([]);
      expect(vs.map((v) => [v.master, v.memberListVersion, v.members.length])).toEqual(
        all.map(() => [a.id, version, 3]),
      );
      // The stopped member saw its own timers fire late and said so.
      expect(victim.stderr()).toContain('"cluster.self.stalled"');
    };
    await stop(a);
    await stop(b);
  }, 120_000);
});
