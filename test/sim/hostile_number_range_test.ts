/**
 * A member holding the secret (a lite member that joined honestly) sends numbers that each pass
 * the wire's bounds and each plausibility check on its own, but that an honest member adds to
 * or adopts, step by step, until the numbers it must send itself leave the range the wire or
 * its own formulas carry. The honest cluster must stay able to reign, fail over and fence.
 */
import { describe, expect } from "bun:test";
import { reignTerm, tableToWire, termRound } from "../../src/partition/partition_table.ts";
import { MergePolicyCode } from "../../src/map/merge_policy.ts";
import { OpCode } from "../../src/map/operations.ts";
import { MAX_MERGE_STAMP_LEAD_MS } from "../../src/map/merged_records.ts";
import { partitionOf, partitionOfBytes } from "../../src/partition/partition_of.ts";
import { LOCK_HIGH_WATER, lockMapOf } from "../../src/map/locks.ts";
import { queueMapOf } from "../../src/map/queue_ops.ts";
import { topicMapOf } from "../../src/map/topic_ops.ts";
import { RING_META } from "../../src/map/internal_records.ts";
import { encodeValue } from "../../src/wire/codec.ts";
import { MAX_ROUND_DRIFT } from "../../src/partition/table_collect.ts";
import { deriveKey, sign } from "../../src/wire/envelope.ts";
import { Kind } from "../../src/wire/kinds.ts";
import type { MemberInfo } from "../../src/cluster/view.ts";
import type { MergeRequest } from "../../src/cluster/messages.ts";
import { seededTest } from "../support/seeded.ts";
import { fullReplicas, settle } from "./imap_sim.ts";
import { gridWithLiar as hostileGrid } from "./hostile_grid.ts";

const FILE = "test/sim/hostile_number_range_test.ts";
const seeded = seededTest(FILE);

/** The hostile-member grid (hostile_grid.ts), its three honest members named. */
async function gridWithLiar(seed: number) {
  const g = await hostileGrid(seed);
  const [a, b, c] = g.honest;
  return { ...g, a, b, c };
}

describe("numbers a hostile member walks up, one plausible step at a time", () => {
  seeded("table reports each a little ahead do not use up the master's term rounds", 1, async (seed) => {
    const { sim, problems, a, b, c, evil, wire } = await gridWithLiar(seed);
    // Each report lies just within the lead a single report may have (MAX_ROUND_LEAD rounds
    // ahead of the master's table), short of the last rounds tableFromWire refuses: about 520
    // of them walked the master to the end of the 2^19 rounds a term holds, and the next
    // master's table (one round more) was refused by every member.
    for (let i = 0; i < 600; i++) {
      const t = a.grid.partitions.table;
      const round = Math.min(termRound(t.term) + 1000, 2 ** 19 - 3);
      wire.send(a.id, {
        t: Kind.PartitionTableReport,
        ...tableToWire({ ...t, version: t.version + 1, term: reignTerm(round, 3) }),
      });
      await sim.run(20);
    }
    await sim.run(2000);
    expect(a.grid.partitions.stats.reportsRejected).toBeGreaterThan(0);
    const round = termRound(a.grid.partitions.table.term);
    expect(problems).toEqual([]);
    // The next master can still take over.
    sim.crash(a.id);
    await sim.until(() => fullReplicas([b, c, evil]), 120_000, 50, () => "b and c did not take over");
    expect(problems).toEqual([]);
    expect(round).toBeLessThanOrEqual(a.m.masterEpoch + MAX_ROUND_DRIFT + 1);
  }, 120_000);

  seeded(
    "a merge chunk stamped at the end of time leaves the partition's clock and TTLs running",
    1,
    async (seed) => {
      const { sim, problems, a, evil, wire } = await gridWithLiar(seed);
      const P = a.grid.partitions.config.partitionCount;
      const p = partitionOfBytes(encodeValue("victim"), P);
      const inP = (name: string) => (i: number) => partitionOfBytes(encodeValue(`${name}${i}`), P) === p;
      let other = 0, control = 0;
      while (!inP("other")(other)) other++;
      while (inP("control")(control)) control++;
      // One MergeEntries (any member may send one: a split-brain merge is routed like any write)
      // whose entry is stamped 2^53 - 1, which the wire allows. The partition's clock (hlc.ts)
      // then stayed there: a logical step above 2^53 - 1 rounds back to it.
      const t = a.grid.partitions.table;
      wire.send(t.replicas[p][0], {
        t: Kind.InvokeRequest,
        c: `${evil.id}/x/1`,
        a: 1,
        p,
        e: t.epochs[p],
        op: OpCode.MergeEntries,
        b: {
          m: "",
          pol: MergePolicyCode.passThrough,
          es: [["m", encodeValue(`other${other}`), encodeValue("x"), Number.MAX_SAFE_INTEGER]],
        },
      });
      await sim.run(500);
      // A write with a TTL to that partition, and one to another partition, both expire.
      const m = a.grid.getMap<string, string>("m");
      await settle(sim, m.put("victim", "v", { ttlMs: 1000 }));
      await settle(sim, m.put(`control${control}`, "v", { ttlMs: 1000 }));
      await sim.run(5000);
      expect(await settle(sim, m.get(`control${control}`))).toBeUndefined();
      // The merged stamp counts as at most MAX_MERGE_STAMP_LEAD_MS ahead: the victim's TTL runs from there.
      await sim.run(MAX_MERGE_STAMP_LEAD_MS);
      expect(await settle(sim, m.get("victim"))).toBeUndefined();
      expect(problems).toEqual([]);
    },
    120_000,
  );

  seeded("a merge request naming a member at incarnation 2^53 - 1 leaves every member list valid", 1, async (seed) => {
    const { sim, problems, a, b, c, evil } = await gridWithLiar(seed);
    // An outsider holding the secret, linked to the master but no member, asks to merge its
    // one-member "cluster" in, naming itself at the last incarnation the wire carries. The
    // master admitted it one above (to outrank stale dead notices): 2^53, which no list passes.
    const outsider = sim.net.attach("outsider");
    outsider.setHandlers({ message() {}, linkUp() {}, linkDown() {} });
    void outsider.connect(a.id);
    await sim.run(50);
    const me: MemberInfo = {
      ...a.m.member(evil.id)!,
      id: "outsider",
      name: "outsider",
      joinedAt: 1,
      incarnation: Number.MAX_SAFE_INTEGER,
    };
    const invalid = () => [b, c, evil].reduce((n, x) => n + sim.net.node(x.id)!.stats().droppedInvalid, 0);
    const invalidBefore = invalid();
    outsider.send(a.id, mergeRequest("outsider", a.m.masterEpoch, [me]));
    await sim.run(5000);
    expect(problems).toEqual([]);
    // No member dropped a list (or a notice) of the master's as invalid: the request was refused.
    expect(invalid() - invalidBefore).toBe(0);
    expect(a.m.stats.rejected.far_future).toBeGreaterThanOrEqual(1);
    for (const n of [a, b, c]) {
      const inc = n.m.memberState("outsider")?.incarnation ?? 0;
      expect([n.id, Number.isSafeInteger(inc)]).toEqual([n.id, true]);
    }
    // Every member still agrees on the list (none was dropped as invalid).
    await sim.until(
      () => [b, c, evil].every((n) => n.m.memberListVersion === a.m.memberListVersion),
      30_000,
      50,
      () => `lists: ${[a, b, c, evil].map((n) => `${n.id}@${n.m.memberListVersion}`).join(" ")}`,
    );
  }, 120_000);
});

