/**
 * The pure parts of a split-brain merge: hybrid-logical-clock stamps, bounded expiring
 * tombstones (kept identically by every replica, carried in snapshots), and what each
 * merge policy keeps, as tables; then MergeEntries executed against a partition.
 */
import { describe, expect, test } from "bun:test";
import { HLC_TICK, nextStamp } from "../src/map/hlc.ts";
import {
  checkMergePolicy,
  type CustomMergePolicy,
  MergePolicyCode,
  mergePolicyCode,
  type MergeSide,
  mergeWins,
} from "../src/map/merge_policy.ts";
import { expiryDeadline } from "../src/map/expiry.ts";
import { executeOp, OpCode } from "../src/map/operations.ts";
import { PartitionData } from "../src/map/partition_data.ts";
import { Tombstones } from "../src/map/tombstones.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array | null | undefined) => (b ? new TextDecoder().decode(b) : undefined);

describe("nextStamp (hybrid logical clock)", () => {
  const rows: Array<[string, number, number, number]> = [
    ["wall clock ahead: the wall clock", 1000.7, 400, 1000],
    ["same millisecond: one logical step later", 1000, 1000, 1000 + HLC_TICK],
    ["clock behind the partition's history: above the history", 900, 1000.5, 1000.5 + HLC_TICK],
    ["fresh partition", 5, 0, 5],
  ];
  for (const [name, wall, last, want] of rows) test(name, () => expect(nextStamp(wall, last)).toBe(want));

  test("a thousand writes in one millisecond stay ordered and exact", () => {
    let last = 1_765_000_000_000;
    for (let i = 0; i < 1000; i++) {
      const s = nextStamp(1_765_000_000_000, last);
      expect(s).toBeGreaterThan(last);
      last = s;
    }
    expect(last).toBe(1_765_000_000_000 + 1000 * HLC_TICK);
  });
});

describe("Tombstones", () => {
  const k = (i: number) => enc(`k${i}`);
  test("remembers a removal until the key is written again", () => {
    const t = new Tombstones();
    t.add("m", k(1), 100);
    expect(t.get("m", k(1))).toBe(100);
    expect(t.get("other", k(1))).toBeUndefined();
    t.delete("m", k(1));
    expect(t.get("m", k(1))).toBeUndefined();
  });
  test("bounded: the oldest removal goes first", () => {
    const t = new Tombstones({ max: 3 });
    for (let i = 0; i < 5; i++) t.add("m", k(i), 100 + i);
    expect(t.size).toBe(3);
    expect(t.get("m", k(0))).toBeUndefined();
    expect(t.get("m", k(1))).toBeUndefined();
    expect(t.get("m", k(4))).toBe(104);
    expect(t.dropped).toBe(2);
  });
  test("expiring: removals older than ttlMs before the newest one go", () => {
    const t = new Tombstones({ ttlMs: 1000 });
    t.add("m", k(1), 100);
    t.add("m", k(2), 900);
    t.add("m", k(3), 1500); // 100 is now 1400 ms older than the newest
    expect(t.get("m", k(1))).toBeUndefined();
    expect(t.get("m", k(2))).toBe(900);
  });
});

describe("PartitionData keeps tombstones like records", () => {
  test("removal, clear and re-write; the same on a replica built from a snapshot", () => {
    const d = new PartitionData(0);
    let seq = 0;
    const write = (e: Parameters<PartitionData["applyEffect"]>[0]) => d.applyEntry({ seq: ++seq, e: [e] });
    write({ m: "a", k: enc("x"), v: enc("1"), at: 10 });
    write({ m: "a", k: enc("y"), v: enc("2"), at: 11 });
    write({ m: "a", k: enc("x"), v: null, at: 12 });
    write({ m: "b", k: enc("z"), v: enc("3"), at: 13 });
    write({ m: "b", clear: true, at: 14 });
    write({ m: "a", k: enc("w"), v: enc("4"), at: 15 });
    write({ m: "a", k: enc("w"), v: null, at: 16 });
    write({ m: "a", k: enc("w"), v: enc("5"), at: 17 });
    expect(d.tombstones.get("a", enc("x"))).toBe(12);
    expect(d.tombstones.get("b", enc("z"))).toBe(14);
    expect(d.tombstones.get("a", enc("w"))).toBeUndefined(); // written again
    expect(d.maxAt).toBe(17);

    const copy = new PartitionData(0);
    copy.install(d.snapshot(), 1);
    expect(copy.entryCount).toBe(d.entryCount);
    expect(copy.digest).toEqual(d.digest);
    expect(copy.tombstones.get("a", enc("x"))).toBe(12);
    expect(copy.tombstones.get("b", enc("z"))).toBe(14);
    expect(copy.maxAt).toBe(17);
  });
});

