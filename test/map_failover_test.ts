import { describe, expect, test } from "bun:test";
import { IndeterminateResultError } from "../src/core/errors.ts";
import { partitionOf } from "../src/partition/partition_of.ts";
import { Kind } from "../src/wire/kinds.ts";
import type { Message } from "../src/wire/message.ts";
import { encodeValue } from "../src/wire/codec.ts";
import { bystanderOf, GridHarness, type GridHarness as H } from "./support/grid_harness.ts";

const P = 13;

/** Every partition's replicas agree with the primary (same seq and digest) and the table is full. */
function replicasAgree(h: H): boolean {
  const members = h.live();
  const t = members[0].grid.partitions.table;
  const data = members.filter((m) => !m.lite).length;
  const wanted = Math.min(1 + h.config.backupCount, data);
  for (let p = 0; p < P; p++) {
    const row = t.replicas[p];
    if (row.length !== wanted) return false;
    const reps = row.map((id) => h.members.get(id)?.grid.maps.debugReplicas().find((r) => r.p === p));
    if (reps.some((r) => !r)) return false;
    if (
      reps.some((r) =>
        r!.seq !== reps[0]!.seq || r!.digest[0] !== reps[0]!.digest[0] || r!.digest[1] !== reps[0]!.digest[1]
      )
    ) return false;
  }
  return members.every((m) => m.grid.partitions.table.version === t.version);
}

async function cluster(n: number, opts: ConstructorParameters<typeof GridHarness>[0] = {}) {
  const h = new GridHarness({ ...opts, config: { partitionCount: P, ...opts.config } });
  for (let i = 0; i < n; i++) await h.add(`n${i}`);
  await h.run(3000);
  return h;
}

describe("failover", () => {
  test("after the primary crashes, every acknowledged write survives and replicas return to full count", async () => {
    const h = await cluster(3);
    const n0 = h.members.get("n0")!;
    const m = n0.grid.getMap<string, number>("m");
    for (let i = 0; i < 60; i++) await h.until(m.set(`k${i}`, i));
    h.crash("n0", 1500); // the master and a primary
    await h.run(10_000);
    const n1 = h.members.get("n1")!;
    expect(n1.grid.partitionSummary().replicasMissing).toBe(0);
    expect(Object.keys(n1.grid.partitionSummary().owners).sort()).toEqual(["n1", "n2"]);
    const m1 = n1.grid.getMap<string, number>("m");
    for (let i = 0; i < 60; i++) expect(await h.until(m1.get(`k${i}`))).toBe(i);
    expect(replicasAgree(h)).toBe(true);
    h.stop();
  });

  test("an operation carrying an older ownership epoch is rejected (fencing)", async () => {
    const h = await cluster(3);
    const p = partitionOf("fenced", P);
    const t0 = h.members.get("n2")!.grid.partitions.table;
    const oldPrimary = t0.replicas[p][0];
    const oldEpoch = t0.epochs[p];
    h.crash(oldPrimary, 1000);
    await h.run(6000);
    const survivor = h.live()[0];
    const t1 = survivor.grid.partitions.table;
    expect(t1.epochs[p]).toBeGreaterThan(oldEpoch);
    // A raw request with the old epoch, sent to the new primary.
    const client = h.live().find((x) => x.id !== t1.replicas[p][0])!;
    const replies: Message[] = [];
    client.router.dispatch = ((orig) => (from: string, msg: Message) => {
      if (msg.t === Kind.InvokeResponse && (msg.c as string).startsWith("raw")) replies.push(msg);
      else orig(from, msg);
    })(client.router.dispatch.bind(client.router));
    client.transport.send(t1.replicas[p][0], {
      t: Kind.InvokeRequest,
      c: "raw1",
      a: 1,
      p,
      e: oldEpoch,
      op: 3,
      b: { m: "m", k: encodeValue("fenced"), v: encodeValue(1) },
    });
    await h.run(100);
    expect(replies.map((r) => r.s)).toEqual(["STALE_EPOCH"]);
    expect(await h.until(client.grid.getMap("m").get("fenced"))).toBeUndefined();
    h.stop();
  });

  test("a primary cut off from the master cannot get a write acknowledged: its backups fence it", async () => {
    const h = await cluster(3, { config: { invoke: { attemptTimeoutMs: 300, callTimeoutMs: 3000 } } });
    // pick a key whose primary is not the master n0
    let key = "";
    for (let i = 0;; i++) {
      const p = partitionOf(`c${i}`, P);
      if (h.members.get("n0")!.grid.partitions.table.replicas[p][0] !== "n0") {
        key = `c${i}`;
        break;
      }
    }
    const p = partitionOf(key, P);
    const cut = h.members.get("n0")!.grid.partitions.table.replicas[p][0];
    // The master and the rest consider `cut` dead; `cut` keeps its old view and table.
    h.net.setLink("n0", cut, { blocked: true });
    h.net.setLink(cut, "n0", { blocked: true });
    h.cluster.remove(cut);
    h.cluster.publish(h.live().map((m) => m.id).filter((id) => id !== cut));
    await h.run(3000);
    const master = h.members.get("n0")!;
    expect(master.grid.partitions.table.replicas[p][0]).not.toBe(cut);
    // The cut-off member still routes to itself and applies locally, but cannot get acks.
    const stale = h.members.get(cut)!.grid.getMap("m").set(key, "from-the-cut-off-primary");
    const err = await h.until(stale.then(() => null, (e) => e));
    expect(err).toBeInstanceOf(IndeterminateResultError);
    expect(await h.until(master.grid.getMap("m").get(key))).toBeUndefined();
    let rejected = 0;
    for (const m of h.live()) if (m.id !== cut) rejected += m.grid.maps.counters.staleEpochRejected;
    expect(rejected).toBeGreaterThan(0);
    h.stop();
  });
});

