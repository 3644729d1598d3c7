/**
 * RecordStore (src/map/record_store.ts) against a plain `Map` model: every number a record
 * holds reads back exactly, whether its narrow uint32 field holds it (ticks from updatedAt,
 * counts below 2³²) or its column went to float64, through overwrites, removals, hole reuse,
 * rehashes, arena compactions, writes through refs and writes to a slot just looked up; and the columns stay narrow for what
 * fits.
 */
import { describe, expect, test } from "bun:test";
import { Random } from "../src/core/random.ts";
import { HLC_TICK } from "../src/map/hlc.ts";
import { keyId, type MapRecord, RecordStore } from "../src/map/record_store.ts";
import type { EntrySink } from "../src/map/snapshot_codec.ts";

const te = new TextEncoder();
const NOW = 1_765_000_000_000;

interface Model {
  key: Uint8Array;
  value: Uint8Array;
  version: number;
  createdAt: number;
  updatedAt: number;
  lastAccessAt: number;
  hits: number;
  ttl: number;
  mi: number;
}

/** Numbers of one write: mostly what a partition writes (stamps in ticks, reads soon after), sometimes what does not fit 32 bits. */
function numbers(rng: Random): Omit<Model, "key" | "value"> {
  const pick = <T>(xs: T[]) => xs[Math.floor(rng.next() * xs.length)];
  const updatedAt = NOW + Math.floor(rng.next() * 1e6) + pick([0, 0, HLC_TICK, 5 * HLC_TICK]);
  const back = pick([0, 0, 0, 7 * HLC_TICK, 3_600_000, 0xffffffff * HLC_TICK, 2 ** 32 * HLC_TICK, 90 * 86_400_000, -1]);
  const ahead = pick([0, 0, 0, 1, 12.25, 0xffffffff * HLC_TICK, 2 ** 32 * HLC_TICK, 0.1, 1e-9, -HLC_TICK]);
  return {
    version: pick([1, 2, 1000, 0xffffffff, 2 ** 32, 2 ** 40 + 1]),
    createdAt: updatedAt - back,
    updatedAt,
    lastAccessAt: updatedAt + ahead,
    hits: pick([0, 1, 17, 0xffffffff, 2 ** 33]),
    ttl: pick([0, 0, 0, 500]),
    mi: pick([0, 0, 250.5]),
  };
}

function expectRecord(s: RecordStore, m: Model): void {
  const r = s.get(m.key)!;
  expect(r).toBeDefined();
  expect(r.value).toEqual(m.value);
  expect([r.version, r.createdAt, r.updatedAt, r.lastAccessAt, r.hits, r.ttlMs ?? 0, r.maxIdleMs ?? 0]).toEqual([
    m.version,
    m.createdAt,
    m.updatedAt,
    m.lastAccessAt,
    m.hits,
    m.ttl,
    m.mi,
  ]);
}

/** Entries as packInto writes them: [key, value, version, createdAt, updatedAt, ttl, mi, lastAccessAt]. */
function packed(s: RecordStore): unknown[][] {
  const out: unknown[][] = [];
  const sink = {
    entry(_m, ka, ko, kl, va, vo, vl, version, createdAt, updatedAt, ttl, mi, lastAccessAt) {
      out.push([ka.slice(ko, ko + kl), va.slice(vo, vo + vl), version, createdAt, updatedAt, ttl, mi, lastAccessAt]);
    },
  } as EntrySink;
  s.packInto(sink);
  return out;
}

