/**
 * The primary's housekeeping of map entries: expiry on access and by a bounded sweep, the
 * idle clocks of backups (batched touches, the idle floor of a new primary), and eviction
 * under per-member limits. Every change it decides is a write the primary originates
 * (`HousekeepingHost.writeLocal`): applied, logged and replicated in order like a client's
 * write, so backups drop the same entries and a promoted backup holds the same deadlines.
 * See expiry.ts and eviction.ts for the rules.
 */
import type { Random } from "../core/random.ts";
import type { EventCursor } from "./entry_events.ts";
import { AFTER_WRITE } from "./event_polls.ts";
import { MemberUsage, pickVictim } from "./eviction.ts";
import { isInternalMap } from "./map_config.ts";
import { ExpirySweep, isExpired, TouchBatcher } from "./expiry.ts";
import type { MapConfigs, ResolvedMapSettings } from "./map_config.ts";
import { MAX_BATCH } from "./operations.ts";
import { type Effect, EffectCause, type LogEntry, type PartitionData } from "./partition_data.ts";
import { keyId, recordBytes } from "./record_store.ts";

export interface HousekeepingHost {
  /** The replicas of the partitions this member serves as primary now (not catching up, not handing off). */
  serving(): Iterable<PartitionData>;
  /**
   * Every replica this member holds as primary, also while catching up or handing off: what
   * counts against a map's per-member limit (and what `shoal_map_entries{role="primary"}` shows).
   */
  held(): Iterable<PartitionData>;
  /** Applies a write this primary originates (no call id) to partition `p` and ships it to the backups. */
  writeLocal(p: number, effects: Effect[]): void;
}

export interface HousekeepingConfig {
  /** Records the expiry sweep examines per tick, over all partitions. @default 4000 */
  sweepPerTick?: number;
  /** Reads of entries with a max-idle reach the backups within this long. @default 250 */
  touchFlushMs?: number;
  /** Evictions per tick when ownership changes leave a member over a limit. @default 2000 */
  evictionsPerTick?: number;
  /**
   * Evictions at once when this member gains primaries (a promotion after a failover or a split,
   * a partition migrated in, a catch-up done), in the same turn, so that the count does not
   * wait for the tick; the tick drains any rest. @default 50000
   */
  evictionsPerChange?: number;
  /**
   * Evictions a write may cause beyond the entries it added: the excess an ownership change
   * left goes a little with each write (and by the tick's budget), never all at once on one write. @default 8
   */
  extraEvictionsPerWrite?: number;
}

export class MapHousekeeping {
  readonly config: Required<HousekeepingConfig>;
  readonly usage = new MemberUsage();
  readonly counters = { expired: 0, evicted: 0, touchesSent: 0 };
  #sweep = new ExpirySweep();
  #touches: TouchBatcher;
  /** Whether any map has a size limit (usage is tracked only then). */
  readonly #limits: boolean;
  /** Usage must be recomputed (ownership changed) before the next limit check. */
  #usageStale = true;
  #recomputedAt = 0;

