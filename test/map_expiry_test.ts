import { describe, expect, test } from "bun:test";
import { Random } from "../src/core/random.ts";
import {
  after,
  EventRing,
  ListenerQueue,
  MAX_EXCLUDED_MAPS,
  RawEvent,
  rawEventBytes,
} from "../src/map/entry_events.ts";
import { MemberUsage, pickVictim } from "../src/map/eviction.ts";
import { expiryDeadline, ExpirySweep, resolveExpiry, TouchBatcher } from "../src/map/expiry.ts";
import { MapConfigs } from "../src/map/map_config.ts";
import { EffectCause, type LogEntry, PartitionData } from "../src/map/partition_data.ts";
import { idBytes, keyId, recordBytes, RecordStore } from "../src/map/record_store.ts";

const te = new TextEncoder();
const b = (s: string) => te.encode(s);

function write(d: PartitionData, e: LogEntry["e"]): void {
  d.applyEntry({ seq: d.seq + 1, e });
}

describe("expiry formulas", () => {
  test("per-entry options override the map default, 0 means none", () => {
    const def = { ttlMs: 1000, maxIdleMs: 0 };
    const table: Array<[Parameters<typeof resolveExpiry>[0], ReturnType<typeof resolveExpiry>]> = [
      [undefined, { ttl: 1000 }],
      [{ ttlMs: 5 }, { ttl: 5 }],
      [{ ttlMs: 0 }, {}],
      [{ maxIdleMs: 7 }, { ttl: 1000, mi: 7 }],
      [{ ttlMs: 0, maxIdleMs: 7 }, { mi: 7 }],
    ];
    for (const [opts, want] of table) expect(resolveExpiry(opts, def)).toEqual(want);
  });

  test("the deadline is the earlier of TTL from the last write and max-idle from the last access or the floor", () => {
    const d = new PartitionData(0);
    write(d, [{ m: "m", k: b("k"), v: b("v"), at: 1000, ttl: 500, mi: 200 }]);
    const r = d.maps.get("m")!.get(b("k"))!;
    expect(expiryDeadline(r, 0)).toBe(1200);
    write(d, [{ m: "m", k: b("k"), touch: true, at: 1250 }]);
    // What get returned is a snapshot: read the record again.
    const touched = d.maps.get("m")!.get(b("k"))!;
    expect(expiryDeadline(r, 0)).toBe(1200);
    expect(expiryDeadline(touched, 0)).toBe(1450);
    expect(expiryDeadline(touched, 1400)).toBe(1500); // TTL still caps it
    write(d, [{ m: "m", k: b("k"), v: b("w"), at: 1300, mi: 200 }]);
    const r2 = d.maps.get("m")!.get(b("k"))!;
    expect(r2.ttlMs).toBeUndefined();
    expect(expiryDeadline(r2, 0)).toBe(1500);
    expect(expiryDeadline(r2, 2000)).toBe(2200);
  });

  test("a touch changes neither value, version nor digest, and a floor effect moves only the floor", () => {
    const d = new PartitionData(0);
    write(d, [{ m: "m", k: b("k"), v: b("v"), at: 1, mi: 10 }]);
    const digest: [number, number] = [d.digest[0], d.digest[1]];
    write(d, [{ m: "m", k: b("k"), touch: true, at: 5 }, { m: "m", k: b("gone"), touch: true, at: 5 }]);
    write(d, [{ m: "", floor: true, at: 9 }]);
    expect(d.digest).toEqual(digest);
    expect(d.maps.get("m")!.get(b("k"))!.version).toBe(1);
    expect(d.maps.get("m")!.size).toBe(1);
    expect(d.idleFloor).toBe(9);
  });

  test("a snapshot carries expiry settings, last access and the floor to the copy", () => {
    const d = new PartitionData(3);
    write(d, [{ m: "m", k: b("a"), v: b("1"), at: 10, ttl: 100 }, { m: "m", k: b("b"), v: b("2"), at: 10 }]);
    write(d, [{ m: "m", k: b("a"), touch: true, at: 40 }, { m: "", floor: true, at: 50 }]);
    const copy = new PartitionData(3);
    copy.install(structuredClone(d.snapshot()), 1);
    const a = copy.maps.get("m")!.get(b("a"))!;
    expect([a.ttlMs, a.maxIdleMs, a.lastAccessAt]).toEqual([100, undefined, 40]);
    expect(copy.maps.get("m")!.get(b("b"))!.ttlMs).toBeUndefined();
    expect(copy.idleFloor).toBe(50);
    expect(copy.digest).toEqual(d.digest);
    expect(copy.maps.get("m")!.expiring).toBe(1);
  });
});

