/**
 * The packed snapshot entries (snapshot_codec.ts): what is packed unpacks to the same
 * entries, and malformed bytes (truncated, oversize lengths and counts, bad varints, flags,
 * map indexes, stamps, map names, trailing bytes, random corruption) are refused with a
 * reason, never thrown, and never give an entry the per-entry check of kind 104 refuses.
 */
import { describe, expect, test } from "bun:test";
import { Random } from "../src/core/random.ts";
import { isSnapshotEntry, type MapSnapshotPacked } from "../src/map/messages.ts";
import type { SnapshotEntry } from "../src/map/partition_data.ts";
import { deflateRawSync } from "node:zlib";
import { deflatePacked, MAX_PACKED_MAPS, packEntries, unpackEntries } from "../src/map/snapshot_codec.ts";
import { Kind } from "../src/wire/kinds.ts";
import type { Message } from "../src/wire/message.ts";
import { GridHarness, incompleteReplication, putPadded } from "./support/grid_harness.ts";

const MAPS = ["m", "orders", "é-ü", "名前", "x".repeat(256)];

function bytes(rng: Random, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = rng.int(256);
  return b;
}

function stamp(rng: Random): number {
  return rng.pick([0, 1.7e12 + rng.int(1_000_000) + rng.int(1024) / 1024, Number.MAX_SAFE_INTEGER, 12.5]);
}

function entry(rng: Random, big = false): SnapshotEntry {
  const created = stamp(rng);
  const updated = rng.chance(0.5) ? created : stamp(rng);
  const tombstone = rng.chance(0.1);
  const base: [string, Uint8Array, Uint8Array, number, number, number] = [
    rng.pick(MAPS),
    bytes(rng, rng.pick([0, 1, 7, 16, 17, 300])),
    tombstone ? new Uint8Array(0) : bytes(rng, rng.pick([0, 5, 102, 127, 128, big ? 20_000 : 300])),
    tombstone ? 0 : rng.pick([1, 2, 127, 128, 2 ** 31, Number.MAX_SAFE_INTEGER]),
    created,
    updated,
  ];
  if (!rng.chance(0.3)) return base;
  const access = rng.chance(0.5) ? updated : stamp(rng);
  return [...base, rng.pick([0, 1000, 2 ** 40]), rng.pick([0, 60_000, Number.MAX_SAFE_INTEGER]), access];
}

function entries(rng: Random, n: number, big = false): SnapshotEntry[] {
  return Array.from({ length: n }, () => entry(rng, big));
}

/** Entries as plain values, for comparison (views and copies of equal bytes compare equal). */
const plain = (es: readonly SnapshotEntry[]) =>
  es.map((e) => e.map((x) => x instanceof Uint8Array ? Buffer.from(x).toString("hex") : x));

function unpacked(b: Uint8Array): SnapshotEntry[] {
  const r = unpackEntries(b);
  if (typeof r === "string") throw new Error(`refused: ${r}`);
  return r;
}

/** `b` with `at` bytes replaced by `insert` (for hand-made malformations). */
function splice(b: Uint8Array, at: number, remove: number, insert: number[]): Uint8Array {
  return Uint8Array.from([...b.subarray(0, at), ...insert, ...b.subarray(at + remove)]);
}

