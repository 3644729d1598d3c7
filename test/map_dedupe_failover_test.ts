import { describe, expect, test } from "bun:test";
import { IndeterminateResultError } from "../src/core/errors.ts";
import { callId } from "../src/invoke/call_id.ts";
import type { IMap } from "../src/map/imap.ts";
import { MergePolicyCode } from "../src/map/merge_policy.ts";
import { OpCode } from "../src/map/operations.ts";
import { partitionOf } from "../src/partition/partition_of.ts";
import { encodeValue } from "../src/wire/codec.ts";
import { Kind } from "../src/wire/kinds.ts";
import type { Message } from "../src/wire/message.ts";
import { GridHarness } from "./support/grid_harness.ts";

const P = 13;

/** Four data members and a lite client `L`; every partition has its backup in sync. */
async function cluster(seed: number): Promise<GridHarness> {
  const h = new GridHarness({
    seed,
    config: { partitionCount: P, invoke: { attemptTimeoutMs: 300, callTimeoutMs: 30_000 } },
  });
  for (let i = 0; i < 4; i++) await h.add(`n${i}`);
  await h.add("L", true);
  await h.run(3000);
  return h;
}

/** Drops every snapshot message member `id` receives while `on()` holds: a fill that cannot finish. */
function dropSnapshots(h: GridHarness, id: string, on: () => boolean): void {
  const router = h.members.get(id)!.router;
  const orig = router.dispatch.bind(router);
  router.dispatch = (from: string, msg: Message) => {
    if (on() && (msg.t === Kind.MapSnapshotChunk || msg.t === Kind.MapSnapshotPacked)) return;
    orig(from, msg);
  };
}

/**
 * The write of `key` (by default `set(key, "v1")`) reaches its primary `a` and backup `b`, and
 * both answers are lost; `a` crashes and `b`, now primary, gets a new backup whose fill cannot
 * finish while `blockFill`. Returns after the new table and the retries at `b` (3 s).
 */
async function retryAfterFailover(
  seed: number,
  key: string,
  write: (m: IMap<string, unknown>) => Promise<unknown> = (m) => m.set(key, "v1"),
  written = encodeValue("v1"),
) {
  const h = await cluster(seed);
  const p = partitionOf(key, P);
  const [a, b] = h.members.get("L")!.grid.partitions.table.replicas[p];
  const others = ["n0", "n1", "n2", "n3"].filter((id) => id !== a && id !== b);
  const state = { blockFill: true, acked: false };
  for (const id of others) dropSnapshots(h, id, () => state.blockFill);
  // Both answers lost: the primary's and the backup's (direct backup acks).
  h.net.setLink(a, "L", { blocked: true });
  h.net.setLink(b, "L", { blocked: true });
  const put = write(h.members.get("L")!.grid.getMap<string, unknown>("m")).then(() => void (state.acked = true));
  put.catch(() => {});
  await h.run(100);
  expect(h.members.get(b)!.grid.maps.debugLocalValue(p, "m", encodeValue(key))).toEqual(written);
  h.crash(a, 1000);
  h.net.setLink(b, "L", { blocked: false });
  // Detection, the new table (b primary, a new backup being filled), the retries at b.
  await h.run(3000);
  const row = h.members.get(b)!.grid.partitions.table.replicas[p];
  expect(row[0]).toBe(b);
  expect(row.length).toBe(2);
  expect(others).toContain(row[1]);
  return { h, p, b, filling: row[1], state, put };
}

/**
 * The second crash of the append scenarios: another member appends "y" to `key` (streamed to
 * the backup `b`'s table names as filling, so that copy's list holds both appends but only the
 * second one's record), then `b`, the only full copy, crashes and the fill may complete.
 * @returns the filling copy (the next primary) and the map as the other member sees it
 */
async function appendThenCrash(h: GridHarness, key: string, b: string, state: { blockFill: boolean }) {
  const p = partitionOf(key, P);
  const filling = h.members.get(b)!.grid.partitions.table.replicas[p][1];
  const other = h.live().find((m) => m.id !== b && m.id !== filling && m.id !== "L")!;
  const list = other.grid.getMap<string, string[]>("m");
  expect(await h.until(list.executeOnKey(key, "append", "y"))).toBe(2);
  h.crash(b, 1000);
  state.blockFill = false;
  return { filling, other, list };
}

