/**
 * One replica of one partition on one member: the records of every map in it, the
 * partition sequence number, an order-independent digest of the content (for anti-entropy),
 * the dedupe records of writes whose callers may still retry them (call id → result,
 * replicated with the writes so a retry reaching a new primary is answered, not applied
 * again; dedupe_records.ts), and a bounded log of recent writes (to re-ship to a backup that
 * missed some).
 */
import { assert } from "../core/errors.ts";
import { setNewest } from "../core/bounded.ts";
import { type DedupeCounts, type DedupeRecord, DedupeRecords, DEFAULT_DEDUPE_LIMITS } from "./dedupe_records.ts";
import { murmur3_32 } from "../partition/murmur3.ts";
import { type AppliedChange, DEFAULT_EVENT_BYTES, EventRing, type EventTuple } from "./entry_events.ts";
import { RecordStore } from "./record_store.ts";
import { LOCK_MAP_PREFIX } from "./map_config.ts";
import type { EntrySink, SnapshotEntry } from "./snapshot_codec.ts";
import { type TombstoneLimits, Tombstones } from "./tombstones.ts";
import {
  type Effect,
  EffectCause,
  type LogEntry,
  packBytes,
  packedEnd,
  packedValueAt,
  packer,
  WriteLog,
} from "./write_log.ts";

/**
 * How much earlier than this member's clock says a retry's call may have begun: its age
 * (InvokeRequest `g`) is measured when it is sent, and the request may have spent this long on its way.
 */
export const IN_DOUBT_MARGIN_MS = 5_000;

export type { AppliedChange, DedupeRecord, Effect, LogEntry };
export { EffectCause };
export { logEntryBytes } from "./write_log.ts";

/** A full copy of a partition, sent when a backup cannot catch up from the log. */
export interface SnapshotData {
  seq: number;
  digest: [number, number];
  /**
   * [map, key, value, version, createdAt, updatedAt] and, for an entry with an expiry,
   * [..., ttlMs (0 = none), maxIdleMs (0 = none), lastAccessAt]. Version 0 marks a tombstone
   * (the key was removed at `updatedAt`; the value is empty): records start at version 1.
   */
  entries: SnapshotEntry[];
  /** [call id, seq, result, map?]; `[…, "", 1]`: a record that came with a merge (DedupeRecord `x`). */
  dedupe: Array<[string, number, unknown] | [string, number, unknown, string] | [string, number, unknown, string, 1]>;
  /** The clients' watermarks this copy knows: [client, watermark] (dedupe_records.ts). */
  cw?: Array<[string, number]>;
  /** See `PartitionData.idleFloor`. */
  idleFloor?: number;
  /** See `PartitionData.historyLostAt` (in the clock of the member holding the snapshot). */
  historyLostAt?: number;
  /** The level of the copy (which maps it holds; replication_levels.ts). @default 0 (all) */
  level?: number;
  /**
   * The copy's last entry events (of the maps the snapshot holds), oldest first, and `ef`: every
   * event of writes with seq > ef is among them. A copy installed from the snapshot keeps them,
   * so a listener that polls it after a migration or a promotion finds its events there.
   */
  ev?: EventTuple[];
  ef?: number;
  /** Maps whose events up to `seq` are not in `ev` (left out by the sender; see EventRing.exportEvents). */
  ex?: string[];
  /** {@link PartitionData.eventsLost} as `[level, until]`. */
  el?: [number, number];
}

export type { SnapshotEntry };

export interface PartitionDataLimits {
  /** Dedupe records of call ids that name no client, kept per partition (oldest dropped first). @default 2048 */
  dedupe: number;
  /** Writes kept in the log per partition. @default 256 */
  log: number;
  /** Entry events kept per partition (listeners resume from them). @default 256 */
  events?: number;
  /** About this many bytes of keys and values in the log (up to 1.5 × between trims; the newest write stays). @default DEFAULT_LOG_BYTES */
  logBytes?: number;
  /** About this many bytes of results in those (oldest dropped first). @default 65536 */
  dedupeBytes?: number;
  /** Hard cap on the dedupe records of clients' calls (dedupe_records.ts). @default 8192 */
  dedupeCap?: number;
  /** Hard cap on the bytes of their results (about). @default 262144 */
  dedupeCapBytes?: number;
  /** Clients whose watermarks and records a copy remembers. @default 1024 */
  dedupeClients?: number;
  /** About this many bytes of keys and values in the entry events. @default DEFAULT_EVENT_BYTES */
  eventBytes?: number;
  /** Removed keys remembered for split-brain merges (see tombstones.ts). */
  tombstones?: TombstoneLimits;
}