describe("expiry sweep", () => {
  function filled(p: number, n: number, ttl: number): PartitionData {
    const d = new PartitionData(p);
    for (let i = 0; i < n; i++) {
      write(d, [{ m: "m", k: b(`k${i}`), v: b("v"), at: 0, ttl: i % 2 === 0 ? ttl : undefined }]);
    }
    write(d, [{ m: "plain", k: b("x"), v: b("v"), at: 0 }]);
    return d;
  }

  test("examines at most the budget per call and finds every expired key over successive calls", () => {
    const parts = [filled(5, 100, 10), filled(2, 50, 10), filled(9, 0, 10)];
    const sweep = new ExpirySweep();
    const found = new Set<string>();
    let calls = 0;
    while (found.size < 75 && calls < 100) {
      const out = sweep.sweep(parts, 10, 16);
      expect(out.length).toBeLessThanOrEqual(16);
      for (const e of out) found.add(`${e.p}:${new TextDecoder().decode(e.key)}`);
      calls++;
    }
    expect(found.size).toBe(75);
    expect(calls).toBeGreaterThanOrEqual(Math.ceil(150 / 16));
  });

  test("finds nothing before the deadline, and skips stores without expiring records", () => {
    const parts = [filled(0, 10, 100)];
    const sweep = new ExpirySweep();
    expect(sweep.sweep(parts, 99, 1000)).toEqual([]);
    expect(sweep.sweep(parts, 100, 1000).length).toBe(5);
  });

  test("partitions without an expiring record cost no step, and are walked again once they hold one", () => {
    const plain = [filled(1, 0, 10), filled(3, 0, 10)];
    const sweep = new ExpirySweep();
    expect(sweep.sweep(plain, 1000, 1000)).toEqual([]);
    expect(sweep.examined).toBe(0);
    write(plain[1], [{ m: "m", k: b("late"), v: b("v"), at: 0, ttl: 10 }]);
    const out = sweep.sweep(plain, 1000, 1000);
    expect(out.map((e) => `${e.p}:${new TextDecoder().decode(e.key)}`)).toEqual(["3:late"]);
  });

  test("a call over the same partitions with no expiring record stored since looks at no store, and a change ends that", () => {
    const plain = [filled(1, 0, 10), filled(3, 0, 10)];
    // Holds an expiring record before the idle calls: a copy that becomes primary later.
    const promoted = filled(4, 3, 10);
    const sweep = new ExpirySweep();
    expect(sweep.sweep(plain, 1000, 1000)).toEqual([]);
    expect(sweep.skipped).toBe(0);
    expect(sweep.sweep([...plain], 1000, 1000)).toEqual([]);
    expect(sweep.skipped).toBe(1);
    // Another partition served: walked at once, though no record was stored since.
    expect(sweep.sweep([...plain, promoted], 1000, 1000).length).toBe(2);
    expect(sweep.skipped).toBe(1);
    // Back to the plain partitions: idle again; then a record with a TTL is stored in one of them.
    expect(sweep.sweep(plain, 1000, 1000)).toEqual([]);
    expect(sweep.sweep(plain, 1000, 1000)).toEqual([]);
    expect(sweep.skipped).toBe(2);
    write(plain[0], [{ m: "m", k: b("late"), v: b("v"), at: 0, mi: 10 }]);
    expect(sweep.sweep(plain, 1000, 1000).map((e) => e.p)).toEqual([1]);
  });
});

