/**
 * Records of the grid's own maps (names starting with \u0001: locks, queues, topics). They are
 * ordinary map records, so replication, migration, snapshots, epochs and call-id dedupe are
 * the map layer's; an op reads one with {@link readRecord} and changes it by returning the
 * effect {@link writeRecord} builds (the primary applies and ships it like any write).
 */
import { decodeValue, encodeValue } from "../wire/codec.ts";
import type { Effect, PartitionData } from "./partition_data.ts";

/** The decoded value of record `k` of internal map `m`, or undefined when there is none. */
export function readRecord<T>(data: PartitionData, m: string, k: Uint8Array): T | undefined {
  const rec = data.maps.get(m)?.get(k);
  return rec ? decodeValue(rec.value) as T : undefined;
}

/** The effect that writes `value` as record `k` of internal map `m`. */
export function writeRecord(m: string, k: Uint8Array, value: unknown, now: number): Effect {
  return { m, k, v: encodeValue(value), at: now };
}

/** Meta record of a ring of sequenced items (queue, topic). */
export interface RingMeta {
  /** Sequence of the oldest item. */
  h: number;
  /** Sequence the next item gets. */
  t: number;
  /** Capacity (from the first write; a later write with another one updates it). */
  c: number;
}

/** Key of a ring's meta record. */
export const RING_META = encodeValue("meta");
/** Key of a ring's item with sequence `seq`. */
export const ringKey = (seq: number): Uint8Array => encodeValue(seq);

/** The ring's meta record, or an empty ring of `capacity` when it has none yet. */
export function ringMeta(data: PartitionData, m: string, capacity: number): RingMeta {
  return readRecord<RingMeta>(data, m, RING_META) ?? { h: 0, t: 0, c: capacity };
}
