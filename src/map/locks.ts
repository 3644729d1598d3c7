/**
 * Per-key locks with fencing tokens, kept in the partition like map entries (invariant 12).
 *
 * The lock of key `k` in map `m` is a record of the internal map `\u0001lock:m` under the same
 * key bytes, so it lives in `k`'s partition: the primary decides every change, the change is
 * an ordinary effect shipped to the backups in order, migration and snapshots carry it, epochs
 * fence it and call ids dedupe it. No new replication or migration code exists for locks.
 *
 * The record holds the last fencing token handed out, the owner (member + handle), the lease
 * end on the primary's clock, and the FIFO queue of waiters (member, handle, lease, last poll).
 * A lock left free with no waiter keeps no record (a record per key ever locked would stay
 * forever): the record is removed, and its token raises the lock map's high-water record in
 * the partition, which a key without a record starts from. So tokens still only rise, per key,
 * across unlocks and failovers. Waiting is a poll: a waiter keeps
 * its place by asking again (`tryLock` re-polls every ≤ 200 ms); the queue is in the record,
 * so it moves with the partition and survives failover.
 *
 * Release on owner death and lease end is evaluated by the primary whenever the record is
 * touched ({@link normalize}): an owner whose member left the member list, or whose lease
 * ended, no longer holds the lock, and the first live waiter gets it with the next token.
 * Since waiters poll, a free lock is handed on within a poll interval of the detection.
 * Under split-brain protection a lock granted with a lease outlives its owner's member until
 * the lease ends (`leaseOutlivesDeath`): a member declared dead may only be paused or cut off,
 * and its owner counts its hold until the lease it asked for runs out, so the lock is handed on
 * no earlier (test/sim/lock_quorum.ts, a paused holder with a lease longer than failure detection).
 *
 * Writes to a locked key: a map write to a key locked by ANOTHER MEMBER fails with `LOCKED`
 * (not retried). Writes from the owner's member pass: write fencing is per member, lock
 * ownership per member + handle.
 */
import { decodeValue, encodeValue } from "../wire/codec.ts";
import type { NodeId } from "../transport/transport.ts";
import { type OpBody, OpCode, type OpOutcome } from "./operations.ts";
import type { Effect, PartitionData } from "./partition_data.ts";
import { bytesEqual } from "./record_store.ts";
import { readRecord, writeRecord } from "./internal_records.ts";
import { LOCK_HIGH_WATER, LOCK_MAP_PREFIX } from "./map_config.ts";

/** Internal map holding the locks of map `m`. */
export { LOCK_MAP_PREFIX };
export const lockMapOf = (m: string): string => LOCK_MAP_PREFIX + m;
/** Longest map name that can have locks (the lock map's name must fit the 256-char limit). */
export const MAX_LOCKED_MAP_NAME = 256 - LOCK_MAP_PREFIX.length;
/** Waiters per key. */
export const MAX_WAITERS = 1024;
/** A waiter that has not polled for this long lost its place. */
export const WAITER_STALE_MS = 5000;

export interface LockState {
  /** Last fencing token handed out. */
  t: number;
  /** Owner: [member, handle]. */
  o: [NodeId, string] | null;
  /** Lease end on the primary's clock; 0 = none. */
  x: number;
  /** Waiters in arrival order: [member, handle, leaseMs, lastPollAt]. */
  w: Array<[NodeId, string, number, number]>;
}

export { LOCK_HIGH_WATER };

const highWater = (data: PartitionData, m: string): number =>
  readRecord<number>(data, lockMapOf(m), LOCK_HIGH_WATER) ?? 0;

/** The lock record of key `k` of map `m` as stored (not normalized); a free lock from the high-water token when none. */
export function readLock(data: PartitionData, m: string, k: Uint8Array): LockState {
  const s = readRecord<LockState>(data, lockMapOf(m), k);
  return s ? { t: s.t, o: s.o, x: s.x, w: s.w ?? [] } : { t: highWater(data, m), o: null, x: 0, w: [] };
}

/**
 * The lock as it stands at `now`: an owner whose lease ended, or whose member is gone (with
 * `leaseOutlivesDeath`, only when it holds no lease), is dropped, waiters gone or stale are
 * dropped, and a free lock goes to the first waiter.
 */
export function normalize(
  s: LockState,
  now: number,
  alive: (id: NodeId) => boolean,
  leaseOutlivesDeath = false,
): LockState {
  const n: LockState = {
    t: s.t,
    o: s.o,
    x: s.x,
    w: s.w.filter(([id, , , at]) => alive(id) && now - at <= WAITER_STALE_MS),
  };
  if (n.o && ((n.x > 0 && now >= n.x) || (!alive(n.o[0]) && !(leaseOutlivesDeath && n.x > 0)))) (n.o = null, n.x = 0);
  if (!n.o && n.w.length > 0) {
    const [id, h, lease] = n.w.shift()!;
    n.t++;
    n.o = [id, h];
    n.x = lease > 0 ? now + lease : 0;
  }
  return n;
}

const same = (a: LockState, b: LockState) => bytesEqual(encodeValue(a), encodeValue(b));

/**
 * A merge's effects (MergeEntries) without those that would lower or remove a lock map's
 * high-water record: whatever the merge policy, the record keeps the higher token, so tokens
 * handed out after the merge stay above those both sides handed out.
 */
