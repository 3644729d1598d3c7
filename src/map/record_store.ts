/**
 * Records of one map in one partition. Keys and values are stored as their CBOR bytes, so
 * two keys are the same key exactly when their encodings are equal.
 *
 * A record carries a version (bumped on every write), creation and update times (TTL, merge
 * policies), its expiry settings as the primary decided them at the last write (see
 * expiry.ts), its last access time (max-idle, LRU) and a hit count (LFU).
 *
 * Stored packed, without a JS object or string per record (issue 16: a `Map` entry, a record
 * object and two strings cost ~400 bytes per record): the key and value bytes of every record
 * sit in one append-only byte arena, the numbers in typed-array columns indexed by the
 * record's slot, and an open-addressing hash table (linear probing) maps key bytes to slots.
 *
 * The columns take 36 bytes per slot while every number fits 32 bits: `updatedAt` as a
 * float64, version and hits as uint32, and `createdAt` and `lastAccessAt` as uint32 counts of
 * hybrid-clock ticks (hlc.ts) before and after `updatedAt` (a record written within ~70 min
 * of its creation, and not read since by a wall clock with a finer fraction). A number that
 * does not fit so exactly (a version or hit count above 2³² − 1, an older creation, a later
 * read) turns that number's column of the store into float64 values, exact as before, until
 * the store empties.
 *
 * A slot never moves while its record lives; a removed record's slot is a hole that a later
 * insert reuses, so iterators and eviction's random sampling stay valid through changes.
 *
 * `get` and iteration hand out {@link RecordRef}s: a snapshot of the record's numbers and of
 * where its bytes are (the arena is never written over, and compacting it makes a new one, so
 * `key` and `value` stay what they were). `key` and `value` return fresh copies.
 */
import { murmur3_32 } from "../partition/murmur3.ts";
import { HLC_TICK } from "./hlc.ts";
import type { EntrySink } from "./snapshot_codec.ts";

export interface MapRecord {
  key: Uint8Array;
  value: Uint8Array;
  /** 1 on creation, +1 on every update. */
  version: number;
  createdAt: number;
  updatedAt: number;
  /** Time to live from `updatedAt`; absent = forever. */
  ttlMs?: number;
  /** Expires when not accessed for this long (from `lastAccessAt`); absent = never. */
  maxIdleMs?: number;
  /**
   * Last read or write. Reads on the primary move it; backups learn of reads through
   * replicated touches of entries with a max-idle (see expiry.ts).
   */
  lastAccessAt: number;
  /** Reads and writes seen by this replica (LFU; not replicated, so only approximate on a promoted backup). */
  hits: number;
  /** The record's slot in its store (random sampling for eviction; -1 when not stored). */
  slot: number;
}

/** Bytes one record is counted as for `maxBytesPerMember`: key, value and a fixed overhead. */
export const RECORD_OVERHEAD_BYTES = 64;

export function recordBytes(r: { key: Uint8Array; value: Uint8Array }): number {
  if (r instanceof RecordRef) return r.klen + r.vlen + RECORD_OVERHEAD_BYTES;
  return r.key.byteLength + r.value.byteLength + RECORD_OVERHEAD_BYTES;
}

/** A string that identifies key bytes (one char per byte), usable as a JS Map key. */
export function keyId(bytes: Uint8Array): string {
  let s = "";
  const n = bytes.length;
  if (n <= 24) {
    // Most keys: a plain loop costs a fifth of `apply` on a subarray (measured under Bun and Deno).
    for (let i = 0; i < n; i++) s += String.fromCharCode(bytes[i]);
    return s;
  }
  if (n <= 8192) return Reflect.apply(String.fromCharCode, null, bytes);
  for (let i = 0; i < n; i += 8192) {
    // apply takes the bytes as an array-like directly (a spread would iterate them).
    s += Reflect.apply(String.fromCharCode, null, bytes.subarray(i, i + 8192));
  }
  return s;
}

/** The bytes a {@link keyId} string stands for. */
export function idBytes(id: string): Uint8Array {
  const out = new Uint8Array(id.length);
  for (let i = 0; i < id.length; i++) out[i] = id.charCodeAt(i);
  return out;
}

/** Byte-wise equality (CBOR-equal values). */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Columns: per slot, `updatedAt` in a float64 column and U uint32 fields: arena offset, key
 * length, value length (HOLE marks a hole, also a slot not yet written), then at U_NUM + n
 * the number N_* = n, unless that number has a float64 column of its own (see the header).
 */