describe("packed snapshot entries", () => {
  test("round trip: 300 random chunks of 0–60 entries (maps, tombstones, expiry, stamps, sizes) unpack equal", () => {
    const rng = new Random(7);
    for (let round = 0; round < 300; round++) {
      const es = entries(rng, rng.int(61), round % 10 === 0);
      const got = unpacked(packEntries(es));
      expect(plain(got)).toEqual(plain(es));
      for (const e of got) expect(isSnapshotEntry(e)).toBe(true);
    }
  });

  test("a range of the entries packs only that range; tombstone keys are copies, other keys and values views", () => {
    const rng = new Random(8);
    const es = entries(rng, 50);
    const b = packEntries(es, 10, 35);
    const got = unpacked(b);
    expect(plain(got)).toEqual(plain(es.slice(10, 35)));
    for (const e of got) {
      expect(e[2].buffer).toBe(b.buffer);
      if (e[3] === 0) expect(e[1].buffer).not.toBe(b.buffer);
      else expect(e[1].buffer).toBe(b.buffer);
    }
    expect(unpacked(packEntries([]))).toEqual([]);
  });

  test("a typical entry (one map, 7-byte key, 102-byte value, no expiry) packs in 122 bytes", () => {
    const key = new Uint8Array(7), value = new Uint8Array(102);
    const es: SnapshotEntry[] = Array.from(
      { length: 100 },
      (_, i) => ["formation", key, value, 1, 1.7e12 + i, 1.7e12 + i],
    );
    const b = packEntries(es);
    expect(b.byteLength).toBe(1 + 1 + 1 + "formation".length + 1 + 100 * 122);
  });

  test("every truncation of packed chunks is refused", () => {
    const rng = new Random(9);
    for (let round = 0; round < 20; round++) {
      const b = packEntries(entries(rng, 1 + rng.int(8)));
      for (let n = 0; n < b.byteLength; n++) {
        expect(typeof unpackEntries(b.subarray(0, n))).toBe("string");
      }
    }
  });

  test("oversize lengths and counts are refused before anything is allocated or read", () => {
    const key = Uint8Array.of(1, 2, 3), value = Uint8Array.of(4, 5);
    const b = packEntries([["m", key, value, 1, 10, 10]]);
    // Layout: 01 | 01 01 'm' | 01 | flags 02, map 00, key 03 1 2 3, value 02 4 5, version 01, f64.
    expect([...b.subarray(0, 12)]).toEqual([1, 1, 1, 109, 1, 2, 0, 3, 1, 2, 3, 2]);
    const refused = (x: Uint8Array, why: RegExp) => expect(unpackEntries(x)).toMatch(why);
    refused(splice(b, 7, 1, [4]), /exceeds|truncated/); // key length one past what is there
    refused(splice(b, 7, 1, [0xff, 0xff, 0xff, 0x7f]), /exceeds/); // key length 2^28 - 1
    refused(splice(b, 11, 1, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f]), /above 2\^53|exceeds/); // value
    refused(splice(b, 4, 1, [0xff, 0xff, 0xff, 0xff, 0x0f]), /cannot fit/); // 2^32 - 1 entries
    refused(splice(b, 4, 1, [2]), /cannot fit|truncated/); // one entry more than there is
    refused(splice(b, 1, 1, [0xff, 0x7f]), new RegExp(`exceed ${MAX_PACKED_MAPS}`)); // 16,383 map names
    refused(splice(b, 2, 1, [0x7f]), /exceeds/); // map name length past the end
    refused(splice(b, 1, 3, [1, 0x82, 0x02, ...new Array(258).fill(120)]), /exceeds 256/); // 258-char map name
    refused(splice(b, 1, 3, [1, 2, 0xc3, 0x28]), /not UTF-8/);
  });

  test("bad varints, flags, map indexes, stamps, formats and trailing bytes are refused", () => {
    const b = packEntries([["m", Uint8Array.of(1), Uint8Array.of(2), 1, 10, 10]]);
    // 01 | 01 01 'm' | 01 | flags 02 | map 00 | key 01 01 | value 01 02 | version 01 | f64 @ 12
    const refused = (x: Uint8Array, why: RegExp) => expect(unpackEntries(x)).toMatch(why);
    expect(unpacked(b)).toHaveLength(1);
    refused(splice(b, 0, 1, [3]), /format/);
    refused(new Uint8Array(0), /format/);
    refused(splice(b, 11, 1, [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]), /longer than 8/);
    refused(splice(b, 11, 1, [0x81, 0x00]), /overlong/);
    refused(splice(b, 11, 1, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]), /above 2\^53/);
    refused(splice(b, 5, 1, [0x08]), /flags/);
    refused(splice(b, 5, 1, [0x06]), /lastAccessAt flag without expiry/);
    refused(splice(b, 6, 1, [1]), /map index 1 of 1/);
    for (const bad of [-1, NaN, Infinity, 2 ** 53, -0.5]) {
      const f = new Uint8Array(8);
      new DataView(f.buffer).setFloat64(0, bad, true);
      refused(splice(b, 12, 8, [...f]), /stamp/);
    }
    refused(Uint8Array.from([...b, 0]), /1 bytes after the last entry/);
    expect(unpackEntries("not bytes" as unknown as Uint8Array)).toMatch(/not bytes/);
    expect(unpackEntries(new Uint8Array(9 * 1024 * 1024))).toMatch(/size limit/);
  });

  test("random corruption never throws, and whatever it accepts passes the per-entry check", () => {
    const rng = new Random(10);
    let accepted = 0, refused = 0;
    for (let round = 0; round < 3000; round++) {
      const b = packEntries(entries(rng, 1 + rng.int(5))).slice();
      for (let k = 1 + rng.int(3); k > 0; k--) b[rng.int(b.byteLength)] = rng.int(256);
      const r = unpackEntries(b);
      if (typeof r === "string") refused++;
      else {
        accepted++;
        for (const e of r) expect(isSnapshotEntry(e)).toBe(true);
      }
    }
    // Flipped key, value or stamp bytes still make valid entries (the digest catches those).
    expect(accepted).toBeGreaterThan(100);
    expect(refused).toBeGreaterThan(100);
  });

  test("compressed (format 2): equal entries back; only when it saves an eighth; bad streams, bombs and nesting refused", () => {
    const rng = new Random(12);
    const v = new TextEncoder().encode(JSON.stringify({ name: "a user", tags: ["x", "y"], score: 0.5 }));
    const es: SnapshotEntry[] = Array.from(
      { length: 200 },
      (_, i) => ["m", Uint8Array.of(i), v, 1, 1.7e12 + i, 1.7e12 + i],
    );
    const packed = packEntries(es);
    const z = deflatePacked(packed)!;
    expect(z[0]).toBe(2);
    expect(z.byteLength).toBeLessThan(packed.byteLength / 4);
    expect(plain(unpacked(z))).toEqual(plain(es));
    // Random values do not compress: sent as they are.
    const noisy = packEntries(Array.from({ length: 50 }, () => ["m", bytes(rng, 8), bytes(rng, 200), 1, 5, 5]));
    expect(deflatePacked(noisy)).toBeNull();
    const refused = (x: Uint8Array, why: RegExp) => expect(unpackEntries(x)).toMatch(why);
    for (let n = 1; n < z.byteLength; n += 7) expect(typeof unpackEntries(z.subarray(0, n))).toBe("string");
    refused(Uint8Array.of(2, 0xff, 0xff, 0xff), /do not inflate/);
    // 9 MiB of zeros inflate past the message size limit: refused, not allocated.
    refused(Uint8Array.from([2, ...deflateRawSync(new Uint8Array(9 << 20))]), /do not inflate/);
    refused(Uint8Array.from([2, ...deflateRawSync(z)]), /inflate to compressed/);
    refused(Uint8Array.from([2, ...deflateRawSync(Uint8Array.from([...packed, 0]))]), /after the last entry/);
    let accepted = 0;
    for (let round = 0; round < 500; round++) {
      const b = z.slice();
      b[1 + rng.int(b.byteLength - 1)] = rng.int(256);
      const r = unpackEntries(b);
      if (typeof r !== "string") {
        accepted++;
        for (const e of r) expect(isSnapshotEntry(e)).toBe(true);
      }
    }
    expect(accepted).toBeLessThan(500);
  });

  test("the sender refuses to pack what no receiver accepts", () => {
    const k = new Uint8Array(1);
    expect(() => packEntries([["m", k, k, -1, 1, 1]])).toThrow(RangeError);
    expect(() => packEntries([["m", k, k, 1.5, 1, 1]])).toThrow(RangeError);
    expect(() => packEntries([["m", k, k, 1, -1, -1]])).toThrow(RangeError);
    expect(() => packEntries([["m", k, k, 1, 1, NaN]])).toThrow(RangeError);
    expect(() => packEntries([["m", k, k, 1, 1, 1, -5, 0, 1]])).toThrow(RangeError);
    expect(() => packEntries([["x".repeat(257), k, k, 1, 1, 1]])).toThrow(RangeError);
  });
});