describe("record store", () => {
  test("every number reads back exactly through writes, removals, compactions and refs (model check)", () => {
    for (const seed of [1, 2, 3]) {
      const rng = new Random(seed);
      const s = new RecordStore("m");
      const model = new Map<string, Model>();
      for (let i = 0; i < 6000; i++) {
        // Same-length keys that differ in their last bytes (the probe compares those first), an empty key, longer ones.
        const n = Math.floor(rng.next() * 400);
        const key = n === 0
          ? new Uint8Array(0)
          : te.encode(n % 50 === 1 ? `long-key-${n}-`.repeat(3) : `key-${String(n).padStart(6, "0")}`);
        const id = keyId(key);
        const op = rng.next();
        if (op < 0.25) {
          const old = s.getId(id);
          // By id or by the key's bytes.
          expect(s.delete(rng.next() < 0.5 ? id : key.slice())?.version).toBe(old?.version);
          model.delete(id);
          expect(s.has(id)).toBe(false);
        } else if (op < 0.4 && model.has(id)) {
          // Reads and hits written through a ref, as the primary's housekeeping does.
          const r = s.getId(id)!, m = model.get(id)!;
          const t = rng.next() < 0.5 ? m.lastAccessAt + 3 * HLC_TICK : m.lastAccessAt + 1234.567;
          r.lastAccessAt = t;
          r.hits = r.hits + 1;
          m.lastAccessAt = t;
          m.hits++;
        } else {
          const value = te.encode("v".repeat(Math.floor(rng.next() * 300)));
          const m: Model = { key, value, ...numbers(rng) };
          const before = s.getId(id);
          const how = rng.next();
          if (how < 0.35) {
            const rec: MapRecord = { ...m, slot: -1 };
            if (m.ttl) rec.ttlMs = m.ttl;
            if (m.mi) rec.maxIdleMs = m.mi;
            s.set(id, rec);
          } else if (how < 0.7) {
            // A write to the slot `get` found (as a partition applies a write), or -1 for a new key.
            const at = s.get(key)?.slot ?? -1;
            s.put(key, value, m.version, m.createdAt, m.updatedAt, m.lastAccessAt, m.ttl, m.mi, m.hits, at);
          } else {
            s.put(key, value, m.version, m.createdAt, m.updatedAt, m.lastAccessAt, m.ttl, m.mi);
            m.hits = 0; // a put (installing a snapshot) starts at 0 hits
          }
          // What an earlier get returned keeps the old record's numbers.
          if (before) expect(before.version).toBe(model.get(id)!.version);
          model.set(id, m);
        }
        if (i % 500 === 0) { for (const m of model.values()) expectRecord(s, m); }
      }
      expect(s.size).toBe(model.size);
      for (const m of model.values()) expectRecord(s, m);
      const seen = new Set<string>();
      for (const r of s.values()) {
        seen.add(r.id);
        expect(s.atSlot(r.slot)!.version).toBe(r.version);
      }
      expect(seen.size).toBe(model.size);
      const want = [...s.values()].map((r) => {
        const m = model.get(r.id)!;
        return [m.key, m.value, m.version, m.createdAt, m.updatedAt, m.ttl, m.mi, m.lastAccessAt];
      });
      expect(packed(s)).toEqual(want);
    }
  });

  test("numbers that fit take 36 bytes per slot; one that does not widens only its own column, until the store empties", () => {
    const s = new RecordStore("m");
    const put = (i: number, over: Partial<Model> = {}) => {
      const key = te.encode(`k${i}`);
      const n = {
        version: 1,
        createdAt: NOW,
        updatedAt: NOW + 10 * HLC_TICK,
        lastAccessAt: NOW + 11,
        hits: 3,
        ...over,
      };
      s.put(key, te.encode("v"), n.version, n.createdAt, n.updatedAt, n.lastAccessAt, 0, 0);
      return n;
    };
    for (let i = 0; i < 1000; i++) put(i);
    const narrow = s.footprint().columns;
    const capacity = narrow / 36;
    expect(Number.isInteger(capacity)).toBe(true);
    expect(capacity).toBeGreaterThanOrEqual(1000);
    expect(capacity).toBeLessThan(1000 * 1.3);
    // A read by a wall clock with a finer fraction than the hybrid clock's ticks: lastAccessAt goes to float64.
    const r = s.get(te.encode("k5"))!;
    // (A double near NOW is a multiple of 2⁻¹² ms: this one is not of the 2⁻¹⁰ ms ticks.)
    r.lastAccessAt = NOW + 12 + 2 ** -12;
    expect(s.footprint().columns).toBe(narrow + capacity * 8);
    expect(s.get(te.encode("k5"))!.lastAccessAt).toBe(NOW + 12 + 2 ** -12);
    expect(s.get(te.encode("k6"))!.lastAccessAt).toBe(NOW + 11);
    // A record created long before its update: createdAt too.
    const old = put(7, { createdAt: NOW - 90 * 86_400_000 });
    expect(s.footprint().columns).toBe(narrow + capacity * 16);
    expect(s.get(te.encode("k7"))!.createdAt).toBe(old.createdAt);
    expect(s.get(te.encode("k8"))!.createdAt).toBe(NOW);
    for (let i = 0; i < 1000; i++) s.delete(keyId(te.encode(`k${i}`)));
    put(0);
    expect(s.footprint().columns).toBe(narrow);
  });
});