describe("a write answered from its dedupe record after a failover", () => {
  // The primary crashed after the write reached its backup, and both answers were lost. The
  // backup, now primary, holds the write's dedupe record, and the new backup the master
  // appoints is still being filled (its snapshot does not arrive). Answering the retry then
  // acknowledges a write held by one copy (invariant 10): once that copy crashes too, the
  // acknowledged write is gone. The retry must wait until the new backup holds it.
  for (const seed of [1, 2, 3]) {
    test(`seed ${seed}: the retry is answered only once the new backup holds the write`, async () => {
      const key = "the-key";
      const { h, p, b, filling, state, put } = await retryAfterFailover(seed, key);
      // The new backup lacks the write (it came before its stream), so the retry waits.
      expect(h.members.get(filling)!.grid.maps.debugLocalValue(p, "m", encodeValue(key))).toBeUndefined();
      expect(state.acked).toBe(false);
      // Now the only copy crashes too; the fill can complete from here on.
      h.crash(b, 1000);
      state.blockFill = false;
      // Never acknowledged on one copy. The new primary lost the history the write was in (counted
      // as data loss), so it answers the retry INDETERMINATE rather than apply it again.
      expect(await h.until(put.then(() => null, (e) => e))).toBeInstanceOf(IndeterminateResultError);
      expect(state.acked).toBe(false);
      const counters = h.members.get(filling)!.grid.maps.counters;
      expect(counters.dataLoss).toBe(1);
      expect(counters.retriesInDoubt).toBeGreaterThan(0);
      // A new call is served.
      const map = h.members.get("L")!.grid.getMap<string, string>("m");
      await h.until(map.set(key, "v2"));
      expect(await h.until(map.get(key))).toBe("v2");
      h.stop();
    });
  }

  // As above with a write that must not run twice: an append whose first run reached the new
  // backup inside a later write's value (the list), though not its dedupe record. Run again by
  // the new primary, it would be in the list twice.
  test("a retried append is not applied again by a primary that lost the history of its first run", async () => {
    const key = "the-list";
    const { h, p, b, filling, state, put } = await retryAfterFailover(
      5,
      key,
      (m) => m.executeOnKey(key, "append", "x"),
      encodeValue(["x"]),
    );
    expect(state.acked).toBe(false);
    // Another caller appends: streamed to the new backup, whose copy of the list now holds both.
    const { list } = await appendThenCrash(h, key, b, state);
    expect(h.members.get(filling)!.grid.maps.debugLocalValue(p, "m", encodeValue(key))).toBeUndefined(); // held aside
    expect(await h.until(put.then(() => null, (e) => e))).toBeInstanceOf(IndeterminateResultError);
    expect(await h.until(list.get(key))).toEqual(["x", "y"]);
    expect(h.members.get(filling)!.grid.maps.counters.retriesInDoubt).toBeGreaterThan(0);
    h.stop();
  });

  test("after the loss: a retry that may have run is refused, one that cannot have run and a merge chunk are applied", async () => {
    const key = "the-key";
    const { h, p, b, filling, state, put } = await retryAfterFailover(6, key);
    h.crash(b, 1000);
    state.blockFill = false;
    expect(await h.until(put.then(() => null, (e) => e))).toBeInstanceOf(IndeterminateResultError);
    // Sent by hand from L, second attempts all: answers of refusals are recorded here (an applied
    // write is answered by the backup, InvokeBackupAnswer).
    const L = h.members.get("L")!;
    const answers = new Map<string, string>();
    const [setId, unrunId, mergeId] = [900001, 900002, 900003].map((n) => callId(L.grid.invoker.client, n));
    const orig = L.router.dispatch.bind(L.router);
    L.router.dispatch = (from: string, msg: Message) => {
      if (msg.t === Kind.InvokeResponse && [setId, unrunId, mergeId].includes(msg.c as string)) {
        answers.set(msg.c as string, String(msg.s));
      } else orig(from, msg);
    };
    const e = h.members.get(filling)!.grid.partitions.epochOf(p);
    const request = (c: string, op: number, b: unknown, g?: number) =>
      L.transport.send(filling, { t: Kind.InvokeRequest, c, a: 2, p, e, op, b, ...(g === undefined ? {} : { g }) });
    const [k1, k2] = [encodeValue("k1"), encodeValue("k2")], v = encodeValue("v");
    // May have run (`g`: began a minute ago, before the history was lost): refused.
    request(setId, OpCode.Set, { m: "m", k: k1, v }, 60_000);
    // Its earlier attempts were refused unrun (no `g`): applied.
    request(unrunId, OpCode.Set, { m: "m", k: k2, v });
    // A split-brain merge chunk under latestUpdate: applied (running it twice changes nothing).
    request(mergeId, OpCode.MergeEntries, { m: "", pol: MergePolicyCode.latestUpdate, es: [["m", k1, v, 1]] }, 60_000);
    await h.run(500);
    expect(answers.get(setId)).toBe("INDETERMINATE");
    expect(answers.has(unrunId)).toBe(false);
    expect(answers.has(mergeId)).toBe(false);
    expect(h.members.get(filling)!.grid.maps.debugLocalValue(p, "m", k2)).toEqual(v);
    expect(h.members.get(filling)!.grid.maps.debugLocalValue(p, "m", k1)).toEqual(v); // by the merge
    h.stop();
  });

  // The copy that lost history passes the mark on with its snapshots: once the partition has
  // moved on to another primary, a retry of the append is still refused there.
  test("the next primary of the partition refuses that retry too", async () => {
    const key = "the-list";
    const h = await cluster(5);
    const p = partitionOf(key, P);
    const L = h.members.get("L")!;
    const [a, b] = L.grid.partitions.table.replicas[p];
    const others = ["n0", "n1", "n2", "n3"].filter((id) => id !== a && id !== b);
    const state = { blockFill: true };
    for (const id of others) dropSnapshots(h, id, () => state.blockFill);
    // The append's request, sent again by hand at the end (L itself is cut off meanwhile).
    let request: (Message & { c: string }) | null = null;
    const send = L.transport.send.bind(L.transport);
    L.transport.send = (to: string, msg: Message) => {
      if (msg.t === Kind.InvokeRequest && request === null) request = { ...msg } as Message & { c: string };
      return send(to, msg);
    };
    h.net.setLink(a, "L", { blocked: true });
    h.net.setLink(b, "L", { blocked: true });
    L.grid.getMap<string, unknown>("m").executeOnKey(key, "append", "x").catch(() => {});
    await h.run(100);
    for (const id of ["n0", "n1", "n2", "n3"]) h.net.setLink(id, "L", { blocked: true });
    h.crash(a, 1000);
    await h.run(3000);
    const { filling, other, list } = await appendThenCrash(h, key, b, state);
    await h.run(5000);
    const F = h.members.get(filling)!;
    expect(F.grid.partitions.table.replicas[p][0]).toBe(filling);
    expect(F.grid.maps.counters.dataLoss).toBe(1);
    // New members, and F hands its partitions over: p moves to another primary.
    await h.add("n4");
    await h.add("n5");
    await h.run(1000);
    F.grid.migrateAway(20_000).catch(() => {});
    await h.run(4000);
    const next = other.grid.partitions.table.replicas[p][0];
    expect(next).not.toBe(filling);
    const answers: string[] = [];
    const dispatch = L.router.dispatch.bind(L.router);
    L.router.dispatch = (from: string, msg: Message) => {
      if (msg.t === Kind.InvokeResponse && msg.c === request!.c) answers.push(String(msg.s));
      dispatch(from, msg);
    };
    for (const m of h.live()) if (m.id !== "L") h.net.setLink(m.id, "L", { blocked: false });
    send(next, { ...request!, a: 5, e: other.grid.partitions.epochOf(p), g: 60_000 });
    await h.run(1000);
    expect(answers).toEqual(["INDETERMINATE"]);
    expect(h.members.get(next)!.grid.maps.counters.retriesInDoubt).toBe(1);
    expect(await h.until(list.get(key))).toEqual(["x", "y"]);
    h.stop();
  });

  // A primary answers MIGRATING also for a write it applied, when it stops (or its partition
  // moves on) before the commit: that answer does not prove the write did not run.
  test("a write answered MIGRATING after it ran is refused, not run again, by a primary that lost its history", async () => {
    const h = new GridHarness({
      seed: 5,
      config: {
        partitionCount: P,
        map: { directBackupAcks: false },
        invoke: { attemptTimeoutMs: 300, callTimeoutMs: 30_000 },
      },
    });
    for (let i = 0; i < 4; i++) await h.add(`n${i}`);
    await h.add("L", true);
    await h.run(3000);
    const key = "the-list";
    const p = partitionOf(key, P);
    const L = h.members.get("L")!;
    const [a, b] = L.grid.partitions.table.replicas[p];
    const state = { blockFill: true };
    for (const id of ["n0", "n1", "n2", "n3"].filter((id) => id !== a && id !== b)) {
      dropSnapshots(h, id, () => state.blockFill);
    }
    // b's acks do not reach a: the append runs on both but is not committed.
    const toA = h.members.get(a)!.router, dispatchA = toA.dispatch.bind(toA);
    toA.dispatch = (from: string, msg: Message) =>
      void (from === b && msg.t === Kind.MapBackupAck || dispatchA(from, msg));
    let aGone = false;
    const send = L.transport.send.bind(L.transport);
    L.transport.send = (to: string, msg: Message) => aGone && to === a ? false : send(to, msg);
    const append = L.grid.getMap<string, unknown>("m").executeOnKey(key, "append", "x");
    append.catch(() => {});
    await h.run(100);
    expect(h.members.get(b)!.grid.maps.debugLocalValue(p, "m", encodeValue(key))).toEqual(encodeValue(["x"]));
    h.members.get(a)!.grid.stop(); // its waiting write is answered MIGRATING
    await h.run(2);
    aGone = true;
    h.crash(a, 1000);
    h.net.setLink(b, "L", { blocked: true });
    await h.run(3000);
    const { list } = await appendThenCrash(h, key, b, state);
    expect(await h.until(append.then(() => null, (e) => e))).toBeInstanceOf(IndeterminateResultError);
    expect(await h.until(list.get(key))).toEqual(["x", "y"]);
    h.stop();
  });

  test("once the new backup's fill completes, the waiting retry is answered", async () => {
    const key = "the-key";
    const { h, p, b, filling, state, put } = await retryAfterFailover(4, key);
    expect(state.acked).toBe(false);
    state.blockFill = false;
    await h.until(put);
    // Answered once the new backup held it, and not applied twice (one write: version 1).
    expect(h.members.get(filling)!.grid.maps.debugLocalValue(p, "m", encodeValue(key))).toEqual(encodeValue("v1"));
    expect(h.members.get(b)!.grid.maps.debugLocalRecord(p, "m", encodeValue(key))?.version).toBe(1);
    h.stop();
  });
});
