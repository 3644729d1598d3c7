/**
 * Rotating the cluster secret without downtime, on real processes (Bun and Deno members
 * over WebRTC), following README "Rotating the cluster secret": a 3-member cluster under
 * OLD is rolled one member at a time, each restarted (graceful shutdown, then a new
 * process) with `--secret NEW --previous-secret OLD`, then each restarted again with
 * `--secret NEW` alone. Clients write and read through REST the whole time. Checked: no
 * acknowledged write is lost and the history is linearizable per key; while one member
 * restarts, every other member keeps every other member in its view (the rotation costs
 * nothing beyond the restarted member); and a member with only OLD is refused at the end.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { checkLinearizable, checkNoLostWrites } from "./support/history_checker.ts";
import { RestLoad } from "./support/rest_history.ts";
import { type ClusterJson, killAll, type Member, spawnMod, startMember } from "./support/cluster.ts";
import { until } from "./support/until.ts";

afterAll(killAll);

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const OLD = "rotation-old-secret";
const NEW = "rotation-new-secret";
const ARGS = ["--partition-count", "31"];

/** Every member lists exactly `members`, with one master and full, settled replicas. */
async function settled(members: Member[]): Promise<true | undefined> {
  const vs = await Promise.all(members.map((m) => m.json<ClusterJson>("/cluster").catch(() => undefined)));
  const ids = members.map((m) => m.id).sort().join(",");
  return vs.every((v) =>
    v && v.members.map((x) => x.id).sort().join(",") === ids && v.master === vs[0]!.master &&
    v.partitions.replicasMissing === 0 && v.partitions.migrating === 0
  ) || undefined;
}

describe("secret rotation across processes", () => {
  test("a rolling restart from OLD to NEW+OLD to NEW under REST load loses no write and no member", async () => {
    const a = await startMember({ name: "a", runtime: "bun", secret: OLD, args: ARGS });
    const live: Member[] = [
      a,
      ...await Promise.all([
        startMember({ name: "b", runtime: "deno", secret: OLD, join: a.url, args: ARGS }),
        startMember({ name: "c", runtime: "bun", secret: OLD, join: a.url, args: ARGS }),
      ]),
    ];
    await until(() => settled(live), 60_000, "3 members under OLD with full replicas");

    // The clients pick from this array at every operation: a member leaves it before its restart.
    const targets = live.map((m) => ({ name: m.name, url: m.url }));
    const load = new RestLoad({ members: targets, clients: 6, keys: 8 });
    await sleep(1500);

    // Members that must keep listing each other: all but the one restarting, until its
    // successor is in every view.
    const violations: string[] = [];
    let stable: Member[] = [...live];
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const must = stable;
        for (const m of must) {
          const v = await m.json<ClusterJson>("/cluster", 2000).catch(() => undefined);
          if (!v || stable !== must) continue;
          const listed = new Set(v.members.map((x) => x.id));
          for (const o of must) if (!listed.has(o.id)) violations.push(`${m.name} stopped listing ${o.name}`);
        }
        await sleep(200);
      }
    })();

    const restart = async (i: number, secretArgs: string[], phase: string) => {
      const old = live[i];
      stable = live.filter((m) => m !== old);
      targets.splice(targets.findIndex((t) => t.name === old.name), 1);
      old.child.kill("SIGTERM");
      expect(await old.child.exited).toBe(0);
      const rest = live.filter((m) => m !== old);
      await until(() => settled(rest), 60_000, `${phase}: the others after ${old.name} left`);
      const name = `${old.name}${phase}`;
      const fresh = await startMember({
        name,
        runtime: old.runtime,
        secret: secretArgs[0],
        join: rest[0].url,
        args: [...ARGS, ...secretArgs.slice(1)],
      });
      live[i] = fresh;
      await until(() => settled(live), 60_000, `${phase}: ${name} joined`);
      stable = [...live];
      targets.push({ name, url: fresh.url });
      await sleep(1000);
    };
    for (let i = 0; i < live.length; i++) await restart(i, [NEW, "--previous-secret", OLD], "1");
    // A NEW+OLD member joining through OLD-only members signed under OLD after a refusal.
    expect(live.some((m) => m.stderr().includes("cluster.join.previous_secret"))).toBe(true);
    for (let i = 0; i < live.length; i++) await restart(i, [NEW], "2");

    watching = false;
    await watcher;
    await load.stop();
    await until(() => settled(live), 60_000, "3 members under NEW");

    // A member that knows only OLD is refused now, and says why.
    const stale = spawnMod(
      live[0].runtime,
      ["node", "--name", "stale", "--http", "127.0.0.1:0", "--join", live[0].url],
      {
        SHOAL_SECRET: OLD,
      },
    );
    const code = await Promise.race([stale.child.exited, sleep(60_000).then(() => "timeout")]);
    expect(code).toBe(1);
    expect(stale.stderr()).toContain("secret");
    expect(stale.stderr()).not.toContain(OLD);
    expect(await settled(live)).toBe(true);

    await load.readAll(targets[0]);
    const h = load.history;
    console.log(
      `${h.ops.length} operations, ${h.ops.filter((o) => o.status === "ok").length} ok, ${
        h.ops.filter((o) => o.status === "fail").length
      } failed during the roll`,
    );
    expect(violations).toEqual([]);
    expect(checkNoLostWrites(h).problems).toEqual([]);
    expect(checkLinearizable(h).problems).toEqual([]);
  }, 480_000);
});
