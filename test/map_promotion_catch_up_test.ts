/**
 * A member the table names as a replica but whose copy lacks acknowledged writes must never
 * become the partition's truth. Three situations, each in virtual time over a MemoryNetwork
 * with a history checker over every put and get of a lite client:
 *
 * 1. backupCount 2: the first backup's copy is gone (replaced by an empty one nobody knows
 *    of yet) when the primary crashes; the second backup holds the full history. The
 *    promoted first backup must pull the second's copy before it serves.
 * 2. A migration target whose table never listed the migration (the master's pushes to it
 *    were lost) is counted caught up and committed (as primary, for some partitions), then
 *    hears nothing for longer than the migration timeout. It must still hold the data when
 *    it learns of the commit.
 * 3. backupCount 1, the only backup's copy is gone when the primary crashes: nothing can
 *    bring the data back, and the new primary says so (counts and logs the loss).
 */
import { describe, expect, test } from "bun:test";
import type { IMap } from "../src/map/imap.ts";
import { partitionOf } from "../src/partition/partition_of.ts";
import { GridHarness } from "./support/grid_harness.ts";
import { checkLinearizable, checkNoLostWrites, History } from "./support/history_checker.ts";

const P = 8;

/** Puts and gets through `map`, recorded in `history`. */
function recorder(h: GridHarness, map: IMap<string, string>, history: History) {
  let pending = 0;
  return {
    get pending() {
      return pending;
    },
    put(key: string, value: string): void {
      const op = history.invoke(key, "put", h.clock.now(), value, "client");
      pending++;
      map.put(key, value).then((prev) => history.ok(op, h.clock.now(), prev), () => history.fail(op)).finally(() =>
        pending--
      );
    },
    get(key: string): void {
      const op = history.invoke(key, "get", h.clock.now(), undefined, "client");
      pending++;
      map.get(key).then((v) => history.ok(op, h.clock.now(), v), () => history.fail(op)).finally(() => pending--);
    },
  };
}

/** Null when the master's table is full, no migration runs and every member holds it. */
function unsettled(h: GridHarness, replicas: number): string | null {
  const data = h.live().filter((m) => !m.lite);
  const master = data.find((m) => m.grid.partitions.masterActive);
  if (!master) return "no master";
  const t = master.grid.partitions.table;
  if (t.migrations.size > 0) return "migrating";
  if (t.replicas.some((r) => r.length !== replicas)) return "replicas missing";
  if (h.live().some((m) => m.grid.partitions.table.version !== t.version)) return "tables differ";
  if (
    data.some((m) =>
      m.grid.maps.debugReplicas().some((r) => r.primary && (r.catchingUp || r.followers?.some((f) => !f.confirmed)))
    )
  ) return "unconfirmed";
  if (Object.keys(master.grid.partitionSummary().owners).length !== Math.min(P, data.length)) return "unbalanced";
  // Between two planning steps the table can hold no migration and still move on.
  if (!master.grid.partitions.balanced) return "unbalanced";
  return null;
}

function keysOf(p: number, n: number): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < n; i++) if (partitionOf(`k${i}`, P) === p) out.push(`k${i}`);
  return out;
}

/** Reads every key the history holds once all writes ended, then checks the history. */
async function finalCheck(h: GridHarness, rec: ReturnType<typeof recorder>, history: History): Promise<string[]> {
  await h.runUntil(() => rec.pending === 0, 60_000, 10);
  for (const k of history.keys()) rec.get(k);
  await h.runUntil(() => rec.pending === 0, 60_000, 10);
  return [...checkNoLostWrites(history).problems, ...checkLinearizable(history).problems];
}

