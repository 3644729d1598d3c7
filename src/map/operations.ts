/**
 * Map operations: an extensible op-code enum, the body schema of each op, and their
 * execution against a partition's records on the primary. A write produces effects (the
 * resulting record changes), which is what backups apply, so backups never re-run logic.
 * TTL, entry processors, locks and merges will be new op codes with their own effects.
 */
import { z } from "zod";
import { compileCheck, type FastCheck, REJECT } from "../wire/fast_check.ts";
import { w } from "../wire/message.ts";
import { type EffectExpiry, isExpired, resolveExpiry } from "./expiry.ts";
import { stampSchema } from "./hlc.ts";
import { isInternalMap, MAX_EXPIRY_MS } from "./map_config.ts";
import { type CustomMergePolicy, type MergeSide, mergeWins } from "./merge_policy.ts";
import { type Effect, EffectCause, type PartitionData } from "./partition_data.ts";
import { bytesEqual, type MapRecord } from "./record_store.ts";

export const OpCode = {
  Get: 1,
  Put: 2,
  Set: 3,
  PutIfAbsent: 4,
  Replace: 5,
  ReplaceIfSame: 6,
  Remove: 7,
  RemoveIfSame: 8,
  Delete: 9,
  ContainsKey: 10,
  GetAll: 11,
  PutAll: 12,
  Size: 13,
  Clear: 14,
  Entries: 15,
  Destroy: 16,
  /** Split-brain merge: entries of the smaller side, applied by policy (see merge_policy.ts). */
  MergeEntries: 17,
  /** Entry events of the partition after a cursor (a listener's long poll; see entry_listeners.ts). */
  Events: 18,
  /**
   * Every user map of the partition with its live entry count: the first `n` names in sorted
   * order (body `m` is ""). One sweep over the partitions lists and sizes every map of the
   * cluster, whichever member asks (http/map_sizes.ts).
   */
  MapSizes: 19,
  // 40–41: entry processors (entry_processor.ts); 20–39 are left to other map features.
  /** Runs a registered processor on one key (body: m, k, pr = name, pa = CBOR argument). */
  ExecuteOnKey: 40,
  /** Runs a registered processor on each of `ks`; `po`: skip absent keys (executeOnEntries). */
  ExecuteOnKeys: 41,
  // 42–46: per-key locks (locks.ts); the caller member is the request's sender.
  /** Takes the lock of `k` for handle `h` (lease `l` ms, 0 = none), or queues when `q`. */
  LockAcquire: 42,
  LockRelease: 43,
  LockForceRelease: 44,
  LockStatus: 45,
  /** A waiter gives up: leaves the queue (or learns it was granted the lock meanwhile). */
  LockCancel: 46,
  // 47–51: the distributed queue (queue_ops.ts); `m` is the queue's name.
  QueueOffer: 47,
  QueuePoll: 48,
  QueuePeek: 49,
  QueueSize: 50,
  QueueDrain: 51,
  // 52–53: the reliable topic's ring (topic_ops.ts); `m` is the topic's name.
  TopicPublish: 52,
  TopicRead: 53,
} as const;
export type OpCodeNumber = (typeof OpCode)[keyof typeof OpCode];

export const opNames: Record<number, string> = Object.fromEntries(Object.entries(OpCode).map(([k, v]) => [v, k]));

const WRITES = new Set<number>([
  OpCode.Put,
  OpCode.Set,
  OpCode.PutIfAbsent,
  OpCode.Replace,
  OpCode.ReplaceIfSame,
  OpCode.Remove,
  OpCode.RemoveIfSame,
  OpCode.Delete,
  OpCode.PutAll,
  OpCode.Clear,
  OpCode.Destroy,
  OpCode.MergeEntries,
  OpCode.ExecuteOnKey,
  OpCode.ExecuteOnKeys,
  OpCode.LockAcquire,
  OpCode.LockRelease,
  OpCode.LockForceRelease,
  OpCode.LockCancel,
  OpCode.QueueOffer,
  OpCode.QueuePoll,
  OpCode.QueueDrain,
  OpCode.TopicPublish,
]);

/** Whether an op may change state (and so needs a call id, backups and dedupe). */
export function isWrite(op: number): boolean {
  return WRITES.has(op);
}

/** Most entries one GetAll/PutAll/Entries call carries. */
export const MAX_BATCH = 1000;
/**
 * Largest key plus value one record may hold, and largest sum of keys and values one write may
 * carry: its backup op and its answer each go as one message, at most 8 MiB (wire/limits.ts).
 * Beyond them a write is refused with INVALID_ARGUMENT before it is applied. Batches were cut by
 * count only: a larger one was dropped by the transport, its caller waited out the call timeout,
 * and a write applied on the primary that no backup could take left its keys unreadable.
 */
