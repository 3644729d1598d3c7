/**
 * The reliable topic on the primary: a bounded ring buffer of messages with sequence
 * numbers, kept in the partition of the topic's name like map entries (invariant 12).
 * Messages are records of the internal map `\u0001topic:<name>` keyed by sequence, next to
 * one meta record (head = oldest kept sequence, tail = next sequence, capacity). A publish is
 * a write (call-id dedupe: a retried publish is stored once); once the ring is full, each
 * publish drops the oldest message. Reading is a read op from a sequence: it answers the
 * messages from there and, when that sequence is already gone, how many were missed.
 */
import type { OpBody, OpOutcome } from "./operations.ts";
import { OpCode } from "./operations.ts";
import type { Effect, PartitionData } from "./partition_data.ts";
import { RING_META, ringKey, ringMeta, writeRecord } from "./internal_records.ts";

export const TOPIC_MAP_PREFIX = "\u0001topic:";
export const topicMapOf = (name: string): string => TOPIC_MAP_PREFIX + name;
export const MAX_TOPIC_NAME = 256 - TOPIC_MAP_PREFIX.length;
/** Ring capacity when none is given. */
export const DEFAULT_TOPIC_CAPACITY = 1000;
/** Largest ring (a publish then drops one message: its effects stay small). */
export const MAX_TOPIC_CAPACITY = 100_000;
/** Most messages one read answers. */
export const MAX_READ = 500;

export function isTopicOp(op: number): boolean {
  return op === OpCode.TopicPublish || op === OpCode.TopicRead;
}

/** Old messages one publish drops at most (a shrunk capacity is reached over several publishes). */
export const MAX_DROPS_PER_PUBLISH = 900;

/**
 * TopicPublish `{m, v, n?: capacity}` → the message's sequence. TopicRead `{m, s: from
 * (-1 = the next one published), n}` → `{ from, next, missed, msgs: [seq, bytes][] }`:
 * `missed` counts messages between `s` and the oldest one kept.
 */
export function executeTopicOp(data: PartitionData, op: number, b: OpBody, now: number): OpOutcome {
  const tm = topicMapOf(b.m);
  const st = ringMeta(data, tm, DEFAULT_TOPIC_CAPACITY);
  if (op === OpCode.TopicPublish) {
    const cap = Math.min(b.n ?? st.c, MAX_TOPIC_CAPACITY);
    const effects: Effect[] = [{ m: tm, k: ringKey(st.t), v: b.v!, at: now }];
    let h = st.h;
    // A shrunk capacity drops the oldest messages over this and later publishes, at most
    // MAX_DROPS_PER_PUBLISH each: one write's records stay within what backups take (MAX_WRITE_EFFECTS).
    const last = h + MAX_DROPS_PER_PUBLISH;
    while (st.t + 1 - h > cap && h < last) effects.push({ m: tm, k: ringKey(h++), v: null, at: now });
    effects.push(writeRecord(tm, RING_META, { h, t: st.t + 1, c: cap }, now));
    return { result: st.t, effects };
  }
  // A position past the ring's tail (the ring went back: messages lost beyond its backups, or a
  // split's merge; or a made-up resume position) reads from the tail: waiting for the sequence
  // to reach it would hide every message published until then.
  const from = b.s! < 0 ? st.t : Math.min(b.s!, st.t);
  const start = Math.max(from, st.h);
  const missed = Math.max(0, Math.min(st.h, st.t) - from);
  const msgs: Array<[number, Uint8Array]> = [];
  const store = data.maps.get(tm);
  for (let s = start; s < st.t && msgs.length < Math.min(b.n ?? MAX_READ, MAX_READ); s++) {
    const rec = store?.get(ringKey(s));
    if (rec) msgs.push([s, rec.value]);
  }
  const next = msgs.length > 0 ? msgs[msgs.length - 1][0] + 1 : Math.max(start, Math.min(from, st.t));
  return { result: { from, next, missed, msgs }, effects: [] };
}
