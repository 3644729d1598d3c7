/**
 * The distributed queue on the primary: a bounded FIFO kept in the partition of the queue's
 * name, like map entries (invariant 12). Items are records of the internal map
 * `\u0001queue:<name>` keyed by their sequence number, next to one meta record
 * (head, tail, capacity), so replication, migration, snapshots, epochs and call-id dedupe
 * are the map layer's. Every op is a write of that partition, decided by its primary.
 *
 * Exactly once: an offer and a poll are writes with a call id. A retried offer (lost answer,
 * primary killed) is answered from the dedupe record and not appended again; a retried poll
 * gets the same item again and no other poll ever gets it (the removal and the answer are
 * one log entry, replicated before the answer). See README "Distributed queue" for the
 * redelivery rule.
 */
import type { OpBody, OpOutcome } from "./operations.ts";
import { OpCode } from "./operations.ts";
import type { Effect, PartitionData } from "./partition_data.ts";
import { RING_META, ringKey, type RingMeta, ringMeta, writeRecord } from "./internal_records.ts";

export const QUEUE_MAP_PREFIX = "\u0001queue:";
export const queueMapOf = (name: string): string => QUEUE_MAP_PREFIX + name;
/** Longest queue name (its internal map's name must fit the 256-char limit). */
export const MAX_QUEUE_NAME = 256 - QUEUE_MAP_PREFIX.length;
/** Capacity of a queue that never had one set. */
export const DEFAULT_QUEUE_CAPACITY = 100_000;
/** Largest capacity the REST routes take (the API takes any positive safe integer). */
export const MAX_QUEUE_CAPACITY = 1_000_000_000;
/** Most items one drain takes (its removals and the meta record fit one log entry of ≤ 1,000 effects). */
export const MAX_DRAIN = 500;

/** How many items queue `name` holds, and its capacity (as last set). */
export function queueState(data: PartitionData, name: string): { size: number; capacity: number } {
  const st = ringMeta(data, queueMapOf(name), DEFAULT_QUEUE_CAPACITY);
  return { size: st.t - st.h, capacity: st.c };
}

export function isQueueOp(op: number): boolean {
  return op >= OpCode.QueueOffer && op <= OpCode.QueueDrain;
}

/**
 * Runs a queue op on the primary (changes nothing itself; the effects are the change).
 * Results: QueueOffer → true, or false when full; QueuePoll → the item's bytes or null;
 * QueuePeek → bytes or null; QueueSize → `{ size, capacity }`; QueueDrain → a list of bytes.
 */
export function executeQueueOp(data: PartitionData, op: number, b: OpBody, now: number): OpOutcome {
  const qm = queueMapOf(b.m);
  const st = ringMeta(data, qm, DEFAULT_QUEUE_CAPACITY);
  const items = data.maps.get(qm);
  const size = st.t - st.h;
  const setMeta = (n: RingMeta): Effect => writeRecord(qm, RING_META, n, now);
  switch (op) {
    case OpCode.QueueSize:
      return { result: { size, capacity: st.c }, effects: [] };
    case OpCode.QueuePeek:
      return { result: size > 0 ? items?.get(ringKey(st.h))?.value ?? null : null, effects: [] };
    case OpCode.QueueOffer: {
      const cap = b.n ?? st.c;
      if (size >= cap) return { result: false, effects: cap !== st.c ? [setMeta({ ...st, c: cap })] : [] };
      return {
        result: true,
        effects: [{ m: qm, k: ringKey(st.t), v: b.v!, at: now }, setMeta({ h: st.h, t: st.t + 1, c: cap })],
      };
    }
    case OpCode.QueuePoll:
    case OpCode.QueueDrain: {
      const max = op === OpCode.QueuePoll ? 1 : Math.min(b.n ?? MAX_DRAIN, MAX_DRAIN, size);
      const out: Uint8Array[] = [];
      const effects: Effect[] = [];
      let h = st.h;
      while (out.length < max && h < st.t) {
        const rec = items?.get(ringKey(h));
        if (rec) out.push(rec.value);
        effects.push({ m: qm, k: ringKey(h), v: null, at: now });
        h++;
      }
      if (h !== st.h) effects.push(setMeta({ ...st, h }));
      return { result: op === OpCode.QueuePoll ? out[0] ?? null : out, effects };
    }
  }
  throw new RangeError(`Cannot execute queue op ${op}`);
}