export const MAX_RECORD_BYTES = 4 * 1024 * 1024;
export const MAX_WRITE_BYTES = 6 * 1024 * 1024;
/** Most bytes of values one read answers (GetAll, Entries): a shorter answer, and the caller asks for the rest. */
export const MAX_READ_BYTES = 4 * 1024 * 1024;

/** Why a write of `effects` is too large to replicate, or undefined when it is not. */
export function writeTooLarge(effects: readonly Effect[]): string | undefined {
  let total = 0;
  for (const e of effects) {
    const n = (e.k?.byteLength ?? 0) + (e.v?.byteLength ?? 0);
    if (n > MAX_RECORD_BYTES) return `a record of ${n} bytes, over ${MAX_RECORD_BYTES}`;
    total += n;
  }
  return total > MAX_WRITE_BYTES ? `a write of ${total} bytes, over ${MAX_WRITE_BYTES}` : undefined;
}

const m = w.str(256);
const k = w.bytes();
const kOnly = z.object({ m, k });
/** Per-entry TTL and max-idle (ms; absent = the map's default, 0 = none). */
const maxExpiry = w.uint().max(MAX_EXPIRY_MS);
const expiryMs = maxExpiry.optional();
const kv = z.object({ m, k, v: w.bytes(), ttl: expiryMs, mi: expiryMs });

/** Most events one Events answer carries. */
export const MAX_EVENTS_PER_POLL = 1000;
const mOnly = z.object({ m });
const pk = w.uint().max(60_000).optional();
/** Most maps one MapSizes answer names. */
export const MAX_MAP_SIZES = 1000;

const schemas: Record<number, z.ZodType> = {
  [OpCode.Get]: kOnly,
  [OpCode.Put]: kv,
  [OpCode.Set]: kv,
  [OpCode.PutIfAbsent]: kv,
  [OpCode.Replace]: kv,
  [OpCode.ReplaceIfSame]: z.object({ m, k, x: w.bytes(), v: w.bytes(), ttl: expiryMs, mi: expiryMs }),
  [OpCode.Remove]: kOnly,
  [OpCode.RemoveIfSame]: z.object({ m, k, x: w.bytes() }),
  [OpCode.Delete]: kOnly,
  [OpCode.ContainsKey]: kOnly,
  [OpCode.GetAll]: z.object({ m, ks: w.list(w.bytes(), MAX_BATCH) }),
  [OpCode.PutAll]: z.object({
    m,
    kvs: w.list(z.tuple([w.bytes(), w.bytes()]), MAX_BATCH),
    ttl: expiryMs,
    mi: expiryMs,
  }),
  [OpCode.Size]: mOnly,
  [OpCode.Clear]: mOnly,
  [OpCode.Entries]: z.object({ m, o: w.uint(), n: w.uint().min(1).max(MAX_BATCH) }),
  [OpCode.Destroy]: mOnly,
  // `m` is unused (entries name their maps); `pol` is a MergePolicyCode; a null value is a removal.
  [OpCode.MergeEntries]: z.object({
    m,
    pol: w.uint().min(1).max(4),
    es: w.list(
      z.union([
        z.tuple([m, w.bytes(), w.bytes().nullable(), stampSchema()]),
        // TTL and max-idle as a write takes them (`expiryMs`): merged from records that were written so.
        z.tuple([m, w.bytes(), w.bytes().nullable(), stampSchema(), maxExpiry, maxExpiry, stampSchema()]),
      ]),
      MAX_BATCH,
    ),
    // The calls the merging side's copy may have applied (its dedupe records; split_merge.ts).
    u: w.list(w.str(256), MAX_BATCH).optional(),
  }),
  // After cursor (s, i); s = -1: no events, answer the cursor of "now". `k`: only this key; `nv`: no values;
  // `h`: hold an empty answer at most this long (below the caller's attempt timeout).
  [OpCode.Events]: z.object({
    m,
    s: w.int().min(-1),
    i: w.int().min(-1),
    k: w.bytes().optional(),
    nv: z.boolean().optional(),
    n: w.uint().min(1).max(MAX_EVENTS_PER_POLL),
    h: w.uint().max(60_000).optional(),
    /** 1: the listener knows `cleared` events (added 8 December; an older one is not sent them) */
    ct: z.literal(1).optional(),
  }),
  [OpCode.MapSizes]: z.object({ m, n: w.uint().min(1).max(MAX_MAP_SIZES) }),
  [OpCode.ExecuteOnKey]: z.object({ m, k, pr: w.str(64), pa: w.bytes().optional() }),
  [OpCode.ExecuteOnKeys]: z.object({
    m,
    ks: w.list(w.bytes(), MAX_BATCH),
    pr: w.str(64),
    pa: w.bytes().optional(),
    po: z.boolean().optional(),
  }),
  // `pk`: how long the primary may park the request while it cannot succeed (parked_ops.ts). The lease `l`
  // is bounded as the API and REST bound it: a longer one held a lock past its owner's death that long.
  [OpCode.LockAcquire]: z.object({ m, k, h: w.str(128), l: maxExpiry, q: z.boolean(), pk }),
  [OpCode.LockRelease]: z.object({ m, k, h: w.str(128) }),
  [OpCode.LockForceRelease]: kOnly,
  [OpCode.LockStatus]: kOnly,
  [OpCode.LockCancel]: z.object({ m, k, h: w.str(128) }),
  // `n`: the capacity (offer, size) or most items (drain).
  [OpCode.QueueOffer]: z.object({ m, v: w.bytes(), n: w.uint().min(1).optional(), pk }),
  [OpCode.QueuePoll]: z.object({ m, pk }),
  [OpCode.QueuePeek]: mOnly,
  [OpCode.QueueSize]: z.object({ m, n: w.uint().min(1).optional() }),
  [OpCode.QueueDrain]: z.object({ m, n: w.uint().min(1).max(1000) }),
  [OpCode.TopicPublish]: z.object({ m, v: w.bytes(), n: w.uint().min(1).optional() }),
  [OpCode.TopicRead]: z.object({ m, s: w.int().min(-1), n: w.uint().min(1).max(1000) }),
};

