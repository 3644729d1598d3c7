/**
 * The primary's side of entry listeners: answering an Events op (a listener's long poll)
 * from the partition's event log, only with events of acknowledged writes, and holding
 * polls that find nothing new until a write commits or their hold time runs out.
 *
 * A poll names a cursor `(s, i)`: the listener saw every event up to that one. The answer
 * carries the events after it (at most `n`, of writes with seq ≤ the committed sequence),
 * the new cursor, and a gap when the log no longer reaches back to the cursor (or the cursor
 * lies past this copy's history, which then continues from the committed sequence). A poll with
 * `s = -1` asks for the cursor of "now" (the primary's sequence, answered once committed),
 * which is where a new listener starts: it sees every write invoked after it registered.
 */
import { entryEventTypes, type EventCursor } from "./entry_events.ts";
import type { OpBody } from "./operations.ts";
import type { PartitionData } from "./partition_data.ts";
import { HeldRequests } from "./held_requests.ts";
import { bytesEqual } from "./record_store.ts";

/** Cursor index meaning "after every effect of this write" (a write has at most 1000 effects). */
export const AFTER_WRITE = 1_000_000;

/** One event on the wire: [seq, index, type code (entryEventTypes), map is implied, key, value, oldValue]. */
export type WireEvent = [number, number, number, Uint8Array, Uint8Array | null, Uint8Array | null];

/** The answer to an Events op. */
export interface EventsAnswer {
  /** New cursor. */
  s: number;
  i: number;
  ev: WireEvent[];
  /** Writes fromSeq..toSeq whose events are lost to this listener. */
  gap?: [number, number];
}

/**
 * Reads the events `b` asks for from `d` (map `b.m`, optional key `b.k`), of writes up to
 * `committed`. @returns the answer, or null when there is nothing to say yet (hold the poll)
 */
export function readEvents(d: PartitionData, b: OpBody, committed: number, lostUntil = -1): EventsAnswer | null {
  const cursor: EventCursor = { seq: b.s!, i: b.i! };
  const max = b.n!;
  if (cursor.seq > d.seq) {
    // A cursor past this copy's whole history: its writes were lost with a copy (a promotion
    // that lost history), or the client made the position up. Say so with a gap, and go on
    // from here: waiting for the sequence to reach the cursor would hide every later write.
    return { s: committed, i: AFTER_WRITE, ev: [], gap: [d.seq + 1, cursor.seq] };
  }
  const r = d.events.since(cursor, committed, max, b.m);
  // Writes of this map up to `lostUntil` may be lost with a primary this copy never followed
  // for the map (its events too): a reader behind it gets a gap.
  if (lostUntil > cursor.seq) {
    r.gap = { fromSeq: cursor.seq + 1, toSeq: Math.max(lostUntil, r.gap?.toSeq ?? 0) };
  }
  const ev: WireEvent[] = [];
  let last: EventCursor = cursor;
  for (const e of r.events) {
    last = { seq: e.seq, i: e.i };
    // A `cleared` event (no key) concerns every key of the map: a listener of one key gets it too.
    // A listener from before it knew no such event (it read it as an update of an empty key).
    if (e.type === "cleared" && b.ct !== 1) continue;
    if (e.m !== b.m || (b.k && e.type !== "cleared" && !bytesEqual(e.key, b.k))) continue;
    const value = b.nv ? null : e.value ?? null;
    const old = b.nv ? null : e.oldValue ?? null;
    ev.push([e.seq, e.i, entryEventTypes.indexOf(e.type), e.key, value, old]);
  }
  // Fewer than `max` events read: every event up to the committed write was examined.
  if (r.events.length < max && committed > last.seq) last = { seq: committed, i: AFTER_WRITE };
  if (ev.length === 0 && !r.gap) {
    // Nothing for this listener: move its cursor silently only when another map's events went by.
    return last.seq === cursor.seq && last.i === cursor.i ? null : { s: last.seq, i: last.i, ev };
  }
  const out: EventsAnswer = { s: last.seq, i: last.i, ev };
  if (r.gap) out.gap = [r.gap.fromSeq, r.gap.toSeq];
  return out;
}

/** A held poll. */
export interface HeldPoll {
  body: OpBody;
  deadline: number;
  /** Answers the caller (called exactly once). */
  answer(a: EventsAnswer | null, status?: "ok" | "MIGRATING"): void;
}

/** Held polls per partition, at most `maxPerPartition` each. */
export class EventPolls extends HeldRequests<HeldPoll> {
  constructor(maxPerPartition = 512) {
    // A released poll retries at the new primary.
    super(maxPerPartition, (poll) => poll.answer(null, "MIGRATING"));
  }

  /** Holds a poll. @returns false when partition `p` holds too many already */
  hold(p: number, poll: HeldPoll): boolean {
    return this.add(p, poll);
  }

  /** Retries `p`'s polls with `read`: answered ones leave, the others stay in order. */
  retry(p: number, read: (b: OpBody) => EventsAnswer | null): void {
    for (const poll of this.take(p)) {
      const a = read(poll.body);
      if (a) poll.answer(a);
      else this.add(p, poll);
    }
  }

  /** Answers polls whose hold ran out with their unchanged cursor. */
  expire(now: number): void {
    for (const p of this.partitions()) {
      for (const poll of this.take(p, (x) => x.deadline <= now)) {
        poll.answer({ s: poll.body.s!, i: poll.body.i!, ev: [] });
      }
    }
  }
}