describe("touch batching", () => {
  test("a batch is due flushMs after its first read, or when full; keys are deduplicated", () => {
    const t = new TouchBatcher(100, 3);
    t.touch(1, "m", b("a"), "a", 0);
    t.touch(1, "m", b("a"), "a", 10);
    expect(t.due(50)).toEqual([]);
    expect(t.due(100)).toEqual([{ p: 1, keys: [{ m: "m", key: b("a") }] }]);
    t.touch(2, "m", b("a"), "a", 200);
    t.touch(2, "m", b("b"), "b", 200);
    expect(t.touch(2, "m", b("c"), "c", 200)).toBe(true);
    expect(t.due(200).map((x) => x.keys.length)).toEqual([3]);
    expect(t.size).toBe(0);
  });
});

describe("record store slots and eviction sampling", () => {
  test("key ids stand for their bytes, one char per byte, at every length", () => {
    const rng = new Random(3);
    const ids = new Set<string>();
    for (const n of [0, 1, 23, 24, 25, 102, 8191, 8192, 8193, 20_000]) {
      const bytes = Uint8Array.from({ length: n }, () => rng.int(256));
      const id = keyId(bytes);
      expect(id.length).toBe(n);
      expect(idBytes(id)).toEqual(bytes);
      ids.add(id);
    }
    expect(ids.size).toBe(10);
  });

  test("a record keeps its slot while it lives, holes are reused, and bytes and expiring counts follow", () => {
    const s = new RecordStore("m");
    const rng = new Random(7);
    const live = new Map<string, Uint8Array>();
    const slotOf = new Map<string, number>();
    for (let i = 0; i < 2000; i++) {
      const k = b(`k${Math.floor(rng.next() * 300)}`);
      const id = keyId(k);
      if (rng.next() < 0.4 && live.has(id)) {
        s.delete(id);
        live.delete(id);
        slotOf.delete(id);
      } else {
        s.set(id, {
          key: k,
          value: b("v".repeat(i % 7)),
          version: 1,
          createdAt: 0,
          updatedAt: 0,
          lastAccessAt: 0,
          hits: 0,
          slot: -1,
          ttlMs: i % 3 === 0 ? 5 : undefined,
        });
        live.set(id, k);
        const slot = s.getId(id)!.slot;
        if (slotOf.has(id)) expect(slot).toBe(slotOf.get(id)!);
        slotOf.set(id, slot);
      }
    }
    expect(s.size).toBe(live.size);
    const ids = new Set<string>();
    let bytes = 0, expiring = 0;
    for (let i = 0; i < s.slotCount; i++) {
      const r = s.atSlot(i);
      if (!r) continue;
      expect(r.slot).toBe(i);
      expect(slotOf.get(keyId(r.key))).toBe(i);
      expect(s.get(r.key)!.slot).toBe(i);
      ids.add(keyId(r.key));
      bytes += recordBytes(r);
      if (r.ttlMs !== undefined) expiring++;
    }
    expect(ids.size).toBe(live.size);
    expect([...s.values()].length).toBe(live.size);
    // Holes are reused: the slots in use never exceed the most records held at once by much.
    expect(s.slotCount).toBeLessThanOrEqual(300);
    expect(s.bytes).toBe(bytes);
    expect(s.expiring).toBe(expiring);
    expect(s.atSlot(s.slotCount)).toBeUndefined();
  });

  test("a record keeps its own copy of key and value, not a view into the frame it came in", () => {
    const frame = b("KKVVVV");
    const key = frame.subarray(0, 2), value = frame.subarray(2);
    const s = new RecordStore("m");
    const id = keyId(key);
    const rec = { key, value, version: 1, createdAt: 5, updatedAt: 6, lastAccessAt: 7, hits: 1, slot: -1 };
    s.set(id, rec);
    frame.fill(0);
    const got = s.get(b("KK"))!;
    expect(new TextDecoder().decode(got.key)).toBe("KK");
    expect(new TextDecoder().decode(got.value)).toBe("VVVV");
    expect(s.bytes).toBe(recordBytes({ key: b("KK"), value: b("VVVV") }));
    // A stored record set into another store (as when copying a map between replicas) stores the same entry.
    const other = new RecordStore("m");
    other.set(id, got);
    const copy = other.get(b("KK"))!;
    expect([new TextDecoder().decode(copy.value), copy.version, copy.createdAt, copy.updatedAt]).toEqual([
      "VVVV",
      1,
      5,
      6,
    ]);
    // Changes go through what get returns; the bytes handed out are fresh each time.
    got.lastAccessAt = 9;
    got.value[0] = 0;
    expect(s.get(b("KK"))!.lastAccessAt).toBe(9);
    expect(new TextDecoder().decode(s.get(b("KK"))!.value)).toBe("VVVV");
  });

  function store(n: number): RecordStore {
    const s = new RecordStore("m");
    for (let i = 0; i < n; i++) {
      const k = b(`k${i}`);
      s.set(keyId(k), {
        key: k,
        value: b("v"),
        version: 1,
        createdAt: 0,
        updatedAt: 0,
        lastAccessAt: i,
        hits: n - i,
        slot: -1,
      });
    }
    return s;
  }

  test("LRU sampling evicts old entries, LFU rarely used ones, never a kept key", () => {
    const s = store(1000);
    const rng = new Random(1);
    let lruSum = 0, lfuSum = 0;
    for (let i = 0; i < 200; i++) {
      lruSum += pickVictim(s, "lru", rng)!.lastAccessAt;
      lfuSum += pickVictim(s, "lfu", rng)!.hits;
    }
    // The minimum of 15 uniform samples has mean ≈ n/16.
    expect(lruSum / 200).toBeLessThan(130);
    expect(lfuSum / 200).toBeLessThan(130);
    const small = store(2);
    const keep = new Set([keyId(b("k0"))]);
    for (let i = 0; i < 20; i++) expect(new TextDecoder().decode(pickVictim(small, "lru", rng, keep)!.key)).toBe("k1");
    expect(pickVictim(store(1), "lru", rng, new Set([keyId(b("k0"))]))).toBeUndefined();
    expect(pickVictim(store(5), "none", rng)).toBeUndefined();
  });

  test("member usage counts the primaries' entries and bytes, and is over a limit only with a policy", () => {
    const d1 = new PartitionData(1), d2 = new PartitionData(2);
    write(d1, [{ m: "s1", k: b("a"), v: b("x"), at: 0 }, { m: "s1", k: b("b"), v: b("x"), at: 0 }]);
    write(d2, [{ m: "s1", k: b("c"), v: b("x"), at: 0 }, { m: "t", k: b("c"), v: b("x"), at: 0 }]);
    const u = new MemberUsage();
    u.recompute([d1, d2]);
    expect(u.get("s1")).toEqual({ entries: 3, bytes: 3 * (recordBytes({ key: b("a"), value: b("x") })) });
    const cfg = new MapConfigs({ "s*": { maxSizePerMember: 2 }, t: { maxBytesPerMember: 1000 } });
    expect(u.over("s1", cfg.resolve("s1"))).toBe(true);
    expect(u.over("t", cfg.resolve("t"))).toBe(false);
    u.adjust("s1", -1, -67);
    expect(u.over("s1", cfg.resolve("s1"))).toBe(false);
    expect(u.over("other", cfg.resolve("other"))).toBe(false);
  });
});