describe("mergeWins: what each policy keeps", () => {
  const v = (s: string, at: number): MergeSide => ({ value: enc(s), at });
  const gone = (at: number): MergeSide => ({ value: null, at });
  type Row = [
    string,
    MergeSide | undefined,
    MergeSide,
    Record<"latestUpdate" | "putIfAbsent" | "passThrough", boolean>,
  ];
  const rows: Row[] = [
    ["only the smaller side has it", undefined, v("B", 5), {
      latestUpdate: true,
      putIfAbsent: true,
      passThrough: true,
    }],
    ["smaller side newer", v("A", 5), v("B", 9), { latestUpdate: true, putIfAbsent: false, passThrough: true }],
    ["larger side newer", v("A", 9), v("B", 5), { latestUpdate: false, putIfAbsent: false, passThrough: true }],
    ["tie keeps the larger side", v("A", 5), v("B", 5), { latestUpdate: false, putIfAbsent: false, passThrough: true }],
    [
      "larger side removed it after the smaller side's write",
      gone(9),
      v("B", 5),
      { latestUpdate: false, putIfAbsent: false, passThrough: true },
    ],
    [
      "larger side removed it before the smaller side's write",
      gone(3),
      v("B", 5),
      { latestUpdate: true, putIfAbsent: true, passThrough: true },
    ],
    [
      "smaller side removed it after the larger side's write",
      v("A", 5),
      gone(9),
      { latestUpdate: true, putIfAbsent: false, passThrough: false },
    ],
    [
      "smaller side removed it before the larger side's write",
      v("A", 9),
      gone(5),
      { latestUpdate: false, putIfAbsent: false, passThrough: false },
    ],
    [
      "smaller side removed what the larger side never had",
      undefined,
      gone(5),
      { latestUpdate: false, putIfAbsent: false, passThrough: false },
    ],
  ];
  for (const [name, existing, merging, want] of rows) {
    for (const policy of ["latestUpdate", "putIfAbsent", "passThrough"] as const) {
      test(`${policy}: ${name}`, () =>
        expect(mergeWins(MergePolicyCode[policy], existing, merging)).toBe(want[policy]));
    }
  }
  test("discard sends nothing", () => expect(mergePolicyCode("discard")).toBeNull());

  test("a custom policy decides per key; without one configured nothing merges", () => {
    const longest: CustomMergePolicy = {
      name: "longest",
      mergingWins: (e, m) => m.value !== null && (e?.value == null || m.value.byteLength > e.value.byteLength),
    };
    expect(checkMergePolicy(longest)).toBe(longest);
    expect(mergePolicyCode(longest)).toBe(MergePolicyCode.custom);
    expect(mergeWins(MergePolicyCode.custom, v("A", 9), v("BBB", 1), longest)).toBe(true);
    expect(mergeWins(MergePolicyCode.custom, v("AAAA", 1), v("BBB", 9), longest)).toBe(false);
    expect(mergeWins(MergePolicyCode.custom, v("A", 9), v("BBB", 1))).toBe(false);
  });

  test("bad settings are refused", () => {
    expect(() => checkMergePolicy("newest")).toThrow(RangeError);
    expect(() => checkMergePolicy({ name: "", mergingWins: () => true })).toThrow(RangeError);
    expect(checkMergePolicy("putIfAbsent")).toBe("putIfAbsent");
  });
});

