/**
 * What a split-brain merge (MergeEntries) may write: its stamps are capped ({@link capMergeStamps}),
 * and its writes into the grid's own maps checked: lock records and high-water marks (locks.ts),
 * queue and topic meta records (queue_ops.ts, topic_ops.ts).
 *
 * Their counters only ever rise by one per operation: fencing tokens (`t++`), ring positions
 * (`t + 1`, `h++`). Any member holding the secret may send a merge, and the wire checks only
 * the entry's bytes, not the record they decode to: a lock high-water mark of 2^53 - 1 made
 * every later `t++` round back to 2^53, so two holders of one lock got the same fencing token,
 * and a queue meta record at 2^53 - 1 made every offer after the first overwrite one slot
 * (test/sim/hostile_number_range_test.ts). A record that is not of its kind's shape, or whose
 * counters lie above {@link MAX_MERGED_COUNT}, is refused (the rest of the chunk still merges):
 * honest counters, one step per operation, do not come near it in centuries, and a counter
 * merged at the bound still has 2^52 steps before the doubles lose their ones.
 */
import { z } from "zod";
import { decodeValue } from "../wire/codec.ts";
import { keepHighWaters, LOCK_HIGH_WATER, LOCK_MAP_PREFIX, MAX_WAITERS } from "./locks.ts";
import { MAX_EXPIRY_MS } from "./map_config.ts";
import type { OpBody } from "./operations.ts";
import type { Effect, PartitionData } from "./partition_data.ts";
import { QUEUE_MAP_PREFIX } from "./queue_ops.ts";
import { TOPIC_MAP_PREFIX } from "./topic_ops.ts";
import { RING_META } from "./internal_records.ts";
import { bytesEqual } from "./record_store.ts";

/**
 * How far ahead of the primary's wall clock a merged entry's stamps may lie (ms): a later one is
 * taken as stamped then. A merged stamp becomes the partition's newest (hlc.ts), and every later
 * write is stamped above it: one entry stamped 2^53 - 1 (the wire allows it) held the partition's
 * clock there for good (a logical step above it rounds back to it), so no TTL, max-idle or lock
 * lease of a later write ever ran out. A merge from a side whose clock runs further ahead keeps
 * its entries, ordered as of the cap.
 */
export const MAX_MERGE_STAMP_LEAD_MS = 60_000;

/** Caps, in place, the stamps of a MergeEntries body at {@link MAX_MERGE_STAMP_LEAD_MS} past `wallMs`. */
export function capMergeStamps(b: OpBody, wallMs: number): void {
  const maxAt = wallMs + MAX_MERGE_STAMP_LEAD_MS;
  for (const en of b.es ?? []) {
    if (en[3] > maxAt) en[3] = maxAt;
    if (en.length === 7 && en[6] > maxAt) en[6] = maxAt;
  }
}

/** Largest fencing token, high-water mark or ring position a merge may bring (2^52). */
export const MAX_MERGED_COUNT = 2 ** 52;

const count = z.number().int().min(0).max(MAX_MERGED_COUNT);
/** A lock record (locks.ts `LockState`); its lease end `x` is also checked against the wall clock. */
const lockRecord = z.object({
  t: count,
  o: z.tuple([z.string(), z.string()]).nullable(),
  x: z.number().min(0),
  w: z.array(z.tuple([z.string(), z.string(), z.number().int().min(0).max(MAX_EXPIRY_MS), z.number()]))
    .max(MAX_WAITERS).optional(),
});
/** A ring's meta record (internal_records.ts `RingMeta`). */
const ringMetaRecord = z.object({ h: count, t: count, c: z.number().int().min(1) }).refine((r) => r.h <= r.t);

/**
 * Whether the merged value `v` of record `k` of internal map `m` is one its kind's operations can
 * go on from. A lease may end at most the longest lease past the latest stamp a merge keeps
 * (operations.ts `capMergeStamps`): a later end would hold the lock past its owner's death for
 * as long as the number says (`leaseOutlivesDeath`).
 */
function plausible(m: string, k: Uint8Array, v: Uint8Array, wallMs: number): boolean {
  let value: unknown;
  try {
    value = decodeValue(v);
  } catch {
    return false;
  }
  if (m.startsWith(LOCK_MAP_PREFIX)) {
    if (bytesEqual(k, LOCK_HIGH_WATER)) return count.safeParse(value).success;
    const r = lockRecord.safeParse(value);
    return r.success && r.data.x <= wallMs + MAX_MERGE_STAMP_LEAD_MS + MAX_EXPIRY_MS;
  }
  if (m.startsWith(QUEUE_MAP_PREFIX) || m.startsWith(TOPIC_MAP_PREFIX)) {
    return !bytesEqual(k, RING_META) || ringMetaRecord.safeParse(value).success;
  }
  return true;
}

/**
 * A merge's effects without the writes of internal records refused above (counted in
 * `counters.mergedImplausible`), and without those that would lower or remove a lock map's
 * high-water mark (locks.ts `keepHighWaters`).
 */
export function keepPlausibleMerged(
  data: PartitionData,
  effects: Effect[],
  wallMs: number,
  counters: { mergedImplausible: number },
): Effect[] {
  const kept = effects.filter((e) => {
    if (!e.k || !e.v || !e.m.startsWith("\u0001") || plausible(e.m, e.k, e.v, wallMs)) return true;
    counters.mergedImplausible++;
    return false;
  });
  return keepHighWaters(data, kept);
}