export interface OpBody {
  m: string;
  k?: Uint8Array;
  v?: Uint8Array;
  x?: Uint8Array;
  ks?: Uint8Array[];
  kvs?: [Uint8Array, Uint8Array][];
  o?: number;
  n?: number;
  /** MergeEntries: policy code and [map, key, value (null: removed), stamp] per entry. */
  pol?: number;
  es?: Array<
    [string, Uint8Array, Uint8Array | null, number] | [
      string,
      Uint8Array,
      Uint8Array | null,
      number,
      number,
      number,
      number,
    ]
  >;
  /** MergeEntries: call ids the merging side may have applied (recorded so that retries answer INDETERMINATE). */
  u?: string[];
  /** Per-entry TTL and max-idle. */
  ttl?: number;
  mi?: number;
  /** Events: cursor, no-values flag; TopicRead: `s` is the sequence to read from (-1: the next one published). */
  s?: number;
  i?: number;
  nv?: boolean;
  /** Events: the listener knows `cleared` events. */
  ct?: 1;
  /** Events: the longest hold (ms); lock ops: the caller's handle (per-op schemas keep them apart). */
  h?: number | string;
  /** ExecuteOnKey(s): processor name, its CBOR argument, present keys only. */
  pr?: string;
  pa?: Uint8Array;
  po?: boolean;
  /** Lock ops: the caller's handle (`h`, above), lease ms, whether to queue. */
  l?: number;
  q?: boolean;
  /** LockAcquire, QueuePoll, QueueOffer: the longest park on the primary (ms). */
  pk?: number;
}

/** The op bodies' checks compiled from their schemas (see wire/fast_check.ts); zod decides what they reject. */
const fastChecks = new Map(Object.entries(schemas).map(([op, s]) => [Number(op), compileCheck(s)]));

/** The schema of an op's body and its compiled check (for tests). */
export function bodySchemaOf(op: number): { schema: z.ZodType; fast: FastCheck | null } | undefined {
  const schema = schemas[op];
  return schema && { schema, fast: fastChecks.get(op) ?? null };
}

/**
 * The writes whose `m` names the map they write. One naming the grid's own maps (lock records,
 * queues, topics) is invalid: no map proxy takes such a name, and their records are the state
 * of their own ops, which count on it (a Put of a queue's meta record at 2^53 - 1 from a member
 * holding the secret made every later offer overwrite one slot; merged_records.ts).
 */
const MAP_WRITES = new Set<number>([...WRITES].filter((op) => op < OpCode.LockAcquire && op !== OpCode.MergeEntries));

