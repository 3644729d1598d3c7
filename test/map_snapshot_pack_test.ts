/**
 * Snapshot chunks packed straight from the record stores (PartitionData.snapshotInto with an
 * EntryPacker, what SnapshotTransfers.create sends) are byte for byte what packing the
 * entries of `snapshot()` gives, cut at the same entries; and installing them gives the same
 * content and digest, also over a copy that held other data. RecordStore.put and reserve
 * keep every record readable through replacements and arena compactions.
 */
import { describe, expect, test } from "bun:test";
import { Random } from "../src/core/random.ts";
import { PartitionData, type SnapshotEntry } from "../src/map/partition_data.ts";
import { RecordStore } from "../src/map/record_store.ts";
import { EntryPacker, packEntries, unpackEntries } from "../src/map/snapshot_codec.ts";

const MAPS = ["a", "orders", "名前"];

function bytes(rng: Random, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = rng.int(256);
  return b;
}

/** A copy with records of several maps: updates, expiry, touches, removals (tombstones) and a cleared map. */
function filled(seed: number, writes: number): PartitionData {
  const rng = new Random(seed);
  const d = new PartitionData(seed % 271);
  const keys = Array.from({ length: 80 }, (_, i) => bytes(rng, 1 + (i % 30)));
  let at = 1.7e12;
  for (let i = 0; i < writes; i++) {
    at += rng.int(3);
    const m = rng.pick(MAPS), k = rng.pick(keys);
    const r = rng.int(10);
    if (r === 0) d.applyEffect({ m, k, v: null, at });
    else if (r === 1) d.applyEffect({ m, k, at, touch: true });
    else if (r === 2 && i === writes >> 1) d.applyEffect({ m: "orders", clear: true, at });
    else {
      const v = bytes(rng, rng.pick([0, 5, 100, 400]));
      d.applyEffect({
        m,
        k,
        v,
        at,
        ttl: rng.chance(0.3) ? 1000 + rng.int(5) : undefined,
        mi: rng.chance(0.2) ? 500 : undefined,
      });
    }
  }
  return d;
}

/** The old cut: a chunk ends once its keys, values and 24 bytes per entry (40 with an expiry) reach `chunkBytes`. */
function referenceChunks(entries: SnapshotEntry[], chunkBytes: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let from = 0, bytes = 0;
  for (let i = 0; i < entries.length; i++) {
    bytes += entries[i][1].byteLength + entries[i][2].byteLength + (entries[i].length === 9 ? 40 : 24);
    if (bytes >= chunkBytes) (out.push(packEntries(entries, from, i + 1)), from = i + 1, bytes = 0);
  }
  out.push(packEntries(entries, from, entries.length));
  return out;
}

function packed(d: PartitionData, chunkBytes: number, keep?: (m: string) => boolean): Uint8Array[] {
  const p = new EntryPacker(chunkBytes);
  d.snapshotInto(p, keep);
  p.cut();
  return p.chunks;
}

function installed(
  d: PartitionData,
  chunks: Uint8Array[],
  keep?: (m: string) => boolean,
  into = new PartitionData(d.p),
) {
  const entries: SnapshotEntry[] = [];
  for (const c of chunks) {
    const es = unpackEntries(c);
    if (typeof es === "string") throw new Error(es);
    entries.push(...es);
  }
  into.install({ ...d.snapshotMeta(keep), entries }, 1);
  return into;
}

describe("snapshots packed from the record stores", () => {
  test("chunks equal packing snapshot() entries, cut alike, for every chunk size and map filter", () => {
    for (let seed = 1; seed <= 12; seed++) {
      const d = filled(seed, 40 + seed * 60);
      for (const keep of [undefined, (m: string) => m !== "orders"]) {
        const entries = d.snapshot(keep).entries;
        expect(entries.some((e) => e[3] === 0)).toBe(true);
        for (const chunkBytes of [Infinity, 2000, 300, 1]) {
          expect(packed(d, chunkBytes, keep)).toEqual(referenceChunks(entries, chunkBytes));
        }
      }
    }
  });

  test("installed chunks give the same records, tombstones and digest, also over a copy holding other data", () => {
    for (let seed = 1; seed <= 12; seed++) {
      const d = filled(seed, 40 + seed * 60);
      const copy = installed(d, packed(d, 700));
      expect(copy.digest).toEqual(d.digest);
      expect(copy.snapshot()).toEqual(d.snapshot());
      const keep = (m: string) => m !== "orders";
      const over = installed(d, packed(d, 700, keep), keep, filled(seed + 100, 300));
      expect(over.digest).toEqual(d.digestOf(keep));
      expect(over.snapshot()).toEqual(d.snapshot(keep));
    }
  });

  test("RecordStore.put replaces in place and keeps every record through compactions; reserve keeps them", () => {
    const rng = new Random(3);
    const s = new RecordStore("m");
    const want = new Map<string, Uint8Array>();
    s.reserve(10, 100);
    for (let i = 0; i < 5000; i++) {
      const k = Uint8Array.of(i % 97, (i * 7) % 13);
      const v = bytes(rng, rng.pick([0, 3, 300]));
      s.put(k, v, 1 + i, 5, 6 + i, 7 + i, i % 3, 0);
      want.set(String(k), v);
      if (i === 2500) s.reserve(200, 60_000);
    }
    expect(s.size).toBe(want.size);
    let bytesSum = 0;
    for (const r of s.values()) {
      expect(r.value).toEqual(want.get(String(r.key))!);
      expect(s.get(r.key)!.version).toBe(r.version);
      bytesSum += r.klen + r.vlen + 64;
    }
    expect(s.bytes).toBe(bytesSum);
    expect(s.expiring).toBe([...s.values()].filter((r) => r.ttlMs).length);
  });
});