describe("call ids", () => {
  test("a write retried after its primary died is applied once (the dedupe record travelled with the backup)", async () => {
    const h = await cluster(3);
    const key = "counter";
    const p = partitionOf(key, P);
    const t = h.members.get("n0")!.grid.partitions.table;
    const [primary, backup] = t.replicas[p];
    // The client is the third member: blocking the backup's link to it must not also cut
    // the primary off from the backup.
    const client = bystanderOf(h, key);
    const map = client.grid.getMap<string, string>("m");
    await h.until(map.set(key, "v1"));
    // The answer to the client is lost (the backup answers a write); then the primary dies.
    h.net.setLink(backup, client.id, { blocked: true });
    const put = map.put(key, "v2");
    await h.run(50);
    const before = h.members.get(backup)!.grid.maps.counters.dedupeHits;
    h.crash(primary, 1000);
    h.net.setLink(backup, client.id, { blocked: false });
    const prev = await h.until(put);
    // Applied once: the caller sees the value before its own write, not its own write.
    expect(prev).toBe("v1");
    expect(await h.until(map.get(key))).toBe("v2");
    expect(h.members.get(backup)!.grid.maps.counters.dedupeHits).toBeGreaterThan(before);
    h.stop();
  });
});

describe("migration", () => {
  test("a joining member takes its share while writes continue; none is lost and replicas never drop below two", async () => {
    const h = await cluster(2, { loss: 0.02 });
    const writer = h.members.get("n0")!.grid.getMap<string, number>("m");
    const acked = new Map<string, number>();
    let stop = false;
    let i = 0;
    const loop = (async () => {
      while (!stop) {
        const k = `k${i % 80}`;
        const v = i++;
        try {
          await writer.set(k, v);
          acked.set(k, v);
        } catch {
          // indeterminate writes are not counted as acked
        }
      }
    })();
    await h.run(1000);
    await h.add("n2");
    let minReplicas = Infinity;
    for (let step = 0; step < 800; step++) {
      await h.run(10);
      for (let p = 0; p < P; p++) {
        const holders = h.live().filter((m) => m.grid.maps.debugReplicas().some((r) => r.p === p)).length;
        minReplicas = Math.min(minReplicas, holders);
      }
    }
    stop = true;
    await h.until(loop);
    await h.run(3000);
    expect(minReplicas).toBeGreaterThanOrEqual(2);
    const s = h.members.get("n0")!.grid.partitionSummary();
    expect(s.owners.n2).toBeGreaterThanOrEqual(Math.floor(P / 3));
    expect(s.migrating).toBe(0);
    expect(h.members.get("n0")!.grid.partitions.stats.migrationsCommitted).toBeGreaterThan(0);
    const reader = h.members.get("n2")!.grid.getMap<string, number>("m");
    for (const [k, v] of acked) expect(await h.until(reader.get(k))).toBe(v);
    expect(replicasAgree(h)).toBe(true);
    // Writes kept going through the join. A write to a partition whose new backup is still
    // filling waits until it is in sync (invariant 10), so fewer complete than before that
    // rule (162–393 over nine seeds, against 222–410 without the wait); a stalled writer
    // would manage a handful.
    expect(i).toBeGreaterThan(100);
    h.stop();
  });

  test("graceful shutdown moves a member's partitions away before it leaves", async () => {
    const h = await cluster(3);
    const m = h.members.get("n0")!.grid.getMap<string, number>("m");
    for (let i = 0; i < 40; i++) await h.until(m.set(`k${i}`, i));
    const leaving = h.members.get("n1")!;
    await h.until(leaving.grid.migrateAway());
    expect(h.members.get("n0")!.grid.partitions.table.replicas.every((r) => !r.includes("n1"))).toBe(true);
    expect(h.members.get("n0")!.grid.partitionSummary().replicasMissing).toBe(0);
    // now it can go at once: nothing is lost even though it never comes back
    h.crash("n1", 10);
    await h.run(3000);
    for (let i = 0; i < 40; i++) expect(await h.until(m.get(`k${i}`))).toBe(i);
    h.stop();
  });
});