/** A merged entry: [map, key, value (null: removed), stamp]. */
type Merged = [string, Uint8Array, Uint8Array | null, number];

/** The liar's MergeEntries of `es` to partition `p`'s primary (a split-brain merge is routed like any write). */
function sendMerge(grid: Awaited<ReturnType<typeof gridWithLiar>>, p: number, es: Merged[], n: number): void {
  const t = grid.a.grid.partitions.table;
  grid.wire.send(t.replicas[p][0], {
    t: Kind.InvokeRequest,
    c: `${grid.evil.id}/merge/${n}`,
    a: 1,
    p,
    e: t.epochs[p],
    op: OpCode.MergeEntries,
    b: { m: "", pol: MergePolicyCode.passThrough, es },
  });
}

const END = Number.MAX_SAFE_INTEGER;

/** Merged records of locks, queues and topics the members refused. */
const refusedMerges = (grid: Awaited<ReturnType<typeof gridWithLiar>>) =>
  [grid.a, grid.b, grid.c].reduce((n, x) => n + x.grid.maps.counters.mergedImplausible, 0);

describe("counters a merged lock, queue or topic record sets near 2^53", () => {
  seeded("a merged lock high-water mark or lock record at 2^53 - 1 leaves fencing tokens rising", 1, async (seed) => {
    const grid = await gridWithLiar(seed);
    const { sim, problems, a } = grid;
    const P = a.grid.partitions.config.partitionCount;
    const key = (name: string) => encodeValue(name);
    const p = partitionOfBytes(key("victim"), P);
    let other = 0;
    while (partitionOfBytes(key(`other${other}`), P) !== p) other++;
    const now = sim.clock.now();
    // The high-water mark a key without a record starts from, and one key's own record.
    sendMerge(grid, p, [[lockMapOf("m"), LOCK_HIGH_WATER, encodeValue(END), now]], 1);
    sendMerge(grid, p, [[lockMapOf("m"), key(`other${other}`), encodeValue({ t: END, o: null, x: 0, w: [] }), now]], 2);
    await sim.run(500);
    const m = a.grid.getMap<string, string>("m");
    for (const k of ["victim", `other${other}`]) {
      const tokens: number[] = [];
      for (let i = 0; i < 3; i++) {
        tokens.push(await settle(sim, m.lock(k)));
        await settle(sim, m.unlock(k));
      }
      // Each holder's token is above the last one's, and one a client can compare exactly.
      expect([k, tokens.every(Number.isSafeInteger), tokens[0] < tokens[1] && tokens[1] < tokens[2]]).toEqual([
        k,
        true,
        true,
      ]);
    }
    expect(refusedMerges(grid)).toBe(2);
    expect(problems).toEqual([]);
  }, 120_000);

  seeded("a merged queue or topic meta record at 2^53 - 1 loses no item", 1, async (seed) => {
    const grid = await gridWithLiar(seed);
    const { sim, problems, a } = grid;
    const P = a.grid.partitions.config.partitionCount;
    const now = sim.clock.now();
    sendMerge(
      grid,
      partitionOf("q", P),
      [[queueMapOf("q"), RING_META, encodeValue({ h: END, t: END, c: 10 }), now]],
      1,
    );
    sendMerge(
      grid,
      partitionOf("t", P),
      [[topicMapOf("t"), RING_META, encodeValue({ h: END, t: END, c: 10 }), now]],
      2,
    );
    await sim.run(500);
    const q = a.grid.getQueue<string>("q");
    for (const x of ["a", "b", "c"]) expect(await settle(sim, q.offer(x))).toBe(true);
    const polled: Array<string | undefined> = [];
    for (let i = 0; i < 3; i++) polled.push(await settle(sim, q.poll()));
    expect(polled).toEqual(["a", "b", "c"]);
    const topic = a.grid.getTopic<string>("t");
    const seqs: number[] = [];
    for (const x of ["a", "b", "c"]) seqs.push(await settle(sim, topic.publish(x)));
    expect([seqs.every(Number.isSafeInteger), seqs[0] < seqs[1] && seqs[1] < seqs[2]]).toEqual([true, true]);
    expect(refusedMerges(grid)).toBe(2);
    expect(problems).toEqual([]);
  }, 120_000);

  seeded("a lock lease or a merged TTL beyond the longest one the API takes is refused", 1, async (seed) => {
    const grid = await gridWithLiar(seed);
    const { sim, problems, a, evil, wire } = grid;
    const P = a.grid.partitions.config.partitionCount;
    const t = a.grid.partitions.table;
    const key = encodeValue("leased");
    const p = partitionOfBytes(key, P);
    // A lease of 2^53 - 1 ms: the API and REST take at most MAX_EXPIRY_MS (about 68 years).
    wire.send(t.replicas[p][0], {
      t: Kind.InvokeRequest,
      c: `${evil.id}/lock/1`,
      a: 1,
      p,
      e: t.epochs[p],
      op: OpCode.LockAcquire,
      b: { m: "m", k: key, h: "", l: END, q: false },
    });
    const now = sim.clock.now();
    sendMerge(grid, p, [["m", key, encodeValue("x"), now, END, 0, now] as unknown as Merged], 1);
    await sim.run(500);
    const m = a.grid.getMap<string, string>("m");
    expect(await settle(sim, m.isLocked("leased"))).toBe(false);
    expect(await settle(sim, m.get("leased"))).toBeUndefined();
    expect(problems).toEqual([]);
  }, 120_000);

  seeded("a map write naming a lock or queue map is refused, so it cannot set their counters", 1, async (seed) => {
    const grid = await gridWithLiar(seed);
    const { sim, problems, a, evil, wire } = grid;
    const P = a.grid.partitions.config.partitionCount;
    const t = a.grid.partitions.table;
    // The same records as a merge could bring, by a plain Put to the grid's own maps (whose names
    // no map proxy takes, but the op's schema did).
    const put = (p: number, m: string, k: Uint8Array, v: unknown, n: number) =>
      wire.send(t.replicas[p][0], {
        t: Kind.InvokeRequest,
        c: `${evil.id}/put/${n}`,
        a: 1,
        p,
        e: t.epochs[p],
        op: OpCode.Put,
        b: { m, k, v: encodeValue(v) },
      });
    const pk = partitionOfBytes(encodeValue("victim"), P);
    put(pk, lockMapOf("m"), LOCK_HIGH_WATER, END, 1);
    put(partitionOf("q", P), queueMapOf("q"), RING_META, { h: END, t: END, c: 10 }, 2);
    await sim.run(500);
    const m = a.grid.getMap<string, string>("m");
    const tokens: number[] = [];
    for (let i = 0; i < 2; i++) {
      tokens.push(await settle(sim, m.lock("victim")));
      await settle(sim, m.unlock("victim"));
    }
    expect(tokens[1]).toBeGreaterThan(tokens[0]);
    const q = a.grid.getQueue<string>("q");
    for (const x of ["a", "b"]) expect(await settle(sim, q.offer(x))).toBe(true);
    expect([await settle(sim, q.poll()), await settle(sim, q.poll())]).toEqual(["a", "b"]);
    expect(problems).toEqual([]);
  }, 120_000);
});

/** A merge request from `master` of cluster "sim" (secret "sim-secret"), signed as a member holding the secret would. */
function mergeRequest(master: string, epoch: number, members: MemberInfo[]): MergeRequest {
  const body = { cluster: "sim", master, version: 5, epoch, members, ts: 0, nonce: `${master}-merge-nonce-0001` };
  const fields = ["merge", body.cluster, master, body.version, epoch, body.ts, body.nonce, members.map((m) => m.id)];
  return { t: Kind.ClusterMergeRequest, ...body, proof: sign(deriveKey("sim", "sim-secret", "join"), fields) };
}
