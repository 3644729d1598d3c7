/**
 * Client-acknowledged dedupe records (src/map/dedupe_records.ts): a partition keeps the
 * record of every call its client has not yet answered, however many writes the partition
 * takes meanwhile; a request below its client's watermark is never applied again; a member
 * that left the view loses its records and its late retries are refused; the watermarks
 * travel to backups and in snapshots; the hard caps count what they drop.
 */
import { describe, expect, test } from "bun:test";
import { IndeterminateResultError, ShoalError } from "../src/core/errors.ts";
import { Random } from "../src/core/random.ts";
import { callId } from "../src/invoke/call_id.ts";
import { DedupeRecords, DEFAULT_DEDUPE_LIMITS } from "../src/map/dedupe_records.ts";
import { type LogEntry, PartitionData } from "../src/map/partition_data.ts";
import { partitionOf } from "../src/partition/partition_of.ts";
import type { Message } from "../src/wire/message.ts";
import { Kind } from "../src/wire/kinds.ts";
import { decodeFrame, encodeFrame } from "../src/wire/codec.ts";
import { bystanderOf, type GridHarness, type GridMember, gridStarter } from "./support/grid_harness.ts";

const P = 31;
const start = gridStarter(P);

/** `n` keys (other than `key`) in `key`'s partition. */
function keysBeside(key: string, n: number): string[] {
  const p = partitionOf(key, P);
  const out: string[] = [];
  for (let i = 0; out.length < n; i++) if (partitionOf(`f${i}`, P) === p) out.push(`f${i}`);
  return out;
}

/** The InvokeRequests `from` sends to `to` from now on (recorded as sent). */
function requestsTo(from: GridMember, to: string): Message[] {
  const sent: Message[] = [];
  const send = from.transport.send.bind(from.transport);
  from.transport.send = (peer, msg) => {
    if (peer === to && msg.t === Kind.InvokeRequest) sent.push(msg);
    return send(peer, msg);
  };
  return sent;
}

/** The key's primary and backup. */
function roles(h: GridHarness, key: string) {
  const [primary, backup] = h.members.get("n0")!.grid.partitions.table.replicas[partitionOf(key, P)];
  return { primary: h.members.get(primary)!, backup: h.members.get(backup)! };
}