describe("MergeEntries against a partition", () => {
  function larger(): PartitionData {
    const d = new PartitionData(0);
    let seq = 0;
    for (
      const e of [
        { m: "m", k: enc("kept"), v: enc("A"), at: 100 },
        { m: "m", k: enc("removed"), v: enc("A"), at: 100 },
        { m: "m", k: enc("removed"), v: null, at: 300 },
        { m: "m", k: enc("stale"), v: enc("A"), at: 100 },
      ]
    ) d.applyEntry({ seq: ++seq, e: [e] });
    return d;
  }
  const es: Array<[string, Uint8Array, Uint8Array | null, number]> = [
    ["m", enc("kept"), enc("B"), 50], // older than the larger side's
    ["m", enc("removed"), enc("B"), 200], // the larger side removed it later
    ["m", enc("stale"), null, 200], // the smaller side removed it later
    ["m", enc("new"), enc("B"), 150], // only on the smaller side
  ];
  const run = (pol: number) => {
    const d = larger();
    const out = executeOp(d, OpCode.MergeEntries, { m: "", pol, es }, 400);
    d.applyEntry({ seq: d.seq + 1, e: out.effects });
    const get = (k: string) => dec(d.maps.get("m")?.get(enc(k))?.value);
    return { kept: get("kept"), removed: get("removed"), stale: get("stale"), new: get("new"), applied: out.result };
  };
  test("latestUpdate: a removed key stays removed; a later removal on the smaller side wins", () => {
    expect(run(MergePolicyCode.latestUpdate)).toEqual({
      kept: "A",
      removed: undefined,
      stale: undefined,
      new: "B",
      applied: 2,
    });
  });
  test("putIfAbsent: only the key the larger side never had is added", () => {
    expect(run(MergePolicyCode.putIfAbsent)).toEqual({
      kept: "A",
      removed: undefined,
      stale: "A",
      new: "B",
      applied: 1,
    });
  });
  test("passThrough: every entry of the smaller side wins, its removals do not travel", () => {
    expect(run(MergePolicyCode.passThrough)).toEqual({ kept: "B", removed: "B", stale: "A", new: "B", applied: 3 });
  });
  test("a merged entry keeps its own stamp; the merged removal leaves a tombstone", () => {
    const d = larger();
    const out = executeOp(d, OpCode.MergeEntries, { m: "", pol: MergePolicyCode.latestUpdate, es }, 400);
    d.applyEntry({ seq: d.seq + 1, e: out.effects });
    expect(d.maps.get("m")!.get(enc("new"))!.updatedAt).toBe(150);
    expect(d.tombstones.get("m", enc("stale"))).toBe(200);
  });
  test("a merged entry keeps its expiry state: TTL from its last update, max-idle from its last access; one already expired is not merged", () => {
    const d = larger();
    const withExpiry: Array<[string, Uint8Array, Uint8Array | null, number, number, number, number]> = [
      ["m", enc("ttl"), enc("B"), 150, 1000, 0, 150], // expires at 1150
      ["m", enc("idle"), enc("B"), 150, 0, 500, 350], // last read at 350: expires at 850
      ["m", enc("gone"), enc("B"), 150, 100, 0, 150], // expired at 250, before the merge at 400
    ];
    const out = executeOp(d, OpCode.MergeEntries, { m: "", pol: MergePolicyCode.latestUpdate, es: withExpiry }, 400);
    expect(out.result).toBe(2);
    d.applyEntry({ seq: d.seq + 1, e: out.effects });
    const ttl = d.maps.get("m")!.get(enc("ttl"))!;
    const idle = d.maps.get("m")!.get(enc("idle"))!;
    expect([ttl.ttlMs, ttl.updatedAt, expiryDeadline(ttl, 0)]).toEqual([1000, 150, 1150]);
    expect([idle.maxIdleMs, idle.lastAccessAt, expiryDeadline(idle, 0)]).toEqual([500, 350, 850]);
    expect(d.maps.get("m")!.get(enc("gone"))).toBeUndefined();
    // A backup applying the same effects holds the same expiry state (what a promoted backup expires by).
    const backup = larger();
    backup.applyEntry({ seq: backup.seq + 1, e: out.effects });
    expect(expiryDeadline(backup.maps.get("m")!.get(enc("idle"))!, 0)).toBe(850);
  });
});