describe("entry events", () => {
  test("every replica derives the same events, with old values and causes", () => {
    const d = new PartitionData(4);
    write(d, [{ m: "m", k: b("a"), v: b("1"), at: 0 }, { m: "m", k: b("b"), v: b("2"), at: 0 }]);
    write(d, [{ m: "m", k: b("a"), v: b("3"), at: 1 }]);
    write(d, [{ m: "m", k: b("a"), v: null, at: 2 }, { m: "m", k: b("zz"), v: null, at: 2 }]);
    write(d, [{ m: "m", k: b("b"), v: null, at: 3, why: EffectCause.Expired }]);
    write(d, [{ m: "m", k: b("c"), v: b("4"), at: 4, why: EffectCause.Merged }]);
    write(d, [{ m: "m", k: b("c"), v: null, at: 5, why: EffectCause.Evicted }]);
    const { events } = d.events.since({ seq: 0, i: -1 }, Infinity, 100);
    expect(events.map((e) => [e.seq, e.i, e.type, e.oldValue && new TextDecoder().decode(e.oldValue)])).toEqual([
      [1, 0, "added", undefined],
      [1, 1, "added", undefined],
      [2, 0, "updated", "1"],
      [3, 0, "removed", "3"],
      [4, 0, "expired", "2"],
      [5, 0, "merged", undefined],
      [6, 0, "evicted", "4"],
    ]);
    expect(d.events.since({ seq: 1, i: 0 }, 2, 100).events.map((e) => [e.seq, e.i])).toEqual([[1, 1], [2, 0]]);
  });

  test("the ring drops whole writes and reports the gap to a reader that fell behind", () => {
    const r = new EventRing(4);
    const c = { type: "added" as const, m: "m", key: b("k") };
    for (let seq = 1; seq <= 5; seq++) for (let i = 0; i < 2; i++) r.push(RawEvent.of(seq, i, c, null));
    expect(r.size).toBeLessThanOrEqual(4);
    expect(r.coveredFrom).toBe(3);
    expect(r.since({ seq: 1, i: 1 }, 10, 10)).toEqual({
      events: r.since({ seq: 3, i: 1 }, 10, 10).events,
      gap: { fromSeq: 2, toSeq: 3 },
    });
    expect(r.since({ seq: 3, i: 1 }, 10, 10).gap).toBeUndefined();
    r.reset(40);
    expect(r.since({ seq: 5, i: 1 }, 50, 10)).toEqual({ events: [], gap: { fromSeq: 6, toSeq: 40 } });
  });

  test("a snapshot carries the copy's events: a listener behind the snapshot's seq resumes on the copy without a gap", () => {
    const d = new PartitionData(5, { log: 256, dedupe: 64, events: 4 });
    for (let seq = 1; seq <= 6; seq++) {
      write(d, [{ m: "m", k: b(`k${seq}`), v: b(`v${seq}`), at: seq }, { m: "n", k: b("x"), v: b(`${seq}`), at: seq }]);
    }
    write(d, [{ m: "m", k: b("k6"), v: null, at: 7 }]);
    // The ring holds whole writes, newest first kept: 4 events = writes 6 (2 events) and 7 (1), covered from 5.
    expect(d.events.coveredFrom).toBe(5);
    const copy = new PartitionData(5, { log: 256, dedupe: 64, events: 4 });
    copy.install(structuredClone(d.snapshot()), 1);
    const show = (r: ReturnType<EventRing["since"]>) => ({
      gap: r.gap,
      events: r.events.map((e) => [e.seq, e.i, e.type, e.m, new TextDecoder().decode(e.key), e.value?.length]),
    });
    // A listener at write 5 finds the same events on the copy as on the original, with no gap.
    expect(show(copy.events.since({ seq: 5, i: 1 }, 7, 100))).toEqual(show(d.events.since({ seq: 5, i: 1 }, 7, 100)));
    expect(copy.events.since({ seq: 5, i: 1 }, 7, 100).gap).toBeUndefined();
    expect(copy.events.since({ seq: 5, i: 1 }, 7, 100).events.map((e) => e.type)).toEqual([
      "added",
      "updated",
      "removed",
    ]);
    // Farther behind than the ring reaches: the same gap on both.
    expect(copy.events.since({ seq: 2, i: 1 }, 7, 100).gap).toEqual({ fromSeq: 3, toSeq: 5 });
    // Of the maps a copy's level keeps only; and a snapshot without events (an older member's) starts after its seq.
    const m = new PartitionData(5);
    m.install(structuredClone(d.snapshot((map) => map === "m")), 1);
    expect(m.events.since({ seq: 5, i: 1 }, 7, 100).events.map((e) => [e.seq, e.m])).toEqual([[6, "m"], [7, "m"]]);
    // A transfer to a follower carries the events of the maps listeners read only (snapshot_transfer.ts).
    expect(d.snapshotMeta(undefined, () => false).ev).toBeUndefined();
    expect(new Set(d.snapshotMeta(undefined, (map) => map === "n").ev!.map((e) => e[3]))).toEqual(new Set(["n"]));
    const old = new PartitionData(5);
    const { ev: _, ef: __, ...withoutEvents } = structuredClone(d.snapshot());
    old.install(withoutEvents, 1);
    expect(old.events.since({ seq: 5, i: 1 }, 7, 100)).toEqual({ events: [], gap: { fromSeq: 6, toSeq: 7 } });
  });

  test("a ring restored from events that left maps out gives their readers a gap up to the snapshot's seq", () => {
    const r = new EventRing(16);
    const ev = (seq: number, m: string) => RawEvent.of(seq, 0, { type: "added" as const, m, key: b(`k${seq}`) }, null);
    for (let seq = 1; seq <= 6; seq++) r.push(ev(seq, seq % 2 === 0 ? "a" : "b"));
    const out = r.exportEvents((m) => m === "a");
    expect(out.ex).toEqual(["b"]);
    const copy = new EventRing(16);
    copy.restore(out.from, out.ev, 6, out.ex);
    // A reader of "a" resumes without a gap; one of "b" learns that writes 3..6 may hold its events.
    expect(copy.since({ seq: 2, i: 0 }, 6, 100, "a").gap).toBeUndefined();
    expect(copy.since({ seq: 2, i: 0 }, 6, 100, "b").gap).toEqual({ fromSeq: 3, toSeq: 6 });
    // Passed on again, the copy still names "b"; once the ring no longer reaches back past 6, no map is special.
    expect(copy.exportEvents().ex).toEqual(["b"]);
    for (let seq = 7; seq <= 30; seq++) copy.push(ev(seq, "b"));
    expect(copy.coveredFrom).toBeGreaterThanOrEqual(6);
    expect(copy.exportEvents().ex).toBeUndefined();
    expect(copy.since({ seq: copy.coveredFrom, i: 1_000_000 }, 30, 100, "b").gap).toBeUndefined();
    // More maps left out than a snapshot may name: no events at all (the copy starts after the snapshot).
    const many = new EventRing(MAX_EXCLUDED_MAPS + 10, 0, 1 << 24);
    for (let seq = 1; seq <= MAX_EXCLUDED_MAPS + 2; seq++) many.push(ev(seq, `m${seq}`));
    expect(many.exportEvents((m) => m === "m1")).toEqual({ from: 0, ev: [] });
  });

  test("events that do not check out are not restored: the ring starts after the snapshot's seq", () => {
    const r = new EventRing(8);
    const key = b("k");
    r.restore(2, [[3, 0, 0, "m", key, null, null], [5, 0, 1, "m", key, b("v"), b("u")]], 6);
    expect(r.coveredFrom).toBe(2);
    expect(r.since({ seq: 2, i: 0 }, 6, 10).events.map((e) => [e.seq, e.type])).toEqual([[3, "added"], [5, "updated"]]);
    for (
      const bad of [
        [[3, 0, 0, "m", key, null, null], [3, 0, 0, "m", key, null, null]], // not after the one before
        [[3, 0, 9, "m", key, null, null]], // no such type
        [[2, 0, 0, "m", key, null, null]], // not after `from`
      ] as Array<Array<[number, number, number, string, Uint8Array, Uint8Array | null, Uint8Array | null]>>
    ) {
      r.restore(2, bad, 6);
      expect(r.size).toBe(0);
      expect(r.coveredFrom).toBe(6);
    }
    // Events after the seq the copy starts at are left to the writes that follow it.
    r.restore(2, [[3, 0, 0, "m", key, null, null], [7, 0, 0, "m", key, null, null]], 6);
    expect([r.coveredFrom, r.size]).toEqual([2, 1]);
  });

  test("the ring's columns wrap around and grow: it holds exactly the newest whole writes, with their bytes", () => {
    // Against a plain array model: writes of 1 to 3 events, keys and values in the write's buffer,
    // limits small enough that the columns wrap many times and grow from 4 up to limit + 1. With
    // limit 2, a write of 3 events is more than the limit: it is held whole until the next write.
    const types = ["added", "updated", "removed", "expired", "evicted", "merged"] as const;
    for (const [limit, maxBytes] of [[7, 1 << 20], [64, 1000], [3, 1 << 20], [2, 1 << 20]]) {
      const r = new EventRing(limit, 0, maxBytes);
      const model: Array<
        {
          seq: number;
          i: number;
          type: (typeof types)[number];
          key: string;
          value: string | undefined;
          old: string | undefined;
        }
      > = [];
      for (let seq = 1; seq <= 200; seq++) {
        const n = 1 + (seq % 3), text = Array.from({ length: n }, (_, i) => `k${seq}.${i}v${seq * 7 + i}`).join("");
        const buf = b(text);
        for (let i = 0, at = 0; i < n; i++) {
          const k = `k${seq}.${i}`, v = `v${seq * 7 + i}`;
          const type = types[(seq + i) % types.length];
          const withValue = type !== "removed";
          r.add(
            seq,
            i,
            type,
            "m",
            buf,
            at,
            k.length,
            withValue ? at + k.length : 0,
            withValue ? v.length : -1,
            b(`o${seq}`),
          );
          at += k.length + v.length;
          model.push({ seq, i, type, key: k, value: withValue ? v : undefined, old: `o${seq}` });
        }
        const held = r.since({ seq: r.coveredFrom, i: Number.MAX_SAFE_INTEGER }, seq, 1000).events;
        expect(held.length).toBe(r.size);
        expect(r.size).toBeLessThanOrEqual(Math.max(limit, n));
        // The newest write's events always stay, all of them (eviction counts what it added from them).
        expect(held.filter((e) => e.seq === seq).length).toBe(n);
        const dec = (x?: Uint8Array) => x && new TextDecoder().decode(x);
        expect(
          held.map((e) => ({
            seq: e.seq,
            i: e.i,
            type: e.type,
            key: dec(e.key)!,
            value: dec(e.value),
            old: dec(e.oldValue),
          })),
        )
          .toEqual(model.filter((e) => e.seq > r.coveredFrom));
        expect(r.bytes).toBe(held.reduce((s, e) => s + rawEventBytes(e), 0));
        // Reading from the middle of a write, and an upper bound.
        const mid = held[Math.floor(held.length / 2)];
        expect(r.since({ seq: mid.seq, i: mid.i }, seq - 1, 1000).events.map((e) => [e.seq, e.i])).toEqual(
          held.filter((e) => after(e.seq, e.i, mid) && e.seq <= seq - 1).map((e) => [e.seq, e.i]),
        );
      }
    }
  });

  test("a full listener queue drops events into a per-partition gap, delivered in order once there is room", () => {
    const q = new ListenerQueue<{ partition: number; seq: number }>(3);
    q.push({ partition: 1, seq: 1 });
    q.push({ partition: 2, seq: 1 });
    q.push({ partition: 1, seq: 2 });
    q.push({ partition: 1, seq: 3 }); // full: gap 3..3
    q.push({ partition: 2, seq: 2 }); // full: gap 2..2
    expect(q.dropped).toBe(2);
    expect(q.shift()).toEqual({ partition: 1, seq: 1 });
    expect(q.shift()).toEqual({ partition: 2, seq: 1 });
    q.push({ partition: 1, seq: 4 }); // room for the gap of 1, which absorbs later events until delivered
    const rest = [];
    for (let x = q.shift(); x; x = q.shift()) rest.push(x);
    expect(rest).toEqual([
      { partition: 1, seq: 2 },
      { type: "gap", partition: 1, fromSeq: 3, toSeq: 3 },
      { partition: 1, seq: 4 },
      { type: "gap", partition: 2, fromSeq: 2, toSeq: 2 },
    ]);
    expect(q.length).toBe(0);
  });
});