describe("malformed packed chunks on the network", () => {
  test(
    "each chunk's first transmission arrives corrupted: every one is dropped, counted, unacknowledged and resent; the new backup ends equal to the primary",
    async () => {
      const P = 8;
      const h = new GridHarness({
        seed: 21,
        config: { partitionCount: P, backupCount: 1, map: { snapshotChunkBytes: 2048 } },
      });
      const a = await h.add("a");
      await h.run(1000);
      const entries = await putPadded(h, "a", 600, 60);
      // a's sends to the joiner: the first copy of each packed chunk is cut short or gets an unknown format byte.
      const seen = new Set<string>();
      let corrupted = 0;
      const send = a.transport.send.bind(a.transport);
      a.transport.send = (to: string, msg: Message) => {
        if (to !== "b" || msg.t !== Kind.MapSnapshotPacked) return send(to, msg);
        const c = msg as MapSnapshotPacked & Message;
        const id = `${c.p}|${c.sid}|${c.i}`;
        if (seen.has(id)) return send(to, msg);
        seen.add(id);
        corrupted++;
        const data = corrupted % 2
          ? c.data.subarray(0, c.data.byteLength - 1)
          : Uint8Array.from([9, ...c.data.subarray(1)]);
        return send(to, { ...c, data });
      };
      await h.add("b");
      const done = await h.runUntil(() => incompleteReplication(h, P) === null, 60_000);
      expect(done).toBe(true);
      const b = h.members.get("b")!.grid.maps.counters;
      expect(corrupted).toBeGreaterThan(2 * P); // several chunks per partition
      expect(b.snapshotChunksInvalid).toBe(corrupted);
      expect(a.grid.maps.counters.snapshotChunksResent).toBeGreaterThanOrEqual(corrupted);
      expect(h.handlerErrors).toEqual([]);
      // The backup's copy serves the data once the primary is gone.
      h.crash("a");
      await h.run(3000);
      const got = await h.until(h.members.get("b")!.grid.getMap<string, string>("m").getAll(entries.map(([k]) => k)));
      expect(entries.filter(([k, v]) => got.get(k) !== v).length).toBe(0);
      h.stop();
    },
    60_000,
  );
});