const EMPTY = new Uint8Array(0);

/**
 * Bytes of keys and values a partition copy's replication log holds by default (about): the
 * writes a backup may still need re-shipped, well below what a loaded partition holds (a
 * backup further behind gets a snapshot).
 */
export const DEFAULT_LOG_BYTES = 16 * 1024;

/**
 * How long after a listener's last poll of a map on a copy that copy's snapshots still carry
 * the map's events. A listener polls each partition again as soon as a poll is answered, or
 * after the invoker's retry when it fails; a minute covers one stalled for a failover.
 */
export const EVENT_READERS_MS = 60_000;
/** Most maps a copy remembers as read by listeners (the others' readers get a gap after a migration). */
export const MAX_EVENT_READERS = 256;

/**
 * An entry's hash `i` is murmur3 over the map name's bytes, the key's and the value's, with seed 1
 * (`i` 0) or 2 (`i` 1): this is its first part, over the name and the key, which seeds the value's
 * (see `#xorValue`). An update hashes the key once for the old value and the new.
 */
function keyShare(store: RecordStore, key: Uint8Array, i: 0 | 1): number {
  return murmur3_32(key, store.nameHashes[i]);
}

export class PartitionData {
  seq = 0;
  /**
   * Ownership epoch of the primary whose history this replica is known to follow
   * (-1 = not confirmed). A backup applies writes only from the primary of this epoch.
   */
  lineage = -1;
  /**
   * The lineage whose history this copy holds, and the ownership epoch of the primary that
   * drew it: set whenever the copy is confirmed to follow a primary (check, snapshot) or its
   * member becomes primary, and kept when `lineage` is reset to -1 (the content stays what
   * it was until a snapshot replaces it). -1 = this copy never followed any history (a fresh,
   * empty copy). A new primary compares these with the other replicas' before it serves.
   */
  historyLineage = -1;
  historyEpoch = -1;
  digest: [number, number] = [0, 0];
  /**
   * Which maps this copy holds: those whose backups total at least `level` (0 = all; see
   * replication_levels.ts). Set by the primary's check or snapshot.
   */
  level = 0;
  /**
   * When (this member's clock) this member began to serve this copy with history missing (the
   * loss counted in `dataLoss`); -Infinity: never. The dedupe records of the writes lost went
   * with them, so a retry that may have run and began before then is refused (primary.ts).
   * Snapshots carry it (as an age) to the copies made from this one, which keep the later of
   * theirs and it.
   */
  historyLostAt = -Infinity;

  /**
   * Whether a write whose call began at `callBeganAt` (this member's clock) may have run in the
   * history this copy lost: it began at most {@link IN_DOUBT_MARGIN_MS} after the loss.
   */
  mayHaveRunInLostHistory(callBeganAt: number): boolean {
    return callBeganAt <= this.historyLostAt + IN_DOUBT_MARGIN_MS;
  }
  readonly maps = new Map<string, RecordStore>();
  readonly dedupe: DedupeRecords;
  readonly tombstones: Tombstones;
  /** The newest stamp applied here (records, removals): the next write is stamped above it (hlc.ts). */
  maxAt = 0;
  /** The last writes (write_log.ts). */
  readonly log: WriteLog;
  /**
   * Idle time before this moment does not count toward max-idle: set (replicated) when a
   * new primary starts serving, since nobody could read the partition's entries meanwhile.
   */
  idleFloor = 0;
  /** The recent entry events of this partition (same on every replica that applied the same writes). */
  readonly events: EventRing;
  /** Called after each write that produced entry events (wakes listeners). */
  onEvents?: (p: number, seq: number) => void;