describe("a write retried however late is applied once", () => {
  test("its retry arrives after more than 2,048 later writes to its partition: answered from its record", async () => {
    const h = await start(3);
    const key = "counter";
    const { primary, backup } = roles(h, key);
    const client = bystanderOf(h, key);
    const map = client.grid.getMap<string, string>("m");
    await h.until(map.set(key, "v1"));
    // Every answer to the client is lost (its backup answers a write, its primary a retry):
    // the client retries its put meanwhile.
    for (const m of [primary, backup]) h.net.setLink(m.id, client.id, { blocked: true });
    const put = map.put(key, "v2");
    let settled = false;
    put.then(() => void (settled = true), () => void (settled = true));
    const other = primary.grid.getMap<string, string>("m");
    await h.run(50);
    expect(await h.until(other.get(key))).toBe("v2");
    // Another client writes 2,100 times to the same partition, then overwrites the key.
    const before = primary.grid.maps.counters.writesApplied;
    const keys = keysBeside(key, 20);
    for (let b = 0; b < 21; b++) {
      await h.until(
        Promise.all(keys.map((k, i) => Promise.all([0, 1, 2, 3, 4].map((j) => other.set(k, `${b}.${i}.${j}`))))),
      );
    }
    await h.until(other.set(key, "v3"));
    expect(primary.grid.maps.counters.writesApplied - before).toBeGreaterThan(2048);
    expect(settled).toBe(false);
    const hits = primary.grid.maps.counters.dedupeHits;
    for (const m of [primary, backup]) h.net.setLink(m.id, client.id, { blocked: false });
    // Applied once: the caller gets the value before its own write, and the later write stays.
    expect(await h.until(put)).toBe("v1");
    expect(primary.grid.maps.counters.dedupeHits).toBeGreaterThan(hits);
    expect(await h.until(map.get(key))).toBe("v3");
    h.stop();
  });

  test("a stale copy of an answered request is refused below its caller's watermark, not applied", async () => {
    const h = await start(3);
    const key = "k";
    const { primary } = roles(h, key);
    const client = bystanderOf(h, key);
    const sent = requestsTo(client, primary.id);
    const map = client.grid.getMap<string, string>("m");
    await h.until(map.put(key, "a"));
    const first = sent.at(-1)!;
    // A later write to the same partition carries a watermark above the first call.
    await h.until(map.set(keysBeside(key, 1)[0], "x"));
    await h.until(map.set(key, "b"));
    expect(primary.grid.maps.debugHasRecord(partitionOf(key, P), first.c as string)).toBe(false);
    const refused = primary.grid.maps.counters.dedupeRefused;
    client.transport.send(primary.id, { ...first, a: 99 });
    await h.run(200);
    expect(primary.grid.maps.counters.dedupeRefused).toBe(refused + 1);
    expect(await h.until(map.get(key))).toBe("b");
    h.stop();
  });

  test("a member that left the view: its records are dropped, and its late retry is refused (INDETERMINATE)", async () => {
    const h = await start(3);
    const lite = await h.add("lite", true);
    await h.run(500);
    const key = "k";
    const { primary, backup } = roles(h, key);
    const map = lite.grid.getMap<string, string>("m");
    await h.until(map.set(key, "v1"));
    for (const m of [primary, backup]) h.net.setLink(m.id, lite.id, { blocked: true });
    const sent = requestsTo(lite, primary.id);
    const put = map.put(key, "v2");
    const other = primary.grid.getMap<string, string>("m");
    await h.run(50);
    expect(await h.until(other.get(key))).toBe("v2");
    await h.until(other.set(key, "v3"));
    const p = partitionOf(key, P), c = sent[0].c as string;
    expect([primary, backup].map((m) => m.grid.maps.debugHasRecord(p, c))).toEqual([true, true]);
    // Its lease ends: the others drop it from the view (the lite member goes on retrying).
    h.cluster.remove(lite.id);
    h.cluster.publish();
    await h.run(100);
    expect([primary, backup].map((m) => m.grid.maps.debugHasRecord(p, c))).toEqual([false, false]);
    for (const m of [primary, backup]) h.net.setLink(m.id, lite.id, { blocked: false });
    const err = await h.until(put.then(() => null, (e) => e));
    expect(err).toBeInstanceOf(IndeterminateResultError);
    expect(primary.grid.maps.counters.dedupeRefused).toBeGreaterThan(0);
    expect(await h.until(other.get(key))).toBe("v3");
    h.stop();
  });

  test("a call stuck on one partition holds back only that partition: calls to it past maxPendingCalls get OVERLOADED", async () => {
    const h = await start(3, {
      config: { invoke: { attemptTimeoutMs: 500, callTimeoutMs: 20_000, maxPendingCalls: 4 } },
    });
    const key = "k";
    const { primary } = roles(h, key);
    const client = bystanderOf(h, key);
    const map = client.grid.getMap<string, string>("m");
    // Its requests never reach the primary: the call stays pending.
    h.net.setLink(client.id, primary.id, { blocked: true });
    const stuck = map.put(key, "v");
    stuck.catch(() => {});
    // Calls to partitions the cut member holds no copy of go through, however far past the
    // stuck call's number (each partition keeps only its own calls' records).
    const t = primary.grid.partitions.table;
    const elsewhere = Array.from({ length: 200 }, (_, i) => `e${i}`).filter((k) =>
      !t.replicas[partitionOf(k, P)].includes(primary.id)
    );
    const codes: string[] = [];
    for (const k of elsewhere.slice(0, 6)) {
      codes.push(await h.until(map.set(k, "x").then(() => "ok", (e) => (e as ShoalError).code)));
    }
    expect(codes).toEqual(["ok", "ok", "ok", "ok", "ok", "ok"]);
    // A call to the stuck call's partition is 7 numbers past it: refused.
    const same = map.set(key, "w").then(() => "ok", (e) => (e as ShoalError).code);
    expect(await h.until(same)).toBe("OVERLOADED");
    h.net.setLink(client.id, primary.id, { blocked: false });
    expect(await h.until(stuck)).toBeUndefined();
    expect(await h.until(map.set(key, "y").then(() => "ok"))).toBe("ok");
    h.stop();
  });
});