/** Validates an op body from the network. @returns null when invalid */
export function parseBody(op: number, body: unknown): OpBody | null {
  const s = schemas[op];
  if (!s) return null;
  const fast = fastChecks.get(op)?.(body) ?? REJECT;
  let b = fast as OpBody;
  if (fast === REJECT) {
    const r = s.safeParse(body);
    if (!r.success) return null;
    b = r.data as OpBody;
  }
  return MAP_WRITES.has(op) && isInternalMap(b.m) ? null : b;
}

/** The keys an op reads or writes; undefined = the whole partition. */
export function opKeys(op: number, b: OpBody): Uint8Array[] | undefined {
  if (op === OpCode.Events) return undefined;
  if (b.k) return [b.k];
  if (b.ks) return b.ks;
  if (b.kvs) return b.kvs.map(([key]) => key);
  if (b.es) return b.es.map(([, key]) => key);
  return undefined;
}

export interface OpOutcome {
  /** What the caller receives (CBOR-able). */
  result: unknown;
  /** State changes; empty for reads and for writes that changed nothing. */
  effects: Effect[];
}

/** A map's expiry defaults (from its configuration). */
export type ExpiryDefaults = (map: string) => { ttlMs: number; maxIdleMs: number };

const noDefaults: ExpiryDefaults = () => ({ ttlMs: 0, maxIdleMs: 0 });

/** `e` with the TTL and max-idle of `x` (the same as spreading `x` into it, without the copy). */
function withExpiry(e: Effect, x: EffectExpiry): Effect {
  if (x.ttl !== undefined) e.ttl = x.ttl;
  if (x.mi !== undefined) e.mi = x.mi;
  return e;
}

/**
 * Runs an op against the primary's records. Does not change state: the caller applies the
 * effects (so the same code path serves primary and backups). Expired records count as
 * absent; the caller writes their removal first for the keys an op names (expiry on access).
 * Each write's effect carries the TTL and max-idle decided here (the call's, else the map's).
 * @param now the stamp of this write (hlc.ts `nextStamp`)
 * @param defaults the maps' expiry defaults
 * @param custom the custom merge policy of this member, for MergeEntries under code `custom`
 */
