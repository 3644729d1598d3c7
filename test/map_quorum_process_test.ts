/**
 * Split-brain protection between real processes (Bun and Deno members over WebRTC), seen
 * from outside through the REST API: 4 members with `--min-cluster-size 3`, 8 clients
 * recording a history of PUT (returning the previous value), GET and DELETE on 6 hot keys
 * against random members, and the master stopped with SIGSTOP for 6 s (well past failure
 * detection), then resumed with SIGCONT. Requests sent to it meanwhile wait in its socket
 * and are read after the pause. The history must be linearizable per key with no
 * acknowledged write lost, and the resumed master must have refused (QUORUM) instead of
 * answering from its stale copy.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { checkLinearizable, checkNoLostWrites, History, type HistoryOp } from "./support/history_checker.ts";
import { killAll, type Member, startMember, until } from "./support/cluster.ts";

afterAll(killAll);

const KEYS = 6;
const CLIENTS = 8;
const PAUSE_MS = 6000;

interface ClusterJson {
  master: string;
  partitionTableVersion: number;
  members: { id: string }[];
  partitions: { replicasMissing: number; migrating: number };
  quorum: { serving: boolean; refusal: { reason: string } | null; stats: Record<string, number> } | null;
}

type Outcome = { ok: true; value: string | undefined } | { ok: false; refused: boolean };

/** One REST operation; a 503 QUORUM answer means it did not run. */
async function call(m: Member, op: HistoryOp): Promise<Outcome> {
  const url = `${m.url}/maps/q/${op.key}`;
  try {
    const init: RequestInit = op.kind === "put"
      ? { method: "PUT", body: JSON.stringify(op.value), headers: { "content-type": "application/json" } }
      : op.kind === "remove"
      ? { method: "DELETE" }
      : {};
    const r = await fetch(url, { ...init, signal: AbortSignal.timeout(20_000) });
    const body = await r.json() as { value?: string; previous?: string | null; code?: string };
    if (r.status === 200) return { ok: true, value: (op.kind === "get" ? body.value : body.previous) ?? undefined };
    if (r.status === 404 && op.kind === "get") return { ok: true, value: undefined };
    return { ok: false, refused: r.status === 503 && body.code === "QUORUM" };
  } catch {
    return { ok: false, refused: false };
  }
}

describe("split-brain protection across processes", () => {
  test("the master stopped past failure detection, then resumed: the REST history stays linearizable", async () => {
    const args = ["--min-cluster-size", "3", "--partition-count", "31"];
    const a = await startMember({ name: "a", runtime: "bun", args });
    const others = await Promise.all([
      startMember({ name: "b", runtime: "deno", join: a.url, args }),
      startMember({ name: "c", runtime: "bun", join: a.url, args }),
      startMember({ name: "d", runtime: "bun", join: a.url, args }),
    ]);
    const all = [a, ...others];
    const settled = async (members: Member[]) => {
      const vs = await Promise.all(members.map((m) => m.json<ClusterJson>("/cluster").catch(() => undefined)));
      return vs.every((v) =>
        v && v.members.length === members.length && v.master === vs[0]!.master && v.quorum?.serving &&
        v.partitions.replicasMissing === 0 && v.partitions.migrating === 0
      );
    };
    await until(async () => (await settled(all)) || undefined, 60_000, "4 members serving with full replicas");

    const history = new History();
    const t0 = performance.now();
    const now = () => performance.now() - t0;
    let running = true;
    let seq = 0;
    const refusedBy = new Map<string, number>();
    const answeredByPausedAfterResume = { ok: 0 };
    let resumedAt = Infinity;
    const client = async (c: number) => {
      while (running) {
        const m = all[Math.floor(Math.random() * all.length)];
        const key = `k${Math.floor(Math.random() * KEYS)}`;
        const r = Math.random();
        const kind = r < 0.45 ? "put" : r < 0.8 ? "get" : "remove";
        const op = history.invoke(key, kind, now(), kind === "put" ? `c${c}-${seq++}` : undefined, m.name);
        const out = await call(m, op);
        if (out.ok) {
          history.ok(op, now(), out.value);
          if (m === a && op.invokeAt >= resumedAt) answeredByPausedAfterResume.ok++;
        } else if (out.refused) {
          history.refused(op);
          refusedBy.set(m.name, (refusedBy.get(m.name) ?? 0) + 1);
          if (process.env.QUORUM_DEBUG && m !== a) console.log(`refused by ${m.name} at ${Math.round(op.invokeAt)}`);
        } else history.fail(op);
        await Bun.sleep(Math.random() * 20);
      }
    };
    const clients = Array.from({ length: CLIENTS }, (_, c) => client(c));
    await Bun.sleep(3000);

    a.proc.kill("SIGSTOP");
    await Bun.sleep(PAUSE_MS);
    a.proc.kill("SIGCONT");
    resumedAt = now();
    // How long the resumed master takes to serve again (it re-joins and re-confirms its lease first).
    let servingAgainMs: number | null = null;
    const poll = (async () => {
      while (servingAgainMs === null && now() - resumedAt < 60_000) {
        const v = await a.json<ClusterJson>("/cluster").catch(() => undefined);
        if (v?.quorum?.serving) servingAgainMs = Math.round(now() - resumedAt);
        if (process.env.QUORUM_DEBUG) {
          const os = await Promise.all(others.map((m) => m.json<ClusterJson>("/cluster").catch(() => undefined)));
          console.log(
            Math.round(now() - resumedAt),
            JSON.stringify({ r: v?.quorum?.refusal?.reason, st: v?.quorum?.stats }),
            `a: v${v?.partitionTableVersion} m=${v?.members.length} master=${v?.master?.slice(0, 4)}`,
            os.map((o) =>
              `v${o?.partitionTableVersion} m=${o?.members.length} master=${o?.master?.slice(0, 4)} ${
                o?.quorum?.refusal?.reason ?? "+"
              }`
            ).join(" | "),
          );
        }
        await Bun.sleep(100);
      }
    })();
    await Bun.sleep(8000);
    running = false;
    await Promise.all([...clients, poll]);

    await until(async () => (await settled(all)) || undefined, 60_000, "one cluster of 4 serving again");
    for (let k = 0; k < KEYS; k++) {
      const op = history.invoke(`k${k}`, "get", now(), undefined, "b");
      const out = await call(others[0], op);
      if (out.ok) history.ok(op, now(), out.value);
      else history.fail(op);
    }
    const ok = history.ops.filter((o) => o.status === "ok").length;
    console.log(
      `${history.ops.length} operations, ${ok} ok, refused with QUORUM by ${
        JSON.stringify(Object.fromEntries(refusedBy))
      }, answered by the resumed master after SIGCONT: ${answeredByPausedAfterResume.ok}, serving again ${
        servingAgainMs ?? "> 60000"
      } ms after SIGCONT`,
    );
    const metrics = await (await a.get("/metrics")).text();
    expect(metrics).toContain("shoal_quorum_serving 1");
    if (process.env.QUORUM_DEBUG) {
      for (const m of all) {
        const lines = m.stderr().split("\n").filter((l) => /quorum|merg|re-join|master|dead|split/.test(l));
        console.log(`--- ${m.name}\n${lines.slice(-40).join("\n")}`);
      }
    }
    expect(checkNoLostWrites(history).problems).toEqual([]);
    expect(checkLinearizable(history).problems).toEqual([]);
    expect(refusedBy.get("a") ?? 0).toBeGreaterThan(0);
  }, 240_000);
});
