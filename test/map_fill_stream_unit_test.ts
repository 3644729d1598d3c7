/**
 * The replica's side of fill streams (src/map/fill_stream.ts) on real partition copies: which
 * streamed writes are held aside and acked, how they go on top of a snapshot, and what a
 * filling copy keeps when it becomes primary or its stream ends under the same primary.
 */
import { describe, expect, test } from "bun:test";
import { silentLogger } from "../src/core/log.ts";
import { FILL_STREAM_MAX_OPS, FillStreams } from "../src/map/fill_stream.ts";
import { type MapContext, newMapCounters } from "../src/map/map_context.ts";
import type { MapBackupOps } from "../src/map/messages.ts";
import { type LogEntry, PartitionData, type SnapshotData } from "../src/map/partition_data.ts";
import { Kind } from "../src/wire/kinds.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array | undefined) => (b ? new TextDecoder().decode(b) : undefined);

function fills() {
  const ctx = { counters: newMapCounters(), log: silentLogger } as unknown as MapContext;
  return { f: new FillStreams(ctx), counters: ctx.counters };
}

/** Write number `seq`: key `k<seq % 5>` set to `v<seq>` (call id `c<seq>`). */
function write(seq: number): LogEntry {
  return { seq, c: `c${seq}`, r: null, e: [{ m: "m", k: enc(`k${seq % 5}`), v: enc(`v${seq}`), at: seq }] };
}

function ops(first: number, last: number, sf: number, l = 7): MapBackupOps & { sf: number } {
  const list: LogEntry[] = [];
  for (let s = first; s <= last; s++) list.push(write(s));
  return { t: Kind.MapBackupOps, p: 0, e: 3, l, ops: list as MapBackupOps["ops"], sf };
}

/** The primary's copy after writes 1..n. */
function primaryCopy(n: number): PartitionData {
  const d = new PartitionData(0);
  for (let s = 1; s <= n; s++) d.applyEntry(write(s));
  return d;
}

const valueOf = (d: PartitionData, k: string) => dec(d.maps.get("m")?.get(enc(k))?.value);

describe("fill streams: the replica's side", () => {
  test("holds contiguous writes from the stream's start, stops at a gap, refuses another history", () => {
    const { f, counters } = fills();
    const st = f.onOps("n0", ops(11, 14, 11), undefined)!;
    expect([st.first, st.last, st.ops.length]).toEqual([11, 14, 4]);
    // A gap (16 without 15): nothing past it is held; the ack stays at 14.
    expect(f.onOps("n0", ops(16, 17, 11), undefined)!.last).toBe(14);
    expect(f.onOps("n0", ops(13, 16, 11), undefined)!.last).toBe(16);
    expect(counters.fillStreamOps).toBe(6);
    // A copy holding another history cannot take it.
    const other = new PartitionData(0);
    other.follow(99, 1);
    expect(f.onOps("n0", ops(11, 12, 11), other)).toBeNull();
    // A stream with another start replaces the old one.
    expect(f.onOps("n0", ops(20, 20, 20), undefined)!.ops.map((o) => o.seq)).toEqual([20]);
  });

  test("stops holding (and acking) past its cap", () => {
    const { f, counters } = fills();
    let st = f.onOps("n0", ops(1, 1000, 1), undefined)!;
    for (let s = 1001; st.last < FILL_STREAM_MAX_OPS + 10 && s < FILL_STREAM_MAX_OPS + 2000; s += 1000) {
      st = f.onOps("n0", ops(s, s + 999, 1), undefined)!;
    }
    expect(st.last).toBe(FILL_STREAM_MAX_OPS);
    expect(counters.fillStreamOverflows).toBeGreaterThan(0);
  });

  test("the held writes go on top of the installed snapshot", () => {
    const { f } = fills();
    const prim = primaryCopy(30);
    f.onOps("n0", ops(21, 30, 21), undefined);
    const copy = new PartitionData(0);
    // The snapshot was taken at 25, after the stream began at 21.
    const snap: SnapshotData = primaryCopy(25).snapshot();
    copy.install(snap, 7);
    copy.follow(7, 3);
    f.applyHeld(0, copy, 7);
    expect(copy.seq).toBe(30);
    expect(copy.digest).toEqual(prim.digest);
    expect(f.size).toBe(0);
  });

  test("a filling copy that becomes primary keeps every streamed write; missing chunks count as lost", () => {
    const { f, counters } = fills();
    const full = primaryCopy(25).snapshot();
    // Chunks of the snapshot at 25 arrived for only half the keys.
    const partial = { ...full, entries: full.entries.slice(0, 2), complete: false };
    f.onOps("n0", ops(21, 30, 21), undefined);
    const copy = new PartitionData(0);
    expect(f.materialize(0, copy, partial)).toBe(true);
    expect(copy.seq).toBe(30);
    expect(copy.historyLineage).toBe(7);
    // Every streamed write (21..30 covers k0..k4) holds its latest value.
    for (let i = 0; i < 5; i++) expect(valueOf(copy, `k${i}`)).toBe(`v${26 + ((i + 4) % 5)}`);
    expect(counters.fillStreamsMaterialized).toBe(1);
    // A stream from the partition's first write on loses nothing, with or without chunks.
    const g = fills().f;
    g.onOps("n0", ops(1, 3, 1), undefined);
    const fresh = new PartitionData(0);
    expect(g.materialize(0, fresh, null)).toBe(false);
    expect([fresh.seq, valueOf(fresh, "k1"), valueOf(fresh, "k3")]).toEqual([3, "v1", "v3"]);
  });

  test("a stream that ends under the same primary is taken into the copy, and a later promotion reports the gap", () => {
    const { f } = fills();
    f.onOps("n0", ops(11, 15, 11), undefined);
    const copy = new PartitionData(0);
    f.retire(0, copy, null);
    expect([copy.seq, copy.historyLineage, f.size]).toEqual([15, 7, 0]);
    // The next epoch's stream (another lineage) is refused: its writes wait for the snapshot.
    expect(f.onOps("n0", ops(16, 16, 16, 8), copy)).toBeNull();
    expect(f.takeIncomplete(0)).toBe(true);
    expect(f.takeIncomplete(0)).toBe(false);
    // A snapshot installed (or a matching check) makes the copy whole again.
    f.retire(0, copy, null);
    f.onOps("n0", ops(16, 17, 16), copy);
    f.retire(0, copy, null);
    f.applyHeld(0, copy, 8);
    expect(f.takeIncomplete(0)).toBe(false);
  });

  test("holdsCall sees a streamed write until it is applied", () => {
    const { f } = fills();
    f.onOps("n0", ops(5, 6, 5), undefined);
    expect([f.holdsCall(0, "c5"), f.holdsCall(0, "c7")]).toEqual([true, false]);
  });
});