  /** `counts`: where the dedupe records count what their caps drop (dedupe_records.ts). */
  constructor(
    readonly p: number,
    readonly limits: PartitionDataLimits = { dedupe: 2048, log: 256 },
    counts?: DedupeCounts,
  ) {
    this.events = new EventRing(limits.events ?? 256, 0, limits.eventBytes ?? DEFAULT_EVENT_BYTES);
    this.log = new WriteLog(limits.log, limits.logBytes ?? DEFAULT_LOG_BYTES);
    this.tombstones = new Tombstones(limits.tombstones);
    const d = DEFAULT_DEDUPE_LIMITS;
    this.dedupe = new DedupeRecords({
      window: limits.dedupe,
      windowBytes: limits.dedupeBytes ?? d.windowBytes,
      cap: limits.dedupeCap ?? d.cap,
      capBytes: limits.dedupeCapBytes ?? d.capBytes,
      clients: limits.dedupeClients ?? d.clients,
    }, counts);
  }

  /** Approximate bytes of the dedupe records' results. */
  get dedupeBytes(): number {
    return this.dedupe.bytes;
  }

  /** Records in all maps. */
  get entryCount(): number {
    let n = 0;
    for (const s of this.maps.values()) n += s.size;
    return n;
  }

  #store(m: string): RecordStore {
    let s = this.maps.get(m);
    if (!s) (s = new RecordStore(m), this.maps.set(m, s));
    return s;
  }

  #xor(store: RecordStore, key: Uint8Array, value: Uint8Array): void {
    this.#xorValue(store, keyShare(store, key, 0), keyShare(store, key, 1), value);
  }

  /** XORs the two hashes of the entry of `value` and a key of shares `k0`, `k1` (keyShare) into the partition's digest and its map's. */
  #xorValue(store: RecordStore, k0: number, k1: number, value: Uint8Array): void {
    const h0 = murmur3_32(value, k0), h1 = murmur3_32(value, k1);
    this.digest[0] = (this.digest[0] ^ h0) >>> 0;
    this.digest[1] = (this.digest[1] ^ h1) >>> 0;
    store.digest[0] = (store.digest[0] ^ h0) >>> 0;
    store.digest[1] = (store.digest[1] ^ h1) >>> 0;
  }

  /** The digest of the maps `keep` accepts (what a copy holding only those would have). */
  digestOf(keep: (m: string) => boolean): [number, number] {
    const out: [number, number] = [0, 0];
    for (const [m, s] of this.maps) {
      if (!keep(m)) continue;
      out[0] = (out[0] ^ s.digest[0]) >>> 0;
      out[1] = (out[1] ^ s.digest[1]) >>> 0;
    }
    return out;
  }

  /** Drops every map `keep` refuses (records, removal marks, dedupe records of its writes). */
  dropMaps(keep: (m: string) => boolean): void {
    for (const [m, s] of [...this.maps]) {
      if (keep(m)) continue;
      this.digest[0] = (this.digest[0] ^ s.digest[0]) >>> 0;
      this.digest[1] = (this.digest[1] ^ s.digest[1]) >>> 0;
      this.maps.delete(m);
    }
    for (const t of [...this.tombstones.values()]) if (!keep(t.m)) this.tombstones.delete(t.m, t.key);
    for (const [c, r] of [...this.dedupe.entries()]) if (r.m !== undefined && !keep(r.m)) this.dedupe.delete(c);
  }

  /**
   * Takes the maps `take` accepts from `from` (records, removal marks, dedupe records), in
   * place of whatever this copy holds of them: a new primary whose catch-up source holds
   * fewer maps than its own copy keeps its own of the others.
   */
  adoptMaps(from: PartitionData, take: (m: string) => boolean): void {
    this.dropMaps((m) => !take(m));
    for (const [m, src] of from.maps) {
      if (!take(m)) continue;
      const s = this.#store(m);
      for (const r of src.values()) {
        s.set(r.id, r);
        this.#xor(s, r.keyView(), r.valueView());
        if (r.updatedAt > this.maxAt) this.maxAt = r.updatedAt;
      }
    }
    for (const t of from.tombstones.values()) if (take(t.m)) this.tombstones.add(t.m, t.key, t.at);
    // Watermarks are facts about clients, whichever copy learned them: the higher one holds.
    for (const [client, w] of from.dedupe.watermarks()) this.dedupe.raise(client, w);
    for (const [c, r] of from.dedupe.entries()) {
      if ((r.m !== undefined ? take(r.m) : r.x === 1) && !this.dedupe.has(c)) this.dedupe.set(c, r);
    }
  }

  /** Follows (and holds the history of) lineage `lineage`, drawn by the primary of epoch `epoch`. */
  follow(lineage: number, epoch: number): void {
    this.lineage = lineage;
    this.historyLineage = lineage;
    this.historyEpoch = epoch;
  }

  /**
   * Applies one effect to the records (and the digest); `store`: its map's store, when the caller
   * looked it up already. @returns what it did to a key, if anything
   */
  applyEffect(e: Effect, store?: RecordStore): AppliedChange | null {
    if (e.at > this.maxAt) this.maxAt = e.at;
    if (e.floor) {
      this.idleFloor = Math.max(this.idleFloor, e.at);
      return null;
    }
    if (e.destroy || e.clear) {
      const s = this.maps.get(e.m);
      if (!s) return null;
      for (const r of s.values()) {
        this.#xor(s, r.keyView(), r.valueView());
        this.tombstones.add(e.m, r.key, e.at);
      }
      // An empty map holds no store; destroy will also drop per-map settings once there are some.
      this.maps.delete(e.m);
      // One event for the whole map here (no key), not one per entry: a write's events are bounded.
      return { type: "cleared", m: e.m, key: EMPTY };
    }
    const key = e.k!;
    const s = store ?? this.#store(e.m);
    // Found by its bytes (no key id string); a write then reuses the slot found (no second lookup).
    const cur = s.get(key);
    if (e.touch) {
      if (cur) cur.lastAccessAt = Math.max(cur.lastAccessAt, e.at);
      else if (s.size === 0) this.maps.delete(e.m);
      return null;
    }
    // The key's share of both hashes, once for the old value and the new.
    const k0 = keyShare(s, key, 0), k1 = keyShare(s, key, 1);
    // A copy of the old value: hashed out of the digest here, and the event's old value.
    const old = cur?.value;
    if (old) this.#xorValue(s, k0, k1, old);
    if (e.v === null || e.v === undefined) {
      s.delete(key);
      if (s.size === 0) this.maps.delete(e.m);
      // Expiry and eviction leave no tombstone: a cache under load would fill the tombstones
      // with every key it ever dropped. (A merge skips entries whose expiry passed; an evicted
      // key the other side of a split still held may come back through the merge.) Nor does a
      // freed lock's record (locks.ts): lock churn would push the user maps' tombstones out of
      // the partition's bounded set (a lock held on the other side of a split comes back).
      // (A copy of the key: `key` may be a view into the frame the write arrived in.)
      if (e.why !== EffectCause.Expired && e.why !== EffectCause.Evicted && !e.m.startsWith(LOCK_MAP_PREFIX)) {
        this.tombstones.add(e.m, key.slice(), e.at);
      }
      if (!cur) return null;
      const type = e.why === EffectCause.Expired ? "expired" : e.why === EffectCause.Evicted ? "evicted" : "removed";
      return { type, m: e.m, key, oldValue: old };
    }
    this.tombstones.delete(e.m, key);
    s.put(
      key,
      e.v,
      cur ? cur.version + 1 : 1,
      cur ? cur.createdAt : e.at,
      e.at,
      cur ? Math.max(e.at, cur.lastAccessAt) : e.at,
      e.ttl || 0,
      e.mi || 0,
      cur ? cur.hits + 1 : 1,
      cur ? cur.slot : -1,
    );
    this.#xorValue(s, k0, k1, e.v);
    const type = e.why === EffectCause.Merged ? "merged" : cur ? "updated" : "added";
    return { type, m: e.m, key, value: e.v, oldValue: old };
  }

  /** Applies the next write (seq must be this.seq + 1). */
  applyEntry(entry: LogEntry): void {
    // Callers guard first (a backup pulls on a gap); applying out of order is a bug.
    // (The message is built only when it fails: a template per write was a tenth of this method's own time.)
    if (entry.seq !== this.seq + 1) assert(false, `partition ${this.p} applies seq ${entry.seq} after ${this.seq}`);
    // The effects' bytes, packed one after another (keys, then values): the log and the events hold them.
    const buf = packBytes(entry);
    let changed = false, at = 0;
    for (let i = 0; i < entry.e.length; i++) {
      const e = entry.e[i];
      // The map name the store holds, not the frame's copy (one string per logged effect otherwise).
      const s = this.maps.get(e.m);
      if (s !== undefined) e.m = s.name;
      const ko = at, kl = e.k ? e.k.byteLength : 0, vo = packedValueAt(e, at);
      at = packedEnd(e, at);
      const c = this.applyEffect(e, s);
      if (c) {
        // A change has a key (empty for `cleared`); its value (absent for a removal) is the effect's.
        this.events.add(
          entry.seq,
          i,
          c.type,
          c.m,
          buf,
          ko,
          kl,
          c.value ? vo : 0,
          c.value ? c.value.byteLength : -1,
          c.oldValue,
        );
        changed = true;
      }
    }
    this.seq = entry.seq;
    if (changed) this.onEvents?.(this.p, entry.seq);
    if (entry.c !== undefined) {
      const rec: DedupeRecord = { seq: entry.seq, r: entry.r ?? null };
      if (entry.e.length > 0) rec.m = entry.e[0].m;
      this.dedupe.set(entry.c, rec, entry.w);
    }
    // A merge's write: a retry of a call the merged side may have applied must not apply again.
    if (entry.u !== undefined) {
      for (const c of entry.u) if (!this.dedupe.has(c)) this.dedupe.set(c, { seq: entry.seq, r: null, x: 1 });
    }
    this.log.push(entry, buf);
  }

  /** Log entries with seq ≥ from, or null when the log no longer reaches back that far. */
  logFrom(from: number): LogEntry[] | null {
    return this.log.from(from, this.seq);
  }

  /** Approximate bytes the log holds (see logEntryBytes). */
  get logBytes(): number {
    return this.log.bytes;
  }

  /** A full copy (`keep`: of the maps it accepts only, with their digest). */
  snapshot(keep?: (m: string) => boolean): SnapshotData {
    const entries: SnapshotData["entries"] = [];
    // Keys and values are views into one buffer per snapshot: a small typed array of its own
    // costs Bun an ArrayBuffer of its own the moment the frame encoder reads its `buffer`
    // (about 3× the encoding time of 100-byte values).
    let total = 0;
    for (const [m, s] of this.maps) {
      if (keep && !keep(m)) continue;
      for (const r of s.values()) total += r.klen + r.vlen;
    }
    const { view } = packer(total);
    for (const [m, s] of this.maps) {
      if (keep && !keep(m)) continue;
      for (const r of s.values()) {
        const key = view(r.keyView()), value = view(r.valueView());
        entries.push(
          r.ttlMs !== undefined || r.maxIdleMs !== undefined
            ? [m, key, value, r.version, r.createdAt, r.updatedAt, r.ttlMs ?? 0, r.maxIdleMs ?? 0, r.lastAccessAt]
            : [m, key, value, r.version, r.createdAt, r.updatedAt],
        );
      }
    }
    for (const t of this.tombstones.values()) {
      if (!keep || keep(t.m)) entries.push([t.m, t.key, EMPTY, 0, t.at, t.at]);
    }
    return { ...this.snapshotMeta(keep), entries };
  }

  /**
   * The entries of `snapshot(keep)`, in the same order, written to `sink` straight from the
   * record stores (no entry tuple, no copy of a key or value in between): what a snapshot
   * transfer packs (snapshot_codec.ts).
   */
  snapshotInto(sink: EntrySink, keep?: (m: string) => boolean): void {
    for (const [m, s] of this.maps) if (!keep || keep(m)) s.packInto(sink);
    for (const t of this.tombstones.values()) {
      if (!keep || keep(t.m)) sink.entry(t.m, t.key, 0, t.key.byteLength, EMPTY, 0, 0, 0, t.at, t.at, 0, 0, t.at);
    }
  }

  /**
   * Everything of `snapshot(keep)` but its entries; its events only of the maps `events`
   * accepts (all the kept maps' without it).
   */
  snapshotMeta(keep?: (m: string) => boolean, events?: (m: string) => boolean): Omit<SnapshotData, "entries"> {
    const dedupe: SnapshotData["dedupe"] = [];
    for (const [c, d] of this.dedupe.entries()) {
      if (d.x === 1) dedupe.push([c, d.seq, null, "", 1]);
      else if (d.m === undefined) dedupe.push([c, d.seq, d.r]);
      else if (!keep || keep(d.m)) dedupe.push([c, d.seq, d.r, d.m]);
    }
    const digest: [number, number] = keep ? this.digestOf(keep) : [...this.digest];
    const snap: Omit<SnapshotData, "entries"> = { seq: this.seq, digest, dedupe };
    const cw = this.dedupe.watermarks();
    if (cw.length > 0) snap.cw = cw;
    if (this.level > 0) snap.level = this.level;
    if (this.idleFloor > 0) snap.idleFloor = this.idleFloor;
    if (this.historyLostAt > -Infinity) snap.historyLostAt = this.historyLostAt;
    const { from, ev, ex } = this.events.exportEvents(events ? (m) => (!keep || keep(m)) && events(m) : keep);
    if (ev.length > 0) (snap.ev = ev, snap.ef = from);
    if (ev.length > 0 && ex) snap.ex = ex;
    // Carried on, or the mark was lost at the partition's next move (found by an internal review).
    if (this.eventsLost) snap.el = [this.eventsLost.level, this.eventsLost.until];
    return snap;
  }

  /**
   * When a listener's poll last read each map's events from this copy (the clock's ms), oldest
   * first: a snapshot sent to a follower carries the events of the maps read within
   * {@link EVENT_READERS_MS} only (snapshot_transfer.ts), so a map nobody listens to costs its
   * transfers nothing more. At most {@link MAX_EVENT_READERS} maps, and older ones are forgotten
   * (every map ever listened to stayed here, in every partition: found by an internal review).
   */
  readonly eventReaders = new Map<string, number>();

  /**
   * Set when this copy became primary while it held only the maps of `level` and up: the events
   * of the other maps' writes up to `until` are not here (catch_up.ts).
   */
  eventsLost: { level: number; until: number } | undefined;

  /** A listener's poll read map `m`'s events at `now`. */
  eventsRead(m: string, now: number): void {
    setNewest(this.eventReaders, m, now, MAX_EVENT_READERS);
    this.forgetEventReaders(now);
  }

  /** Forgets the maps no poll read within {@link EVENT_READERS_MS} of `now`. */
  forgetEventReaders(now: number): void {
    for (const [m, at] of this.eventReaders) {
      if (now - at <= EVENT_READERS_MS) break;
      this.eventReaders.delete(m);
    }
  }

  /** Replaces the whole content with a snapshot (of the maps a copy at `level` holds). */
  install(snap: SnapshotData, lineage: number, level = 0): void {
    this.level = level;
    this.eventsLost = undefined;
    this.maps.clear();
    this.dedupe.clear();
    this.tombstones.clear();
    this.digest = [0, 0];
    this.maxAt = 0;
    // Room for every record of each map at once.
    const room = new Map<string, [number, number]>();
    let r: [number, number] | undefined, rm = "";
    for (const e of snap.entries) {
      if (e[3] === 0) continue;
      if (!r || e[0] !== rm) {
        rm = e[0];
        r = room.get(rm);
        if (!r) room.set(rm, r = [0, 0]);
      }
      r[0]++;
      r[1] += e[1].byteLength + e[2].byteLength;
    }
    for (const [m, [n, bytes]] of room) this.#store(m).reserve(n, bytes);
    let s: RecordStore | null = null;
    for (const [m, key, value, version, createdAt, updatedAt, ttl, mi, lastAccessAt] of snap.entries) {
      if (updatedAt > this.maxAt) this.maxAt = updatedAt;
      if (version === 0) {
        this.tombstones.add(m, key, updatedAt);
        continue;
      }
      if (s?.name !== m) s = this.#store(m);
      // Copies the bytes out of the chunk (no record object or key id per entry).
      s.put(key, value, version, createdAt, updatedAt, lastAccessAt ?? updatedAt, ttl ?? 0, mi ?? 0);
      this.#xor(s, key, value);
    }
    this.idleFloor = snap.idleFloor ?? 0;
    if (snap.historyLostAt !== undefined) this.historyLostAt = Math.max(this.historyLostAt, snap.historyLostAt);
    if (snap.ev && snap.ef !== undefined) this.events.restore(snap.ef, snap.ev, snap.seq, snap.ex);
    else this.events.reset(snap.seq);
    if (snap.el) this.eventsLost = { level: snap.el[0], until: Math.min(snap.el[1], snap.seq) };
    for (const [client, w] of snap.cw ?? []) this.dedupe.raise(client, w);
    for (const [c, seq, r, m, x] of snap.dedupe) {
      this.dedupe.set(c, x === 1 ? { seq, r: null, x } : m === undefined ? { seq, r } : { seq, r, m });
    }
    this.seq = snap.seq;
    this.log.clear();
    this.lineage = lineage;
  }
}
