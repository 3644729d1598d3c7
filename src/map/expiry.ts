/**
 * Expiry of map entries (time to live and max-idle), decided by the primary.
 *
 * - A write's TTL and max-idle come from the call (`{ ttlMs, maxIdleMs }`) or else from the
 *   map's configuration (map_config.ts); 0 means none. The primary puts the resolved values
 *   in the write's effect with its clock (`at`), so every replica holds the same deadlines:
 *   `updatedAt + ttlMs` and `max(lastAccessAt, idleFloor) + maxIdleMs`. A promoted backup
 *   therefore expires the same entries at the same times (up to clock skew between members).
 * - Only the primary expires: on access (an op touching an expired key first writes its
 *   removal) and in a sweep that examines a bounded number of records per tick. Each
 *   expiry is a replicated removal (effect `why: Expired`); backups never expire on their own.
 * - Max-idle counts reads on the primary. Reads of entries with a max-idle are batched
 *   (`TouchBatcher`) and replicated as `touch` effects at most `touchFlushMs` after the read,
 *   so a backup's idle clock lags the primary's by at most that plus one replication.
 *   While a partition has no serving primary (failure detection, promotion, catch-up) nobody
 *   can read it, so that time does not count: a primary that starts serving after a
 *   catch-up (the old primary died or could not hand over) writes an idle floor (`floor`
 *   effect, its clock when it starts serving) and idle time before the floor is ignored, so
 *   every max-idle entry gets a full `maxIdleMs` from then. A graceful handoff (the old
 *   primary sealed its history) writes no floor: the new primary goes on from the
 *   replicated idle clocks.
 */
import type { PartitionData } from "./partition_data.ts";
import { expiringStored, type MapRecord } from "./record_store.ts";

/** Per-entry expiry on set/put/putIfAbsent/replace. Unset = the map's default; 0 = none. */
export interface ExpiryOptions {
  ttlMs?: number;
  maxIdleMs?: number;
}

/** The expiry fields of a write's effect: set only when non-zero. */
export interface EffectExpiry {
  ttl?: number;
  mi?: number;
}

/** Per-entry options over the map's defaults. */
export function resolveExpiry(
  opts: ExpiryOptions | undefined,
  defaults: { ttlMs: number; maxIdleMs: number },
): EffectExpiry {
  const out: EffectExpiry = {};
  const ttl = opts?.ttlMs ?? defaults.ttlMs;
  const mi = opts?.maxIdleMs ?? defaults.maxIdleMs;
  if (ttl > 0) out.ttl = ttl;
  if (mi > 0) out.mi = mi;
  return out;
}

/** When the record expires (Infinity = never), with idle time before `idleFloor` not counted. */
export function expiryDeadline(r: MapRecord, idleFloor: number): number {
  let t = Infinity;
  if (r.ttlMs !== undefined) t = r.updatedAt + r.ttlMs;
  if (r.maxIdleMs !== undefined) t = Math.min(t, Math.max(r.lastAccessAt, idleFloor) + r.maxIdleMs);
  return t;
}

export function isExpired(r: MapRecord, now: number, idleFloor: number): boolean {
  return now >= expiryDeadline(r, idleFloor);
}

/** A key the sweep found expired. */
export interface ExpiredKey {
  p: number;
  m: string;
  key: Uint8Array;
}

function hasExpiring(d: PartitionData): boolean {
  for (const s of d.maps.values()) if (s.expiring > 0) return true;
  return false;
}

/**
 * Walks the records of the primary's partitions a bounded number at a time, resuming where
 * the last call stopped (partition by partition, in partition order), and reports the
 * expired ones. Partitions without any expiring record are skipped; within a partition, stores
 * without any cost one step each. The iterators are
 * the store's live iterators, which stay valid while records are added and removed.
 */
export class ExpirySweep {
  #p = -1;
  #iter: Iterator<MapRecord> | null = null;
  #m = "";
  #stores: Iterator<string> | null = null;
  #d: PartitionData | null = null;
  /** Records (and store skips) examined so far. */
  examined = 0;
  /** Calls that found nothing to walk without looking at a store (see {@link sweep}). */
  skipped = 0;
  /**
   * The partitions of the last call, when none held an expiring record, and the count of
   * expiring records stored then: with the same partitions and no such record stored since,
   * none can hold one now (a store's count only rises when it stores one).
   */
  #idle: { parts: readonly PartitionData[]; stored: number } | null = null;