const U_OFF = 0, U_KLEN = 1, U_VLEN = 2, U_NUM = 3, U = 7;
/** Numbers kept narrow while they fit: version, hits (as they are), createdAt, lastAccessAt (ticks from updatedAt). */
const N_VERSION = 0, N_HITS = 1, N_CREATED = 2, N_ACCESS = 3;
/** Largest tick count or number a uint32 field holds. */
const NARROW_MAX = 0xffffffff;
/** Value length of a hole (above any byte length the wire allows). */
const HOLE = 0xffffffff;
/**
 * Growth of the columns (only inserts grow them: 1.25× keeps less slack for 4 copies of a
 * slot's 36 bytes over its life) and of the arena (also refilled by overwrites: a new arena
 * of 1.5× the live bytes is compacted again after half that many bytes are written).
 */
const COL_GROW = 1.25, ARENA_GROW = 1.5;

/** FNV-1a over key bytes, or over the chars of a {@link keyId} string (same result). */
function hashBytes(b: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < b.length; i++) h = Math.imul(h ^ b[i], 0x01000193);
  return h >>> 0;
}
function hashId(id: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/**
 * One record as `get` or iteration found it. Its numbers are a snapshot; setting
 * `lastAccessAt` or `hits` also writes them to the store while the record is still the one
 * there (not replaced or removed since).
 */
export class RecordRef implements MapRecord {
  #la: number;
  #hits: number;
  constructor(
    readonly store: RecordStore | null,
    /** The arena holding the bytes (at `off`: key, then value). */
    readonly arena: Uint8Array,
    readonly off: number,
    readonly klen: number,
    readonly vlen: number,
    readonly version: number,
    readonly createdAt: number,
    readonly updatedAt: number,
    readonly ttlMs: number | undefined,
    readonly maxIdleMs: number | undefined,
    lastAccessAt: number,
    hits: number,
    readonly slot: number,
  ) {
    this.#la = lastAccessAt;
    this.#hits = hits;
  }

  /** A fresh copy of the key bytes. */
  get key(): Uint8Array {
    return this.arena.slice(this.off, this.off + this.klen);
  }

  /** A fresh copy of the value bytes. */
  get value(): Uint8Array {
    return this.arena.slice(this.off + this.klen, this.off + this.klen + this.vlen);
  }

  /** The key bytes without a copy (do not keep or change them). */
  keyView(): Uint8Array {
    return this.arena.subarray(this.off, this.off + this.klen);
  }

  /** The value bytes without a copy (do not keep or change them). */
  valueView(): Uint8Array {
    return this.arena.subarray(this.off + this.klen, this.off + this.klen + this.vlen);
  }

  /** The key's {@link keyId}. */
  get id(): string {
    return keyId(this.keyView());
  }

  get lastAccessAt(): number {
    return this.#la;
  }
  set lastAccessAt(t: number) {
    this.#la = t;
    this.store?.writeBack(this, N_ACCESS, t);
  }

  get hits(): number {
    return this.#hits;
  }
  set hits(n: number) {
    this.#hits = n;
    this.store?.writeBack(this, N_HITS, n);
  }
}

/** Records with a TTL or max-idle stored so far, in any store of this process (see {@link expiringStored}). */
let expiringStoredCount = 0;

/**
 * How many records with a TTL or max-idle any store of this process took so far: while it has
 * not moved, no store gained one (the expiry sweep skips its walk then; expiry.ts).
 */
export function expiringStored(): number {
  return expiringStoredCount;
}

export class RecordStore {
  /** The map name as UTF-8, for digests. */
  readonly nameBytes: Uint8Array;
  /** murmur3 of `nameBytes` with seeds 1 and 2: where each record's digest hashes start (partition_data.ts). */
  readonly nameHashes: [number, number];
  /** Records with a TTL or max-idle (the expiry sweep skips stores without any). */
  expiring = 0;
  /** Sum of `recordBytes` over the records. */
  bytes = 0;
  /** This map's share of the partition digest (kept by PartitionData). */
  readonly digest: [number, number] = [0, 0];
  #size = 0;
  /** Slots in use or holes: 0 ≤ slot < #top. */
  #top = 0;
  /** Holes below #top, reused first. */
  #free: number[] = [];
  /** updatedAt per slot; its length is the columns' capacity in slots. */
  #upd = new Float64Array(4);
  #u = new Uint32Array(4 * U);
  /** Per N_* number: its float64 column once a value did not fit its uint32 field, else null. */
  #wide: Array<Float64Array | null> = [null, null, null, null];
  /** TTL and max-idle per slot (0 = none); allocated with the first record that has one. */
  #exp: Float64Array | null = null;
  /** Hash table: slot + 1, 0 = empty; a power of two long, at most 3/4 full. */
  #table = new Int32Array(8);
  #arena = new Uint8Array(256);
  #used = 0;
  /** Bytes of live records in the arena. */
  #live = 0;

  constructor(readonly name: string) {
    this.nameBytes = new TextEncoder().encode(name);
    this.nameHashes = [murmur3_32(this.nameBytes, 1), murmur3_32(this.nameBytes, 2)];
  }

  get size(): number {
    return this.#size;
  }

  /**
   * Bytes this store's typed arrays take (bench/memory.ts): the per-slot columns, the hash
   * table, and the arena with how much of it is written and how much holds live records.
   */
  footprint(): { slots: number; columns: number; table: number; arena: number; arenaUsed: number; arenaLive: number } {
    return {
      slots: this.#top,
      columns: this.#upd.byteLength + this.#u.byteLength + (this.#exp?.byteLength ?? 0) +
        this.#wide.reduce((n, w) => n + (w?.byteLength ?? 0), 0),
      table: this.#table.byteLength,
      arena: this.#arena.byteLength,
      arenaUsed: this.#used,
      arenaLive: this.#live,
    };
  }

  /** One more than the highest slot in use (eviction samples slots below it; holes read as undefined). */
  get slotCount(): number {
    return this.#top;
  }

  get(key: Uint8Array): RecordRef | undefined {
    const slot = this.#find(key, null, hashBytes(key));
    return slot < 0 ? undefined : this.#ref(slot);
  }

  /** The record whose key has {@link keyId} `id`. */
  getId(id: string): RecordRef | undefined {
    const slot = this.#find(null, id, hashId(id));
    return slot < 0 ? undefined : this.#ref(slot);
  }

  has(id: string): boolean {
    return this.#find(null, id, hashId(id)) >= 0;
  }

  /**
   * Inserts or replaces the record with id `id` (= keyId(rec.key)) with a copy of `rec`'s
   * value and numbers (its `slot` is ignored). What an earlier `get` returned stays as it was.
   */
  set(id: string, input: MapRecord): void {
    const h = hashId(id);
    const vsrc = input instanceof RecordRef ? input.valueView() : input.value;
    const klen = id.length, vlen = vsrc.byteLength;
    const off = this.#place(this.#find(null, id, h), h, klen, vlen);
    const a = this.#arena;
    for (let i = 0; i < klen; i++) a[off + i] = id.charCodeAt(i);
    a.set(vsrc, off + klen);
    this.#numbers(
      this.#slotAt,
      input.version,
      input.createdAt,
      input.updatedAt,
      input.lastAccessAt,
      input.hits,
      input.ttlMs ?? 0,
      input.maxIdleMs ?? 0,
    );
  }

  /**
   * Inserts or replaces the record of key `key` (bytes) with value `value` and these numbers,
   * copying the bytes: `set` without a record object or key id (installing a snapshot, 0 hits).
   * `slot`: the key's slot when the caller just looked it up (`get(key)?.slot ?? -1`, with no
   * change to the store since), which saves a write its second lookup.
   */
  put(
    key: Uint8Array,
    value: Uint8Array,
    version: number,
    createdAt: number,
    updatedAt: number,
    lastAccessAt: number,
    ttl: number,
    maxIdle: number,
    hits = 0,
    slot?: number,
  ): void {
    // A new key's hash places it in the table; a found one keeps its place.
    const h = slot === undefined || slot < 0 ? hashBytes(key) : 0;
    if (slot === undefined) slot = this.#find(key, null, h);
    const klen = key.byteLength, vlen = value.byteLength;
    const off = this.#place(slot, h, klen, vlen);
    const a = this.#arena;
    if (klen + vlen <= 256) {
      for (let i = 0; i < klen; i++) a[off + i] = key[i];
      for (let i = 0, o = off + klen; i < vlen; i++) a[o + i] = value[i];
    } else {
      a.set(key, off);
      a.set(value, off + klen);
    }
    this.#numbers(this.#slotAt, version, createdAt, updatedAt, lastAccessAt, hits, ttl, maxIdle);
  }

  /** The slot `#place` used last. */
  #slotAt = -1;

  /**
   * The slot for a record of key hash `h` (`slot`: its current one, or -1 for a new key), with
   * room for its bytes: returns where in the arena they go (the slot is in #slotAt).
   */
  #place(slot: number, h: number, klen: number, vlen: number): number {
    if (slot >= 0) {
      this.#forget(slot);
      // A hole while the arena may be compacted below (its old bytes are not copied).
      this.#u[slot * U + U_VLEN] = HOLE;
    } else {
      slot = this.#newSlot();
      this.#insert(slot, h);
      this.#size++;
    }
    const off = this.#reserve(klen + vlen);
    const u = this.#u, ub = slot * U;
    u[ub + U_OFF] = off;
    u[ub + U_KLEN] = klen;
    u[ub + U_VLEN] = vlen;
    this.#live += klen + vlen;
    this.bytes += klen + vlen + RECORD_OVERHEAD_BYTES;
    this.#slotAt = slot;
    return off;
  }

  #numbers(
    slot: number,
    version: number,
    createdAt: number,
    updatedAt: number,
    lastAccessAt: number,
    hits: number,
    ttl: number,
    mi: number,
  ): void {
    // updatedAt first: createdAt and lastAccessAt are stored relative to it.
    this.#upd[slot] = updatedAt;
    this.#setNum(slot, N_VERSION, version);
    this.#setNum(slot, N_HITS, hits);
    this.#setNum(slot, N_CREATED, createdAt);
    this.#setNum(slot, N_ACCESS, lastAccessAt);
    if (ttl || mi) {
      const exp = this.#expCols();
      exp[slot * 2] = ttl;
      exp[slot * 2 + 1] = mi;
      this.expiring++;
      expiringStoredCount++;
    } else if (this.#exp) {
      this.#exp[slot * 2] = 0;
      this.#exp[slot * 2 + 1] = 0;
    }
  }

  /** Removes the record whose key has id `id` (or is `id`, as bytes). @returns the removed record */
  delete(id: string | Uint8Array): RecordRef | undefined {
    const str = typeof id === "string";
    const h = str ? hashId(id) : hashBytes(id);
    const slot = str ? this.#find(null, id, h) : this.#find(id, null, h);
    if (slot < 0) return undefined;
    const ref = this.#ref(slot);
    this.#remove(slot, h);
    this.#forget(slot);
    this.#u[slot * U + U_VLEN] = HOLE;
    this.#size--;
    if (slot === this.#top - 1) this.#top--;
    else this.#free.push(slot);
    if (this.#size === 0) (this.#top = 0, this.#free = [], this.#wide = [null, null, null, null]);
    return ref;
  }

  /** The record in slot `i`, or undefined for a hole (0 ≤ i < slotCount). */
  atSlot(i: number): RecordRef | undefined {
    return i >= 0 && i < this.#top && this.#u[i * U + U_VLEN] !== HOLE ? this.#ref(i) : undefined;
  }

  /**
   * The records in slot order. Records removed during the walk are not visited after their
   * removal; records added may be or not (a reused hole behind the walk is not).
   */
  *values(): IterableIterator<RecordRef> {
    for (let i = 0; i < this.#top; i++) {
      if (this.#u[i * U + U_VLEN] !== HOLE) yield this.#ref(i);
    }
  }

  /**
   * Writes every record to `sink` in slot order (the order of {@link values}), straight from
   * the arena and the columns: no ref or copy per record.
   */
  packInto(sink: EntrySink): void {
    const u = this.#u, a = this.#arena, exp = this.#exp, name = this.name;
    for (let s = 0; s < this.#top; s++) {
      const ub = s * U, vlen = u[ub + U_VLEN];
      if (vlen === HOLE) continue;
      const off = u[ub + U_OFF], klen = u[ub + U_KLEN];
      sink.entry(
        name,
        a,
        off,
        klen,
        a,
        off + klen,
        vlen,
        this.#num(s, N_VERSION),
        this.#num(s, N_CREATED),
        this.#upd[s],
        exp ? exp[s * 2] : 0,
        exp ? exp[s * 2 + 1] : 0,
        this.#num(s, N_ACCESS),
      );
    }
  }

  /**
   * Writes a ref's changed number (`n`: an N_* index, lastAccessAt or hits) back while its
   * slot still holds the same record.
   */
  writeBack(ref: RecordRef, n: number, v: number): void {
    const ub = ref.slot * U;
    if (this.#arena === ref.arena && this.#u[ub + U_OFF] === ref.off && this.#u[ub + U_VLEN] !== HOLE) {
      this.#setNum(ref.slot, n, v);
    }
  }

  /** Number `n` (N_*) of the record in `slot`. */
  #num(slot: number, n: number): number {
    const w = this.#wide[n];
    if (w !== null) return w[slot];
    const x = this.#u[slot * U + U_NUM + n];
    if (n === N_CREATED) return this.#upd[slot] - x * HLC_TICK;
    if (n === N_ACCESS) return this.#upd[slot] + x * HLC_TICK;
    return x;
  }

  /** Sets number `n` (N_*) of the record in `slot` (its updatedAt already set). */
  #setNum(slot: number, n: number, v: number): void {
    let w = this.#wide[n];
    if (w === null) {
      const x = this.#narrow(slot, n, v);
      if (x >= 0) {
        this.#u[slot * U + U_NUM + n] = x;
        return;
      }
      w = this.#widen(n);
    }
    w[slot] = v;
  }

  /** What the uint32 field of number `n` holds for value `v` in `slot`, or -1 when it cannot hold `v` exactly. */
  #narrow(slot: number, n: number, v: number): number {
    let x = v;
    if (n === N_CREATED) x = (this.#upd[slot] - v) / HLC_TICK;
    else if (n === N_ACCESS) x = (v - this.#upd[slot]) / HLC_TICK;
    if (!Number.isInteger(x) || x < 0 || x > NARROW_MAX) return -1;
    // Ticks read back as the same double (a difference can round; a read is exact then).
    if (n === N_CREATED && this.#upd[slot] - x * HLC_TICK !== v) return -1;
    if (n === N_ACCESS && this.#upd[slot] + x * HLC_TICK !== v) return -1;
    return x;
  }

  /** Gives number `n` its float64 column, holding every stored record's value. */
  #widen(n: number): Float64Array {
    const w = new Float64Array(this.#upd.length), u = this.#u;
    for (let s = 0; s < this.#top; s++) if (u[s * U + U_VLEN] !== HOLE) w[s] = this.#num(s, n);
    return this.#wide[n] = w;
  }

  #ref(slot: number): RecordRef {
    const u = this.#u, ub = slot * U;
    const exp = this.#exp;
    const ttl = exp ? exp[slot * 2] : 0, mi = exp ? exp[slot * 2 + 1] : 0;
    return new RecordRef(
      this,
      this.#arena,
      u[ub + U_OFF],
      u[ub + U_KLEN],
      u[ub + U_VLEN],
      this.#num(slot, N_VERSION),
      this.#num(slot, N_CREATED),
      this.#upd[slot],
      ttl || undefined,
      mi || undefined,
      this.#num(slot, N_ACCESS),
      this.#num(slot, N_HITS),
      slot,
    );
  }

  /** Counts out the record in `slot` (its bytes become garbage in the arena). */
  #forget(slot: number): void {
    const u = this.#u, ub = slot * U;
    const n = u[ub + U_KLEN] + u[ub + U_VLEN];
    this.#live -= n;
    this.bytes -= n + RECORD_OVERHEAD_BYTES;
    const exp = this.#exp;
    if (exp && (exp[slot * 2] || exp[slot * 2 + 1])) this.expiring--;
  }

  /**
   * The slot of the key given as bytes or as an id string, or -1. Keys of the key's length
   * in its probe run are compared byte by byte, the last byte first (where keys numbered in
   * sequence differ): no hash is kept per slot.
   */
  #find(key: Uint8Array | null, id: string | null, h: number): number {
    const t = this.#table, mask = t.length - 1, u = this.#u, a = this.#arena;
    const len = key ? key.length : id!.length;
    const last = key ? key[len - 1] : id!.charCodeAt(len - 1);
    for (let p = h & mask;; p = (p + 1) & mask) {
      const e = t[p];
      if (e === 0) return -1;
      const s = e - 1, ub = s * U;
      if (u[ub + U_KLEN] !== len) continue;
      const off = u[ub + U_OFF];
      if (len !== 0 && a[off + len - 1] !== last) continue;
      let i = 0;
      if (key) { while (i < len && a[off + i] === key[i]) i++; }
      else while (i < len && a[off + i] === id!.charCodeAt(i)) i++;
      if (i === len) return s;
    }
  }

  /** The hash of the key stored in `slot`. */
  #hashAt(slot: number): number {
    const u = this.#u, a = this.#arena, off = u[slot * U + U_OFF], end = off + u[slot * U + U_KLEN];
    let h = 0x811c9dc5;
    for (let i = off; i < end; i++) h = Math.imul(h ^ a[i], 0x01000193);
    return h >>> 0;
  }

  #insert(slot: number, h: number): void {
    if ((this.#size + 1) * 4 > this.#table.length * 3) this.#rehash(this.#table.length * 2);
    const t = this.#table, mask = t.length - 1;
    let p = h & mask;
    while (t[p] !== 0) p = (p + 1) & mask;
    t[p] = slot + 1;
  }

  /** Removes `slot` from the hash table (backward-shift deletion: no tombstones). */
  #remove(slot: number, h: number): void {
    const t = this.#table, mask = t.length - 1;
    let p = h & mask;
    while (t[p] !== slot + 1) p = (p + 1) & mask;
    for (let q = (p + 1) & mask;; q = (q + 1) & mask) {
      const e = t[q];
      if (e === 0) break;
      const home = this.#hashAt(e - 1) & mask;
      // Move e back to p when its home is not cyclically in (p, q].
      if ((q > p && (home <= p || home > q)) || (q < p && home <= p && home > q)) {
        t[p] = e;
        p = q;
      }
    }
    t[p] = 0;
  }

  #rehash(cap: number): void {
    const t = new Int32Array(cap), mask = cap - 1, u = this.#u;
    for (let s = 0; s < this.#top; s++) {
      if (u[s * U + U_VLEN] === HOLE) continue;
      let p = this.#hashAt(s) & mask;
      while (t[p] !== 0) p = (p + 1) & mask;
      t[p] = s + 1;
    }
    this.#table = t;
  }

  /**
   * Makes room for `records` more records of `bytes` key and value bytes in all, at once
   * (installing a snapshot: growing step by step copies the columns and the arena many times).
   */
  reserve(records: number, bytes: number): void {
    const slots = this.#top + records;
    if (slots > this.#upd.length) this.#growColumns(slots);
    let cap = this.#table.length;
    while ((this.#size + records) * 4 > cap * 3) cap *= 2;
    if (cap > this.#table.length) this.#rehash(cap);
    if (this.#used + bytes > this.#arena.length) {
      const a = new Uint8Array(this.#used + bytes);
      a.set(this.#arena.subarray(0, this.#used));
      this.#arena = a;
    }
  }

  #newSlot(): number {
    if (this.#free.length > 0) return this.#free.pop()!;
    const slot = this.#top++;
    if (slot >= this.#upd.length) this.#growColumns(Math.ceil((slot + 1) * COL_GROW));
    // A hole until #place has its bytes (a rehash or compaction before then skips it).
    this.#u[slot * U + U_VLEN] = HOLE;
    return slot;
  }

  /** Columns for `cap` slots, holding what the current ones hold. */
  #growColumns(cap: number): void {
    const upd = new Float64Array(cap), u = new Uint32Array(cap * U);
    upd.set(this.#upd);
    u.set(this.#u);
    this.#upd = upd;
    this.#u = u;
    for (let n = 0; n < this.#wide.length; n++) {
      const w = this.#wide[n];
      if (w === null) continue;
      const grown = new Float64Array(cap);
      grown.set(w);
      this.#wide[n] = grown;
    }
    if (this.#exp) {
      const exp = new Float64Array(cap * 2);
      exp.set(this.#exp);
      this.#exp = exp;
    }
  }

  #expCols(): Float64Array {
    return this.#exp ??= new Float64Array(this.#upd.length * 2);
  }

  /**
   * Room for `n` bytes at the end of the arena; when full, a new arena holding only the live
   * records (the old one stays as it is for the refs still reading it).
   */
  #reserve(n: number): number {
    if (this.#used + n <= this.#arena.length) {
      const off = this.#used;
      this.#used += n;
      return off;
    }
    const a = new Uint8Array(Math.max(256, Math.ceil((this.#live + n) * ARENA_GROW)));
    const old = this.#arena, u = this.#u;
    let at = 0;
    for (let s = 0; s < this.#top; s++) {
      const ub = s * U;
      if (u[ub + U_VLEN] === HOLE) continue;
      const off = u[ub + U_OFF], len = u[ub + U_KLEN] + u[ub + U_VLEN];
      // A plain loop for small records: a subarray per record costs more (Bun).
      if (len <= 256) { for (let i = 0; i < len; i++) a[at + i] = old[off + i]; }
      else a.set(old.subarray(off, off + len), at);
      u[ub + U_OFF] = at;
      at += len;
    }
    this.#arena = a;
    this.#used = at + n;
    return at;
  }
}
