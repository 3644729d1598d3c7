/**
 * Split-brain protection between real processes (Bun and Deno members over WebRTC), seen
 * from outside through the REST API: 4 members with `--min-cluster-size 3`, 8 clients
 * recording a history of PUT (returning the previous value), GET and DELETE on 6 hot keys
 * against random members, and the master stopped with SIGSTOP for 6 s (well past failure
 * detection), then resumed with SIGCONT. Requests sent to it meanwhile wait in its socket
 * and are read after the pause. The history must be linearizable per key with no
 * acknowledged write lost, and the resumed master must have refused (QUORUM) instead of
 * answering from its stale copy. A second test kills the master with kill -9 under the same
 * load (clients on the other three): linearizable, nothing acknowledged lost, and the three
 * survivors, a quorum, serve on.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { checkLinearizable, checkNoLostWrites } from "./support/history_checker.ts";
import { RestLoad } from "./support/rest_history.ts";
import { type ClusterJson, killAll, type Member, startMember } from "./support/cluster.ts";
import { until } from "./support/until.ts";

afterAll(killAll);

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const KEYS = 6;
const CLIENTS = 8;
const PAUSE_MS = 6000;

/** Whether `members` list each other under one master, serve (quorum) and hold full replicas. */
async function settled(members: Member[]): Promise<boolean> {
  const vs = await Promise.all(members.map((m) => m.json<ClusterJson>("/cluster").catch(() => undefined)));
  return vs.every((v) =>
    v && v.members.length === members.length && v.master === vs[0]!.master && v.quorum?.serving &&
    v.partitions.replicasMissing === 0 && v.partitions.migrating === 0
  );
}

/** 4 members (Bun, Deno, Bun, Bun) with `--min-cluster-size 3`, serving with full replicas; a is the master. */
async function quorumCluster(): Promise<{ a: Member; others: Member[]; all: Member[] }> {
  const args = ["--min-cluster-size", "3", "--partition-count", "31"];
  const a = await startMember({ name: "a", runtime: "bun", args });
  const others = await Promise.all([
    startMember({ name: "b", runtime: "deno", join: a.url, args }),
    startMember({ name: "c", runtime: "bun", join: a.url, args }),
    startMember({ name: "d", runtime: "bun", join: a.url, args }),
  ]);
  const all = [a, ...others];
  await until(async () => (await settled(all)) || undefined, 60_000, "4 members serving with full replicas");
  return { a, others, all };
}

describe("split-brain protection across processes", () => {
  test(
    "the master killed (kill -9) under load: the REST history stays linearizable, the others keep serving",
    async () => {
      const { a, others } = await quorumCluster();
      const load = new RestLoad({ members: others, clients: CLIENTS, keys: KEYS });
      await sleep(3000);
      a.kill9();
      const killedAt = load.now();
      await sleep(8000);
      await load.stop();
      await until(async () => (await settled(others)) || undefined, 60_000, "three members serving with full replicas");
      await load.readAll(others[0]);
      const h = load.history;
      const okAfter = h.ops.filter((o) => o.status === "ok" && o.invokeAt > killedAt).length;
      console.log(
        `kill -9 of the master under quorum: ${h.ops.length} operations, ${
          h.ops.filter((o) => o.status === "ok").length
        } ok (${okAfter} invoked after the kill), refused with QUORUM: ${
          JSON.stringify(Object.fromEntries(load.refusedBy))
        }`,
      );
      expect(checkNoLostWrites(h).problems).toEqual([]);
      expect(checkLinearizable(h).problems).toEqual([]);
      // Three of four hold the quorum: the survivors served on after the kill.
      expect(okAfter).toBeGreaterThan(0);
      killAll();
    },
    180_000,
  );

  test("the master stopped past failure detection, then resumed: the REST history stays linearizable", async () => {
    const { a, others, all } = await quorumCluster();

    const load = new RestLoad({ members: all, clients: CLIENTS, keys: KEYS });
    await sleep(3000);

    const pausedAt = Math.round(load.now());
    a.child.kill("SIGSTOP");
    await sleep(PAUSE_MS);
    a.child.kill("SIGCONT");
    const resumedAt = load.now();
    load.since = resumedAt;
    // How long the resumed master takes to serve again (it re-joins and re-confirms its lease first).
    let servingAgainMs: number | null = null;
    const poll = (async () => {
      while (servingAgainMs === null && load.now() - resumedAt < 60_000) {
        const v = await a.json<ClusterJson>("/cluster").catch(() => undefined);
        if (v?.quorum?.serving) servingAgainMs = Math.round(load.now() - resumedAt);
        await sleep(100);
      }
    })();
    await sleep(8000);
    await load.stop();
    await poll;

    await until(async () => (await settled(all)) || undefined, 60_000, "one cluster of 4 serving again");
    await load.readAll(others[0]);
    const h = load.history;
    console.log(
      `${h.ops.length} operations, ${h.ops.filter((o) => o.status === "ok").length} ok, refused with QUORUM by ${
        JSON.stringify(Object.fromEntries(load.refusedBy))
      }, answered by the resumed master after SIGCONT: ${load.answeredSince.get("a") ?? 0}, serving again ${
        servingAgainMs ?? "> 60000"
      } ms after SIGCONT`,
    );
    if (process.env.QUORUM_DEBUG) {
      console.log(`paused at ${pausedAt}, resumed at ${resumedAt}`);
      for (const key of h.keys()) {
        for (const o of h.ops.filter((x) => x.key === key && x.kind !== "get" && x.status !== "refused").slice(-25)) {
          console.log(
            `${key} #${o.id} ${o.kind} ${o.value ?? ""} via ${o.via} ${Math.round(o.invokeAt)}-${
              Math.round(o.endAt)
            } ${o.status} -> ${o.result}`,
          );
        }
      }
      for (const m of all) {
        console.log(`--- ${m.name} ${m.id}`);
        console.log(
          m.stderr().split("\n").filter((l) =>
            /merge|data_lost|caught_up|catch_up|promoted|quorum|split_brain|self\.removed|master\.changed/.test(l)
          ).slice(-30).join("\n"),
        );
      }
    }
    // DUMP_DIR=dir keeps every member's log and the history (for a failing run on a loaded machine).
    const dir = process.env.DUMP_DIR;
    if (dir) {
      const fs = await import("node:fs");
      for (const m of all) fs.writeFileSync(`${dir}/${m.name}.log`, m.stderr());
      fs.writeFileSync(`${dir}/history.json`, JSON.stringify({ pausedAt, resumedAt, ops: h.ops }));
    }
    const metrics = await (await a.get("/metrics")).text();
    expect(metrics).toContain("shoal_quorum_serving 1");
    expect(checkNoLostWrites(h).problems).toEqual([]);
    expect(checkLinearizable(h).problems).toEqual([]);
    expect(load.refusedBy.get("a") ?? 0).toBeGreaterThan(0);
  }, 240_000);
});