describe("the records of one partition copy", () => {
  const client = "n1/0a0b0c0d";
  let seq = 0;
  const put = (call: number, w: number, m = "m"): LogEntry => ({
    seq: ++seq,
    c: callId(client, call),
    w,
    r: null,
    e: [{ m, k: new TextEncoder().encode(`k${call}`), v: new Uint8Array([1]), at: seq }],
  });

  test("records at or above the watermark stay past the old window; those below are dropped and refused", () => {
    seq = 0;
    const d = new PartitionData(0);
    // Call 0 stays unanswered while 3,000 later calls are answered.
    for (let i = 0; i <= 3000; i++) d.applyEntry(put(i, 0));
    expect(d.dedupe.has(callId(client, 0))).toBe(true);
    expect(d.dedupe.size).toBe(3001);
    d.applyEntry(put(3001, 2990));
    expect(d.dedupe.has(callId(client, 0))).toBe(false);
    expect(d.dedupe.isBelowWatermark(callId(client, 0))).toBe(true);
    expect(d.dedupe.isBelowWatermark(callId(client, 2990))).toBe(false);
    expect(d.dedupe.size).toBe(12);
  });

  test("records, watermarks, counts and bytes follow a plain model through sets, deletes and raises", () => {
    const rng = new Random(5);
    const recs = new DedupeRecords();
    const model = new Map<string, number>(); // call id → seq
    const marks = new Map<string, number>();
    const clients = ["n1/0a", "n2/0b"];
    for (let i = 0; i < 4000; i++) {
      const cl = clients[rng.next() < 0.8 ? 0 : 1];
      // Scattered calls, then calls in order with the watermark just behind (one record at a time, mostly).
      const seq = i < 2000 ? Math.floor(rng.next() * 300) + Math.floor(i / 20) : 3 * i + Math.floor(rng.next() * 4);
      const c = callId(cl, seq), op = rng.next(), w0 = marks.get(cl) ?? 0;
      if (op < 0.6) {
        // A write, with a watermark at or below its own call (as a request carries).
        const w = rng.next() < 0.5 ? undefined : Math.max(0, seq - Math.floor(rng.next() * 40));
        recs.set(c, { seq: i, r: null }, w);
        const w1 = w === undefined ? w0 : Math.max(w0, Math.min(w, seq));
        marks.set(cl, w1);
        for (const [k, s] of model) if (k.startsWith(cl + "/") && s < w1) model.delete(k);
        if (seq >= w1) model.set(c, seq);
      } else if (op < 0.75) {
        recs.delete(c);
        model.delete(c);
      } else {
        const w = w0 + Math.floor(rng.next() * 30);
        recs.raise(cl, w);
        marks.set(cl, Math.max(w0, w));
        for (const [k, s] of model) if (k.startsWith(cl + "/") && s < w) model.delete(k);
      }
      if (i % 97 === 0 || i > 3990) {
        expect(new Set(recs.keys())).toEqual(new Set(model.keys()));
        expect(recs.size).toBe(model.size);
        expect(recs.bytes).toBe([...model.keys()].reduce((n, k) => n + 16 + k.length, 0));
        for (const [cl, w] of marks) {
          expect(recs.isBelowWatermark(callId(cl, w - 1))).toBe(w > 0);
          expect(recs.isBelowWatermark(callId(cl, w))).toBe(false);
        }
      }
    }
  });

  test("a forgotten client's records are gone, also right after its last lookup", () => {
    const recs = new DedupeRecords({ ...DEFAULT_DEDUPE_LIMITS, clients: 1 });
    recs.set(callId("n1/0a", 3), { seq: 1, r: "a" });
    expect(recs.get(callId("n1/0a", 3))?.r).toBe("a");
    recs.set(callId("n2/0b", 3), { seq: 2, r: "b" }); // n1/0a is forgotten
    expect(recs.get(callId("n1/0a", 3))).toBeUndefined();
    expect(recs.get(callId("n2/0b", 3))?.r).toBe("b");
    recs.clear();
    expect(recs.get(callId("n2/0b", 3))).toBeUndefined();
  });

  test("watermarks reach a backup with the writes and a copy with a snapshot", () => {
    seq = 0;
    const primary = new PartitionData(0), backup = new PartitionData(0);
    for (const e of [put(0, 0), put(1, 0), put(5, 2)]) (primary.applyEntry(e), backup.applyEntry(e));
    expect([...backup.dedupe.keys()]).toEqual([callId(client, 5)]);
    expect(backup.dedupe.isBelowWatermark(callId(client, 1))).toBe(true);
    const copy = new PartitionData(0);
    copy.install(primary.snapshot(), 1);
    expect(copy.dedupe.isBelowWatermark(callId(client, 1))).toBe(true);
    expect(copy.dedupe.has(callId(client, 5))).toBe(true);
    // Its member left: the records go, and every call recorded is refused from then on.
    copy.dedupe.departed("n1");
    expect(copy.dedupe.size).toBe(0);
    expect(copy.dedupe.isBelowWatermark(callId(client, 5))).toBe(true);
    expect(copy.dedupe.isBelowWatermark(callId(client, 6))).toBe(false);
  });

  test("the calls a merge carries are recorded not to run again: in the log, over the wire, in snapshots", () => {
    seq = 0;
    const primary = new PartitionData(0), backup = new PartitionData(0);
    // Call 3 ran here already (its retry reached this cluster before the merge did): its own
    // record stays. Call 4 came only with the merge.
    const own = { ...put(3, 0), r: "r3" };
    const merge: LogEntry = {
      seq: ++seq,
      c: callId("n7/0e", 0),
      r: 0,
      e: [],
      u: [callId(client, 3), callId(client, 4)],
    };
    for (const e of [own, merge]) primary.applyEntry(e);
    expect(primary.dedupe.get(callId(client, 3))).toEqual({ seq: 1, r: "r3", m: "m" });
    expect(primary.dedupe.get(callId(client, 4))).toEqual({ seq: 2, r: null, x: 1 });
    // Re-shipped from the log through a real frame: the backup records the same.
    const ops = primary.logFrom(1)!;
    expect(ops[1].u).toEqual(merge.u);
    const frame = decodeFrame(encodeFrame([{ t: Kind.MapBackupOps, p: 0, e: 1, l: 1, ops }]));
    expect(frame.dropped).toBe(0);
    for (const op of (frame.msgs[0] as unknown as { ops: LogEntry[] }).ops) backup.applyEntry(op);
    expect(backup.dedupe.get(callId(client, 4))).toEqual({ seq: 2, r: null, x: 1 });
    expect(backup.dedupe.get(callId(client, 3))?.r).toBe("r3");
    // A snapshot carries it, and its chunk passes the wire's schema.
    const snap = primary.snapshot();
    const chunk = {
      t: Kind.MapSnapshotChunk,
      p: 0,
      e: 1,
      l: 1,
      sid: 1,
      i: 0,
      n: 1,
      s: snap.seq,
      d0: snap.digest[0],
      d1: snap.digest[1],
      dedupe: snap.dedupe,
      entries: snap.entries,
    };
    const got = decodeFrame(encodeFrame([chunk]));
    expect(got.dropped).toBe(0);
    const copy = new PartitionData(0);
    copy.install({ ...snap, dedupe: (got.msgs[0] as unknown as typeof chunk).dedupe }, 1);
    expect(copy.dedupe.get(callId(client, 4))).toEqual({ seq: 2, r: null, x: 1 });
    expect(copy.dedupe.get(callId(client, 3))?.r).toBe("r3");
    // Answered like every record: once its caller's watermark passes it, it goes.
    copy.applyEntry(put(5, 5));
    expect(copy.dedupe.has(callId(client, 4))).toBe(false);
    expect(copy.dedupe.isBelowWatermark(callId(client, 4))).toBe(true);
  });

  test("the hard cap drops the oldest record of the client holding most, counted, and refuses its retry", () => {
    const counts = { dedupeEvicted: 0, dedupeForgotten: 0 };
    const r = new DedupeRecords({ window: 4, windowBytes: 1024, cap: 10, capBytes: 1 << 20, clients: 3 }, counts);
    for (let i = 0; i < 12; i++) r.set(callId("a/1", i), { seq: i, r: null }, 0);
    r.set(callId("b/1", 0), { seq: 12, r: null }, 0);
    expect(r.size).toBe(10);
    expect(counts.dedupeEvicted).toBe(3);
    expect(r.isBelowWatermark(callId("a/1", 2))).toBe(true);
    expect(r.has(callId("a/1", 3))).toBe(true);
    expect(r.has(callId("b/1", 0))).toBe(true);
    // The client cap forgets a departed client before a present one.
    r.departed("b");
    r.set(callId("c/1", 0), { seq: 13, r: null }, 0);
    r.set(callId("d/1", 0), { seq: 14, r: null }, 0);
    expect(counts.dedupeForgotten).toBe(1);
    expect(r.isBelowWatermark(callId("b/1", 0))).toBe(false);
    expect(r.has(callId("a/1", 11))).toBe(true);
  });
});