describe("a new primary catches up before it serves", () => {
  for (const seed of [1, 2]) {
    test(
      `seed ${seed}: the first backup lost its copy, the primary crashes, the second backup's history survives`,
      async () => {
        const h = new GridHarness({ seed, config: { partitionCount: P, backupCount: 2 }, delayMs: 0.5, jitterMs: 0.5 });
        for (const id of ["a", "b", "c", "d"]) await h.add(id);
        const client = await h.add("client", true);
        expect(await h.runUntil(() => unsettled(h, 3) === null, 10_000, 10)).toBe(true);
        const history = new History();
        const rec = recorder(h, client.grid.getMap<string, string>("m"), history);
        const keys = Array.from({ length: 64 }, (_, i) => `k${i}`);
        for (const k of keys) rec.put(k, `${k}-1`);
        await h.runUntil(() => rec.pending === 0, 10_000, 10);
        expect(history.ops.every((o) => o.status === "ok")).toBe(true);

        // A partition whose primary is not the master, and whose keys were written.
        const t = h.members.get("a")!.grid.partitions.table;
        const p = [...Array(P).keys()].find((q) =>
          t.replicas[q][0] !== "a" && keys.some((k) => partitionOf(k, P) === q)
        )!;
        const [x, y, z] = t.replicas[p];
        const before = h.members.get(z)!.grid.maps.debugReplicas().find((r) => r.p === p)!;
        expect(before.entries).toBeGreaterThan(0);

        // Writes continue throughout; the first backup's copy is gone and the primary crashes
        // in the same instant, so nothing tells the primary.
        let round = 2;
        let writing = true;
        void (async () => {
          while (writing) {
            for (const k of keys.slice(0, 16)) rec.put(k, `${k}-${round}`);
            round++;
            await h.run(40);
          }
        })();
        await h.run(100);
        h.members.get(y)!.grid.maps.debugLoseCopy(p);
        h.crash(x, 500);
        expect(await h.runUntil(() => h.members.get(y)!.grid.partitions.table.replicas[p][0] === y, 5_000, 10)).toBe(
          true,
        );
        await h.run(2_000);
        writing = false;
        expect(await h.runUntil(() => unsettled(h, 3) === null, 30_000, 10)).toBe(true);

        const problems = await finalCheck(h, rec, history);
        expect(problems.slice(0, 5)).toEqual([]);
        const ym = h.members.get(y)!.grid.maps.counters;
        expect(ym.catchUpPulls).toBeGreaterThanOrEqual(1);
        expect(ym.dataLoss).toBe(0);
        expect(h.handlerErrors).toEqual([]);
        h.stop();
      },
      30_000,
    );
  }

  test(
    "a committed migration target that never saw the migration in its table and heard nothing past the migration timeout keeps its copy",
    async () => {
      const h = new GridHarness({ seed: 7, config: { partitionCount: P, backupCount: 1, migrationTimeoutMs: 3_000 } });
      for (const id of ["a", "b", "c"]) await h.add(id);
      const client = await h.add("client", true);
      expect(await h.runUntil(() => unsettled(h, 2) === null, 10_000, 10)).toBe(true);
      const history = new History();
      const rec = recorder(h, client.grid.getMap<string, string>("m"), history);
      for (let p = 0; p < P; p++) for (const k of keysOf(p, 8)) rec.put(k, `${k}-1`);
      await h.runUntil(() => rec.pending === 0, 10_000, 10);
      expect(history.ops.every((o) => o.status === "ok")).toBe(true);

      // d starts and fetches the current table; from then on the master's pushes to d are
      // lost, so when the others learn of d, d's table never lists the migrations to it.
      const d = await h.add("d", false, false);
      h.cluster.publish(["d"]);
      d.grid.partitions.requestTable();
      const master = h.members.get("a")!.grid.partitions;
      expect(await h.runUntil(() => d.grid.partitions.table.version === master.table.version, 1_000, 1)).toBe(true);
      h.net.setLink("a", "d", { blocked: true });
      h.cluster.publish();
      // As soon as b counts d caught up on a partition, b's messages to d are lost too.
      const caughtUp = () =>
        h.members.get("b")!.grid.maps.debugReplicas().some((r) =>
          r.primary && r.entries > 0 &&
          r.followers?.some((f) => f.id === "d" && f.role === "target" && f.confirmed && f.acked >= r.seq)
        );
      expect(await h.runUntil(caughtUp, 10_000, 1)).toBe(true);
      h.net.setLink("b", "d", { blocked: true });
      // The master commits d while d's table still shows the old rows; d then hears nothing
      // about those copies for longer than the migration timeout.
      const committed = () =>
        [...Array(P).keys()].filter((q) =>
          master.table.replicas[q].includes("d") && !d.grid.partitions.table.replicas[q].includes("d")
        );
      expect(await h.runUntil(() => committed().length > 0, 5_000, 10)).toBe(true);
      const named = committed();
      await h.run(3_000 + 3_000);

      // d's links come back: it learns that it holds those partitions (as primary of some).
      h.net.setLink("a", "d", { blocked: false });
      h.net.setLink("b", "d", { blocked: false });
      expect(await h.runUntil(() => unsettled(h, 2) === null, 30_000, 10)).toBe(true);
      expect(named.every((q) => master.table.replicas[q].includes("d"))).toBe(true);
      expect(named.some((q) => master.table.replicas[q][0] === "d")).toBe(true);

      const problems = await finalCheck(h, rec, history);
      expect(problems.slice(0, 5)).toEqual([]);
      expect(h.live().reduce((n, m) => n + m.grid.maps.counters.dataLoss, 0)).toBe(0);
      expect(h.handlerErrors).toEqual([]);
      h.stop();
    },
    30_000,
  );

  test("when no replica holds the history the new primary counts the partition's data as lost", async () => {
    const h = new GridHarness({ seed: 3, config: { partitionCount: P, backupCount: 1 } });
    for (const id of ["a", "b", "c"]) await h.add(id);
    const client = await h.add("client", true);
    expect(await h.runUntil(() => unsettled(h, 2) === null, 10_000, 10)).toBe(true);
    const map = client.grid.getMap<string, string>("m");
    const t = h.members.get("a")!.grid.partitions.table;
    const p = [...Array(P).keys()].find((q) => t.replicas[q][0] !== "a")!;
    const [x, y] = t.replicas[p];
    const keys = keysOf(p, 10);
    await h.until(map.putAll(keys.map((k) => [k, "v"])));

    h.members.get(y)!.grid.maps.debugLoseCopy(p);
    h.crash(x, 500);
    expect(await h.runUntil(() => h.members.get("a")!.grid.partitions.table.replicas[p][0] === y, 5_000, 10)).toBe(
      true,
    );
    expect(await h.runUntil(() => unsettled(h, 2) === null, 30_000, 10)).toBe(true);
    expect(h.members.get(y)!.grid.maps.counters.dataLoss).toBe(1);
    expect(h.live().reduce((n, m) => n + m.grid.maps.counters.dataLoss, 0)).toBe(1);
    // GET /cluster and /metrics read it from the partition summary.
    expect(h.members.get(y)!.grid.partitionSummary().dataLoss).toBe(1);
    // The loss is reported, not hidden: the keys are gone, and writes work again.
    const got = await h.until(map.getAll(keys));
    expect(got.size).toBe(0);
    await h.until(map.set(keys[0], "w"));
    expect(await h.until(map.get(keys[0]))).toBe("w");
    h.stop();
  }, 30_000);

  test("when every replica of a partition dies at once the master counts it as lost", async () => {
    const h = new GridHarness({ seed: 4, config: { partitionCount: P, backupCount: 1 } });
    for (const id of ["a", "b", "c", "d"]) await h.add(id);
    expect(await h.runUntil(() => unsettled(h, 2) === null, 10_000, 10)).toBe(true);
    const t = h.members.get("a")!.grid.partitions.table;
    // Two members other than the master that share at least one partition's whole row.
    const pairs = [["b", "c"], ["b", "d"], ["c", "d"]];
    const [x, y] = pairs.find(([u, v]) => t.replicas.some((row) => row.includes(u) && row.includes(v)))!;
    const doomed = t.replicas.filter((row) => row.includes(x) && row.includes(y)).length;
    expect(h.members.get("a")!.grid.partitionSummary().lost).toBe(0);
    h.crash(x, 500);
    h.crash(y, 500);
    expect(await h.runUntil(() => unsettled(h, 2) === null, 30_000, 10)).toBe(true);
    expect(h.members.get("a")!.grid.partitionSummary().lost).toBe(doomed);
    h.stop();
  }, 30_000);
});