  constructor(
    readonly host: HousekeepingHost,
    readonly maps: MapConfigs,
    readonly rng: Random,
    config: HousekeepingConfig = {},
  ) {
    this.config = {
      sweepPerTick: 4000,
      touchFlushMs: 250,
      evictionsPerTick: 2000,
      evictionsPerChange: 50_000,
      extraEvictionsPerWrite: 8,
      ...config,
    };
    this.#touches = new TouchBatcher(this.config.touchFlushMs);
    this.#limits = Object.values(maps.maps).some((s) =>
      (s.maxSizePerMember ?? 0) > 0 || (s.maxBytesPerMember ?? 0) > 0
    );
  }

  settings(m: string): ResolvedMapSettings {
    return this.maps.resolve(m);
  }

  /** The map's expiry defaults, for executeOp. */
  readonly defaults = (m: string): { ttlMs: number; maxIdleMs: number } => this.maps.resolve(m);

  /**
   * Expiry on access: before an op on `keys` of map `m` runs on the primary, writes the
   * removal of those that expired.
   */
  beforeOp(d: PartitionData, m: string, keys: readonly Uint8Array[] | undefined, now: number): void {
    const store = d.maps.get(m);
    if (!store || store.expiring === 0 || !keys) return;
    const effects: Effect[] = [];
    for (const k of keys) {
      const r = store.get(k);
      if (r && isExpired(r, now, d.idleFloor)) {
        effects.push({ m, k: r.key, v: null, at: now, why: EffectCause.Expired });
      }
    }
    this.#write(d.p, effects);
  }

  /** A read on the primary: moves the keys' last access (LRU, max-idle) and hit counts (LFU). */
  afterRead(d: PartitionData, m: string, keys: readonly Uint8Array[] | undefined, now: number): void {
    const store = d.maps.get(m);
    if (!store || !keys) return;
    for (const k of keys) {
      const id = keyId(k);
      const r = store.getId(id);
      if (!r) continue;
      r.lastAccessAt = Math.max(r.lastAccessAt, now);
      r.hits++;
      if (r.maxIdleMs !== undefined && this.#touches.touch(d.p, m, r.key, id, now)) {
        const t = this.#touches.take(d.p);
        if (t) this.#flushTouches(t.p, t.keys, now);
      }
    }
  }

  /**
   * After a write applied on the primary (`entry`, already in `d`): keeps the member's usage
   * current and, for each map the write grew, evicts while the map is over its limit — first
   * from `d`, then from the member's largest partitions — at most the entries it added plus
   * `extraEvictionsPerWrite` (the rest of an excess left by an ownership change goes by the tick).
   */
  afterWrite(d: PartitionData, entry: LogEntry, now: number): void {
    if (!this.#limits) return;
    if (this.#usageStale) this.#recompute();
    let whole = false;
    for (const e of entry.e) {
      if (e.clear || e.destroy) whole = true;
    }
    if (whole) {
      this.#recompute();
      return;
    }
    // Per map the write grew: entries it added (an eviction's own write grows nothing, so this does not recurse).
    const grown = new Map<string, number>();
    const from: EventCursor = { seq: entry.seq - 1, i: AFTER_WRITE };
    for (const c of d.events.since(from, entry.seq, MAX_BATCH + 1).events) {
      const newBytes = c.value ? recordBytes({ key: c.key, value: c.value }) : 0;
      const oldBytes = c.oldValue ? recordBytes({ key: c.key, value: c.oldValue }) : 0;
      const entries = (c.value ? 1 : 0) - (c.oldValue ? 1 : 0);
      this.usage.adjust(c.m, entries, newBytes - oldBytes);
      if (entries > 0 || newBytes > oldBytes) grown.set(c.m, (grown.get(c.m) ?? 0) + Math.max(0, entries));
    }
    for (const [m, added] of grown) {
      const max = added + this.config.extraEvictionsPerWrite;
      const n = this.#evict(d, m, entry, max, now);
      if (n < max) this.#evictLargest(m, max - n, now, d);
    }
  }

  /** A new primary starts serving `d`: idle time until now does not count (see expiry.ts). */
  onServing(d: PartitionData, now: number): void {
    let idle = false;
    for (const s of d.maps.values()) if (s.expiring > 0) idle = true;
    if (idle) this.#write(d.p, [{ m: "", floor: true, at: now }]);
    this.#usageStale = true;
  }

  /** This member holds a new copy as primary (catching up, or sealed by a handoff): it counts against the limits. */
  onHeld(): void {
    this.#usageStale = true;
  }

  /** This member stopped serving `p`. */
  onStopServing(p: number): void {
    this.#touches.drop(p);
    this.#usageStale = true;
  }

  #recompute(): void {
    this.usage.recompute(this.host.held());
    this.#usageStale = false;
  }

  /**
   * Whether the tick has work here: touches to flush, records that can expire, or maps with a
   * limit (their usage is recounted every second).
   */
  get busy(): boolean {
    return this.#limits || this.#touches.size > 0 || !this.#sweep.idle;
  }

  /** Per tick: due touches, a bounded sweep, and limits left exceeded by ownership changes. */
  tick(now: number): void {
    for (const t of this.#touches.due(now)) this.#flushTouches(t.p, t.keys, now);
    const serving = [...this.host.serving()];
    const expired = this.#sweep.sweep(serving, now, this.config.sweepPerTick);
    const byP = new Map<number, Effect[]>();
    for (const x of expired) {
      let l = byP.get(x.p);
      if (!l) (l = [], byP.set(x.p, l));
      l.push({ m: x.m, k: x.key, v: null, at: now, why: EffectCause.Expired });
    }
    for (const [p, effects] of byP) this.#write(p, effects);
    if (!this.#limits) return;
    // Once a second, recount from the stores (ownership changes that did not pass through here).
    if (this.#usageStale || now - this.#recomputedAt >= 1000) (this.#recompute(), this.#recomputedAt = now);
    this.#drain(this.config.evictionsPerTick, now);
  }

  /**
   * After this member gained primaries (the host calls it once a table change is applied, and
   * when a catch-up ends): evicts what puts a map over its limit now, at most
   * `evictionsPerChange`, instead of leaving it to the tick. @returns evictions
   */
  settle(now: number): number {
    if (!this.#limits) return 0;
    if (this.#usageStale) this.#recompute();
    return this.#drain(this.config.evictionsPerChange, now, false);
  }

  /**
   * Evicts the excess of every map over its limit, at most `budget` in all; `rest`: what the
   * copies still catching up would give goes from the largest served partitions. @returns evictions
   */
  #drain(budget: number, now: number, rest = true): number {
    let n = 0;
    for (const [m] of this.usage.maps) {
      if (n >= budget) break;
      n += this.#evictSpread(m, budget - n, now, rest);
    }
    return n;
  }

  /**
   * Evicts map `m`'s excess over its limit (at most `max`): each partition this member serves
   * gives its share, in proportion to its entries of `m` (sampled LRU/LFU within each), so that
   * no partition is emptied for an excess the others hold too. A copy still catching up gives
   * its share when it starts serving ({@link settle}); with `rest`, the largest served partitions
   * give it now (the tick: a catch-up that lasts). @returns evictions
   */
  #evictSpread(m: string, max: number, now: number, rest: boolean): number {
    const s = this.maps.resolve(m);
    if (isInternalMap(m) || !this.usage.over(m, s)) return 0;
    const u = this.usage.get(m);
    // The share of every held copy that must go, by entries or by bytes, whichever is more.
    const share = Math.max(
      s.maxSizePerMember > 0 && u.entries > 0 ? (u.entries - s.maxSizePerMember) / u.entries : 0,
      s.maxBytesPerMember > 0 && u.bytes > 0 ? (u.bytes - s.maxBytesPerMember) / u.bytes : 0,
    );
    let n = 0;
    for (const d of [...this.host.serving()]) {
      const size = d.maps.get(m)?.size ?? 0;
      if (n >= max || !this.usage.over(m, s)) break;
      if (size > 0) n += this.#evict(d, m, null, Math.min(max - n, Math.ceil(share * size)), now);
    }
    if (rest && n < max) n += this.#evictLargest(m, max - n, now);
    return n;
  }

  /**
   * Evicts from map `m` while it is over its limit, at most `max`, from the largest partitions
   * this member serves first (they hold the most of the excess). @returns evictions
   */
  #evictLargest(m: string, max: number, now: number, skip?: PartitionData): number {
    if (isInternalMap(m) || !this.usage.over(m, this.maps.resolve(m))) return 0;
    const parts = [...this.host.serving()].filter((d) => d !== skip && d.maps.has(m))
      .sort((a, b) => b.maps.get(m)!.size - a.maps.get(m)!.size);
    let n = 0;
    for (const d of parts) {
      if (n >= max || !this.usage.over(m, this.maps.resolve(m))) break;
      n += this.#evict(d, m, null, max - n, now);
    }
    return n;
  }

  #flushTouches(p: number, keys: Array<{ m: string; key: Uint8Array }>, now: number): void {
    this.counters.touchesSent += keys.length;
    this.#write(p, keys.map(({ m, key }) => ({ m, k: key, touch: true, at: now })));
  }

  /**
   * Evicts from `d` while map `m` is over its limit (at most `max`). Never from the grid's
   * own maps (lock records, queue items), whatever pattern their names match. @returns evictions
   */
  #evict(d: PartitionData, m: string, entry: LogEntry | null, max: number, now: number): number {
    if (isInternalMap(m)) return 0;
    const s = this.maps.resolve(m);
    if (!this.usage.over(m, s)) return 0;
    const store = d.maps.get(m);
    if (!store) return 0;
    const u = this.usage.get(m);
    let entries = u.entries, bytes = u.bytes;
    const keep = new Set<string>();
    // Never the keys the write just wrote.
    if (entry) { for (const e of entry.e) if (e.m === m && e.k && e.v) keep.add(keyId(e.k)); }
    const effects: Effect[] = [];
    const over = () =>
      (s.maxSizePerMember > 0 && entries > s.maxSizePerMember) ||
      (s.maxBytesPerMember > 0 && bytes > s.maxBytesPerMember);
    while (over() && effects.length < max && keep.size < store.size) {
      const r = pickVictim(store, s.eviction, this.rng, keep);
      if (!r) break;
      const id = keyId(r.key);
      keep.add(id);
      entries--;
      bytes -= recordBytes(r);
      effects.push({ m, k: r.key, v: null, at: now, why: EffectCause.Evicted });
    }
    this.#write(d.p, effects);
    return effects.length;
  }

  #write(p: number, effects: Effect[]): void {
    for (let i = 0; i < effects.length; i += MAX_BATCH) {
      const part = effects.slice(i, i + MAX_BATCH);
      for (const e of part) {
        if (e.why === EffectCause.Expired) this.counters.expired++;
        else if (e.why === EffectCause.Evicted) this.counters.evicted++;
      }
      this.host.writeLocal(p, part);
    }
  }
}