export function keepHighWaters(data: PartitionData, effects: Effect[]): Effect[] {
  return effects.filter((e) => {
    if (!e.k || !e.m.startsWith(LOCK_MAP_PREFIX) || !bytesEqual(e.k, LOCK_HIGH_WATER)) return true;
    const merging = e.v ? decodeValue(e.v) : null;
    const mine = readRecord<number>(data, e.m, LOCK_HIGH_WATER) ?? 0;
    return typeof merging === "number" && merging > mine;
  });
}

/** Whether `op` is a lock op (run by {@link executeLockOp}). */
export function isLockOp(op: number): boolean {
  return op >= OpCode.LockAcquire && op <= OpCode.LockCancel;
}

/**
 * Runs a lock op on the primary for the caller member `from`. Like `executeOp` it changes
 * nothing itself; the record's new state is the effect.
 * Results: LockAcquire → `{ tok }` (held) or `{ q }` (place in the queue, 0 = busy and not
 * queued); LockRelease → true, or `{ err: "CONFLICT" }` when the caller does not hold it;
 * LockForceRelease → whether it was held; LockStatus → `{ locked, tok, owner? }`;
 * LockCancel → `{ tok }` when the caller holds it (granted while it gave up), else null.
 */
export function executeLockOp(
  data: PartitionData,
  op: number,
  b: OpBody,
  now: number,
  from: NodeId,
  alive: (id: NodeId) => boolean,
  leaseOutlivesDeath = false,
): OpOutcome {
  const k = b.k!;
  if (b.m.length > MAX_LOCKED_MAP_NAME) {
    return { result: { err: "INVALID_ARGUMENT" }, effects: [] };
  }
  const before = readLock(data, b.m, k);
  const s = normalize(before, now, alive, leaseOutlivesDeath);
  const mine = s.o !== null && s.o[0] === from && s.o[1] === b.h;
  let result: unknown = null;
  switch (op) {
    case OpCode.LockStatus:
      return { result: { locked: s.o !== null, tok: s.t, owner: s.o ?? undefined }, effects: [] };
    case OpCode.LockAcquire: {
      if (mine) {
        // The holder asks again: say the lock was handed to it from the queue while it was not
        // waiting (its cancel failed). Its lease restarts now, as for a fresh grant, so a lease
        // never runs from before the request that answers its token (lock_quorum_test.ts, seed 516).
        s.x = b.l! > 0 ? now + b.l! : 0;
        result = { tok: s.t };
        break;
      }
      if (s.o === null) {
        s.t++;
        s.o = [from, String(b.h)];
        s.x = b.l! > 0 ? now + b.l! : 0;
        result = { tok: s.t };
        break;
      }
      if (!b.q) {
        result = { q: 0 };
        break;
      }
      let i = s.w.findIndex(([id, h]) => id === from && h === b.h);
      // A fresh tuple: `s.w` shares its tuples with `before`, and a change made in place would emit no effect.
      if (i >= 0) s.w[i] = [s.w[i][0], s.w[i][1], s.w[i][2], now];
      else if (s.w.length >= MAX_WAITERS) return { result: { err: "OVERLOADED" }, effects: [] };
      else (s.w.push([from, String(b.h), b.l!, now]), i = s.w.length - 1);
      result = { q: i + 1 };
      break;
    }
    case OpCode.LockRelease:
    case OpCode.LockCancel: {
      if (mine && op === OpCode.LockCancel) {
        result = { tok: s.t };
        break;
      }
      if (op === OpCode.LockCancel) {
        s.w = s.w.filter(([id, h]) => !(id === from && h === b.h));
        break;
      }
      if (!mine) return { result: { err: "CONFLICT" }, effects: effectsOf(data, b.m, k, before, s, now) };
      s.o = null;
      s.x = 0;
      result = true;
      break;
    }
    case OpCode.LockForceRelease:
      result = s.o !== null;
      s.o = null;
      s.x = 0;
      break;
  }
  // Hand a released lock to the next waiter at once.
  const after = op === OpCode.LockAcquire ? s : normalize(s, now, alive, leaseOutlivesDeath);
  return { result, effects: effectsOf(data, b.m, k, before, after, now) };
}

function effectsOf(
  data: PartitionData,
  m: string,
  k: Uint8Array,
  before: LockState,
  after: LockState,
  now: number,
): Effect[] {
  if (same(before, after)) return [];
  const lm = lockMapOf(m);
  if (after.o !== null || after.w.length > 0) return [writeRecord(lm, k, after, now)];
  // Free with no waiter: no record; its token raises the high-water record.
  const out: Effect[] = [];
  if (data.maps.get(lm)?.get(k)) out.push({ m: lm, k, v: null, at: now });
  if (after.t > highWater(data, m)) out.push(writeRecord(lm, LOCK_HIGH_WATER, after.t, now));
  return out;
}

/**
 * Whether a map write from member `from` to `keys` of map `m` must be refused because
 * another member holds one of the keys' locks (at `now`).
 */
export function lockedByOther(
  data: PartitionData,
  m: string,
  keys: readonly Uint8Array[] | undefined,
  from: NodeId,
  now: number,
  alive: (id: NodeId) => boolean,
  leaseOutlivesDeath = false,
): boolean {
  const store = data.maps.get(lockMapOf(m));
  if (!store || store.size === 0) return false;
  const check = keys ?? [...store.values()].map((r) => r.key);
  for (const k of check) {
    if (!store.get(k) || bytesEqual(k, LOCK_HIGH_WATER)) continue;
    const s = normalize(readLock(data, m, k), now, alive, leaseOutlivesDeath);
    if (s.o !== null && s.o[0] !== from) return true;
  }
  return false;
}