  /** The last call found no partition holding an expiring record. */
  get idle(): boolean {
    return this.#idle !== null;
  }

  /**
   * Examines at most `budget` records (and store skips) of `parts` (any order).
   * @returns the expired keys found, at most `budget`
   */
  sweep(parts: readonly PartitionData[], now: number, budget: number): ExpiredKey[] {
    const out: ExpiredKey[] = [];
    const stored = expiringStored();
    const idle = this.#idle;
    if (
      idle && idle.stored === stored && idle.parts.length === parts.length && idle.parts.every((d, i) => d === parts[i])
    ) {
      this.skipped++;
      return out;
    }
    // Only partitions holding a record with a TTL or max-idle can hold an expired one: the
    // others are left out before any walk (each tick, every 50 ms, on every member).
    const sorted = parts.filter(hasExpiring).sort((a, b) => a.p - b.p);
    this.#idle = sorted.length === 0 ? { parts: [...parts], stored } : null;
    if (sorted.length === 0) return out;
    let steps = 0;
    // At most one pass per call: stop before entering a partition this call already entered.
    const entered = new Set<number>();
    if (this.#d && !sorted.includes(this.#d)) (this.#d = null, this.#iter = null, this.#stores = null);
    if (this.#d) entered.add(this.#d.p);
    while (steps < budget) {
      if (this.#iter) {
        const r = this.#iter.next();
        if (!r.done) {
          steps++;
          this.examined++;
          const rec = r.value;
          if (isExpired(rec, now, this.#d!.idleFloor)) out.push({ p: this.#d!.p, m: this.#m, key: rec.key });
          continue;
        }
        this.#iter = null;
      }
      if (this.#stores && this.#d) {
        const s = this.#stores.next();
        if (!s.done) {
          steps++;
          this.examined++;
          const store = this.#d.maps.get(s.value);
          if (store && store.expiring > 0) (this.#m = s.value, this.#iter = store.values());
          continue;
        }
      }
      // Next partition after #p (wrapping).
      const next = sorted.find((d) => d.p > this.#p) ?? sorted[0];
      this.#p = next.p;
      this.#d = next;
      this.#stores = [...next.maps.keys()][Symbol.iterator]();
      if (entered.has(next.p)) break;
      entered.add(next.p);
    }
    return out;
  }
}

/** Keys read on the primary whose last access its backups should learn. */
export interface Touches {
  p: number;
  keys: Array<{ m: string; key: Uint8Array }>;
}

/**
 * Batches reads of entries with a max-idle per partition, to be replicated as `touch`
 * effects: a partition's batch is due `flushMs` after its first read, or at once when it
 * holds `maxKeys` keys. Bounded: at most `maxKeys` keys per partition.
 */
export class TouchBatcher {
  #pending = new Map<number, { since: number; keys: Map<string, { m: string; key: Uint8Array }> }>();

  constructor(readonly flushMs = 250, readonly maxKeys = 1000) {}

  /** Notes a read of `key` (id `id`) in map `m` of partition `p`. @returns true when `p`'s batch is now full */
  touch(p: number, m: string, key: Uint8Array, id: string, now: number): boolean {
    let b = this.#pending.get(p);
    if (!b) (b = { since: now, keys: new Map() }, this.#pending.set(p, b));
    b.keys.set(m + "\u0000" + id, { m, key });
    return b.keys.size >= this.maxKeys;
  }

  /** Takes the batches due at `now` (all of them with `all`). */
  due(now: number, all = false): Touches[] {
    const out: Touches[] = [];
    for (const [p, b] of this.#pending) {
      if (all || b.keys.size >= this.maxKeys || now - b.since >= this.flushMs) {
        out.push({ p, keys: [...b.keys.values()] });
        this.#pending.delete(p);
      }
    }
    return out;
  }

  /** Takes partition `p`'s batch, if any. */
  take(p: number): Touches | null {
    const b = this.#pending.get(p);
    if (!b) return null;
    this.#pending.delete(p);
    return { p, keys: [...b.keys.values()] };
  }

  /** Forgets partition `p` (no longer its primary). */
  drop(p: number): void {
    this.#pending.delete(p);
  }

  get size(): number {
    let n = 0;
    for (const b of this.#pending.values()) n += b.keys.size;
    return n;
  }
}
