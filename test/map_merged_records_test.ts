/**
 * What a split-brain merge may write into the grid's own maps (src/map/merged_records.ts): every
 * record an honest side's lock, queue and topic ops leave merges; records no op could have left,
 * or whose counters lie where `+ 1` stops counting, are refused and counted.
 */
import { describe, expect, test } from "bun:test";
import { executeLockOp, LOCK_HIGH_WATER, lockMapOf } from "../src/map/locks.ts";
import { MAX_EXPIRY_MS } from "../src/map/map_config.ts";
import { keepPlausibleMerged, MAX_MERGED_COUNT } from "../src/map/merged_records.ts";
import { OpCode, type OpOutcome } from "../src/map/operations.ts";
import { type Effect, PartitionData } from "../src/map/partition_data.ts";
import { executeQueueOp, queueMapOf } from "../src/map/queue_ops.ts";
import { executeTopicOp, topicMapOf } from "../src/map/topic_ops.ts";
import { RING_META } from "../src/map/internal_records.ts";
import { encodeValue } from "../src/wire/codec.ts";

const WALL = 1_700_000_000_000;

/** The records of `d`'s maps as a merge from it carries them. */
function recordsOf(d: PartitionData): Effect[] {
  const out: Effect[] = [];
  for (const [m, s] of d.maps) for (const r of s.values()) out.push({ m, k: r.key, v: r.value, at: r.updatedAt });
  return out;
}

describe("keepPlausibleMerged", () => {
  test("an honest side's lock, queue and topic records all merge", () => {
    const d = new PartitionData(0);
    let seq = 0, at = WALL - 10_000;
    const apply = (o: OpOutcome) => d.applyEntry({ seq: ++seq, c: `c${seq}`, r: o.result, e: o.effects });
    const k = encodeValue("k");
    const all = () => true;
    // A lock held with the longest lease, one waiter; another key locked and released (high-water mark).
    apply(executeLockOp(d, OpCode.LockAcquire, { m: "m", k, h: "a", l: MAX_EXPIRY_MS, q: false }, ++at, "n1", all));
    apply(executeLockOp(d, OpCode.LockAcquire, { m: "m", k, h: "b", l: 5000, q: true }, ++at, "n2", all));
    const k2 = encodeValue("k2");
    apply(executeLockOp(d, OpCode.LockAcquire, { m: "m", k: k2, h: "", l: 0, q: false }, ++at, "n1", all));
    apply(executeLockOp(d, OpCode.LockRelease, { m: "m", k: k2, h: "" }, ++at, "n1", all));
    for (let i = 0; i < 3; i++) apply(executeQueueOp(d, OpCode.QueueOffer, { m: "q", v: encodeValue(i) }, ++at));
    apply(executeQueueOp(d, OpCode.QueuePoll, { m: "q" }, ++at));
    for (let i = 0; i < 5; i++) {
      apply(executeTopicOp(d, OpCode.TopicPublish, { m: "t", v: encodeValue(i), n: 2 }, ++at));
    }
    const merged = recordsOf(d);
    expect(merged.map((e) => e.m).sort()).toEqual([
      ...Array(2).fill(lockMapOf("m")), // k's record and the high-water mark
      ...Array(3).fill(queueMapOf("q")), // two items and the meta record
      ...Array(3).fill(topicMapOf("t")),
    ].sort());
    const counters = { mergedImplausible: 0 };
    expect(keepPlausibleMerged(new PartitionData(0), merged, WALL, counters)).toEqual(merged);
    expect(counters.mergedImplausible).toBe(0);
  });

  test("counters past 2^52, records of no op's shape and endless leases are refused and counted", () => {
    const lm = lockMapOf("m"), k = encodeValue("k");
    const e = (m: string, key: Uint8Array, v: unknown): Effect => ({ m, k: key, v: encodeValue(v), at: WALL });
    const lock = (t: number, x = 0) => ({ t, o: ["n1", ""], x, w: [] });
    const refused = [
      e(lm, LOCK_HIGH_WATER, Number.MAX_SAFE_INTEGER),
      e(lm, LOCK_HIGH_WATER, MAX_MERGED_COUNT + 1),
      e(lm, LOCK_HIGH_WATER, "10"),
      e(lm, k, lock(MAX_MERGED_COUNT + 1)),
      e(lm, k, { ...lock(1), t: 1.5 }),
      e(lm, k, lock(1, WALL + 60_000 + MAX_EXPIRY_MS + 1)),
      e(lm, k, { ...lock(1), w: [["n2", "", MAX_EXPIRY_MS + 1, WALL]] }),
      e(queueMapOf("q"), RING_META, { h: 0, t: MAX_MERGED_COUNT + 1, c: 10 }),
      e(queueMapOf("q"), RING_META, { h: 5, t: 4, c: 10 }),
      e(topicMapOf("t"), RING_META, { h: 0, t: 4, c: 0 }),
      { m: lm, k, v: new Uint8Array([0x1c]), at: WALL }, // not CBOR
    ];
    const kept = [
      e(lm, LOCK_HIGH_WATER, MAX_MERGED_COUNT),
      e(queueMapOf("q"), RING_META, { h: MAX_MERGED_COUNT, t: MAX_MERGED_COUNT, c: 10 }),
      e(queueMapOf("q"), encodeValue(Number.MAX_SAFE_INTEGER), "an item: its key is not a counter"),
      e("m", k, Number.MAX_SAFE_INTEGER), // a user map's value is the user's
      { m: lm, k, v: null, at: WALL }, // a removal
    ];
    const counters = { mergedImplausible: 0 };
    expect(keepPlausibleMerged(new PartitionData(0), [...refused, ...kept], WALL, counters)).toEqual(kept);
    expect(counters.mergedImplausible).toBe(refused.length);
  });
});