export function executeOp(
  data: PartitionData,
  op: number,
  b: OpBody,
  now: number,
  defaults: ExpiryDefaults = noDefaults,
  custom?: CustomMergePolicy,
): OpOutcome {
  const store = data.maps.get(b.m);
  const live = <R extends MapRecord>(r: R | undefined): R | undefined =>
    r && (r.ttlMs === undefined && r.maxIdleMs === undefined || !isExpired(r, now, data.idleFloor)) ? r : undefined;
  const cur = b.k && store ? live(store.get(b.k)) : undefined;
  let exp: EffectExpiry | undefined;
  const expiry = () => exp ??= resolveExpiry({ ttlMs: b.ttl, maxIdleMs: b.mi }, defaults(b.m));
  const set = (v: Uint8Array): Effect => withExpiry({ m: b.m, k: b.k!, v, at: now }, expiry());
  const del = (): Effect => ({ m: b.m, k: b.k!, v: null, at: now });
  // A copy of the current value, taken only by the ops that answer with it (Set and Delete do not;
  // the compare-and-set ops compare it in place).
  const prev = () => cur ? cur.value : null;
  switch (op) {
    case OpCode.Get:
      return { result: prev(), effects: [] };
    case OpCode.ContainsKey:
      return { result: cur !== undefined, effects: [] };
    case OpCode.Put:
      return { result: prev(), effects: [set(b.v!)] };
    case OpCode.Set:
      return { result: null, effects: [set(b.v!)] };
    case OpCode.PutIfAbsent:
      return cur ? { result: prev(), effects: [] } : { result: null, effects: [set(b.v!)] };
    case OpCode.Replace:
      return cur ? { result: prev(), effects: [set(b.v!)] } : { result: null, effects: [] };
    case OpCode.ReplaceIfSame:
      return cur && bytesEqual(cur.valueView(), b.x!)
        ? { result: true, effects: [set(b.v!)] }
        : { result: false, effects: [] };
    case OpCode.Remove:
      return cur ? { result: prev(), effects: [del()] } : { result: null, effects: [] };
    case OpCode.RemoveIfSame:
      return cur && bytesEqual(cur.valueView(), b.x!)
        ? { result: true, effects: [del()] }
        : { result: false, effects: [] };
    case OpCode.Delete:
      return cur ? { result: null, effects: [del()] } : { result: null, effects: [] };
    case OpCode.GetAll: {
      // The first keys' values up to MAX_READ_BYTES (at least one): the caller asks for the rest.
      const out: Array<Uint8Array | null> = [];
      let bytes = 0;
      for (const key of b.ks!) {
        const v = live(store?.get(key))?.value ?? null;
        if (out.length > 0 && bytes + (v?.byteLength ?? 0) > MAX_READ_BYTES) break;
        out.push(v);
        bytes += v?.byteLength ?? 0;
      }
      return { result: out, effects: [] };
    }
    case OpCode.PutAll:
      return { result: null, effects: b.kvs!.map(([key, v]) => withExpiry({ m: b.m, k: key, v, at: now }, expiry())) };
    case OpCode.Size: {
      if (!store || store.expiring === 0) return { result: store?.size ?? 0, effects: [] };
      let n = 0;
      for (const r of store.values()) if (live(r)) n++;
      return { result: n, effects: [] };
    }
    case OpCode.MapSizes: {
      const out: Array<[string, number]> = [];
      for (const [name, s] of data.maps) {
        if (isInternalMap(name)) continue;
        let n = s.size;
        if (s.expiring > 0) {
          n = 0;
          for (const r of s.values()) if (live(r)) n++;
        }
        out.push([name, n]);
      }
      return { result: out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).slice(0, b.n!), effects: [] };
    }
    case OpCode.Clear:
      return { result: null, effects: store && store.size > 0 ? [{ m: b.m, clear: true, at: now }] : [] };
    case OpCode.Destroy:
      return { result: null, effects: store ? [{ m: b.m, destroy: true, at: now }] : [] };
    case OpCode.MergeEntries: {
      // A merged entry (or removal) keeps its own stamp, so later merges compare real update
      // times, and its expiry state: its TTL still counts from its last update, its max-idle
      // from its last access (a touch after the write), and one already expired is not merged.
      const effects: Effect[] = [];
      let applied = 0;
      for (const en of b.es!) {
        const [map, key, v, at] = en;
        const [ttl, mi, lastAccessAt] = en.length === 7 ? [en[4], en[5], en[6]] : [0, 0, at];
        if (v !== null && (ttl || mi)) {
          const r = { updatedAt: at, lastAccessAt, ttlMs: ttl || undefined, maxIdleMs: mi || undefined };
          if (isExpired(r as MapRecord, now, 0)) continue;
        }
        const rec = data.maps.get(map)?.get(key);
        if (v === null ? !rec : rec && bytesEqual(rec.valueView(), v)) continue;
        const removedAt = rec ? undefined : data.tombstones.get(map, key);
        const existing: MergeSide | undefined = rec
          ? { value: rec.value, at: rec.updatedAt }
          : removedAt !== undefined
          ? { value: null, at: removedAt }
          : undefined;
        if (mergeWins(b.pol!, existing, { value: v, at }, custom)) {
          applied++;
          const e: Effect = { m: map, k: key, v, at, why: EffectCause.Merged };
          if (v !== null && ttl) e.ttl = ttl;
          if (v !== null && mi) e.mi = mi;
          effects.push(e);
          if (v !== null && mi && lastAccessAt > at) {
            effects.push({ m: map, k: key, at: lastAccessAt, touch: true });
          }
        }
      }
      return { result: applied, effects };
    }
    case OpCode.Entries: {
      // `o` and the answer's `next` are slot positions in the store (record_store.ts): a record
      // keeps its slot while it lives, and a removed one leaves a hole, so the position holds
      // whatever the expiry sweep removes between two pages. Counting live entries received (a
      // page skips expired records not yet swept) or records walked (the sweep removes some
      // before the position) both made the next page start at the wrong record: entries
      // repeated, or were never returned, and executeOnEntries ran its processor twice or not.
      const out: [Uint8Array, Uint8Array][] = [];
      let next = b.o!, bytes = 0;
      const top = store ? store.slotCount : 0;
      for (; next < top && out.length < b.n!; next++) {
        const r = store!.atSlot(next);
        if (!r || !live(r)) continue;
        // Up to MAX_READ_BYTES (at least one record): the next page starts at this one.
        if (out.length > 0 && bytes + r.klen + r.vlen > MAX_READ_BYTES) break;
        out.push([r.key, r.value]);
        bytes += r.klen + r.vlen;
      }
      return { result: { e: out, more: next < top, next: Math.max(next, b.o!) }, effects: [] };
    }
    case OpCode.Events:
      throw new RangeError("Cannot execute op Events here: the map service answers it from the event log");
  }
  throw new RangeError(`Cannot execute op ${op}: unknown op code`);
}
