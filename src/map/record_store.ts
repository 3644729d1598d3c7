/**
 * Records of one map in one partition. Keys and values are stored as their CBOR bytes, so
 * two keys are the same key exactly when their encodings are equal.
 *
 * A record carries a version (bumped on every write), creation and update times (TTL, merge
 * policies), its expiry settings as the primary decided them at the last write (see
 * expiry.ts), its last access time (max-idle, LRU) and a hit count (LFU).
 *
 * Stored compactly: the key and the value are held as byte strings (one char per byte, see
 * {@link keyId}), the key being the store's own `Map` key, rather than as two `Uint8Array`
 * views into the received frame (which cost a typed-array object each and kept the whole
 * frame alive). `key` and `value` hand out fresh bytes on each read.
 */
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
  /** Index in the store's slot array (random sampling for eviction). */
  slot: number;
}

/** A record as the store keeps it: key (= the store's id) and value as byte strings. */
export class StoredRecord implements MapRecord {
  constructor(
    readonly id: string,
    readonly v: string,
    public version: number,
    public createdAt: number,
    public updatedAt: number,
    public ttlMs: number | undefined,
    public maxIdleMs: number | undefined,
    public lastAccessAt: number,
    public hits: number,
    public slot: number,
  ) {}

  /** A stored copy of `r` under id `id`, with value bytes `v`. */
  static of(id: string, v: string, r: Omit<MapRecord, "key" | "value">): StoredRecord {
    const { version, createdAt, updatedAt, ttlMs, maxIdleMs, lastAccessAt, hits, slot } = r;
    return new StoredRecord(id, v, version, createdAt, updatedAt, ttlMs, maxIdleMs, lastAccessAt, hits, slot);
  }

  get key(): Uint8Array {
    return idBytes(this.id);
  }

  get value(): Uint8Array {
    return idBytes(this.v);
  }
}

/** Bytes one record is counted as for `maxBytesPerMember`: key, value and a fixed overhead. */
export const RECORD_OVERHEAD_BYTES = 64;

export function recordBytes(r: { key: Uint8Array; value: Uint8Array }): number {
  if (r instanceof StoredRecord) return r.id.length + r.v.length + RECORD_OVERHEAD_BYTES;
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

/** The value of `r` as a byte string (also from a spread copy of a stored record, which has no `value`). */
function valueString(r: MapRecord): string {
  if (r instanceof StoredRecord) return r.v;
  const copy = r as Partial<StoredRecord>;
  return r.value === undefined && typeof copy.v === "string" ? copy.v : keyId(r.value);
}

export class RecordStore {
  readonly records = new Map<string, StoredRecord>();
  /** The map name as UTF-8, for digests. */
  readonly nameBytes: Uint8Array;
  /** Records with a TTL or max-idle (the expiry sweep skips stores without any). */
  expiring = 0;
  /** Sum of `recordBytes` over the records. */
  bytes = 0;
  /** This map's share of the partition digest (kept by PartitionData). */
  readonly digest: [number, number] = [0, 0];
  /** Record ids by slot, for O(1) random sampling. */
  readonly #slots: string[] = [];

  constructor(readonly name: string) {
    this.nameBytes = new TextEncoder().encode(name);
  }

  get size(): number {
    return this.records.size;
  }

  get(key: Uint8Array): MapRecord | undefined {
    return this.records.get(keyId(key));
  }

  /**
   * Inserts or replaces the record with id `id` (= keyId(rec.key)) with a compact copy of
   * `rec` (its slot set), which later reads return: change a record through what `get` returns.
   */
  set(id: string, input: MapRecord): void {
    const rec = StoredRecord.of(id, valueString(input), input);
    const cur = this.records.get(id);
    if (cur) {
      rec.slot = cur.slot;
      this.#forget(cur);
    } else {
      rec.slot = this.#slots.length;
      this.#slots.push(id);
    }
    this.records.set(id, rec);
    if (rec.ttlMs !== undefined || rec.maxIdleMs !== undefined) this.expiring++;
    this.bytes += recordBytes(rec);
  }

  /** Removes the record with id `id`. @returns the removed record */
  delete(id: string): MapRecord | undefined {
    const cur = this.records.get(id);
    if (!cur) return undefined;
    this.records.delete(id);
    this.#forget(cur);
    const last = this.#slots.pop()!;
    if (cur.slot < this.#slots.length) {
      this.#slots[cur.slot] = last;
      this.records.get(last)!.slot = cur.slot;
    }
    return cur;
  }

  /** The record in slot `i` (0 ≤ i < size). */
  atSlot(i: number): MapRecord | undefined {
    const id = this.#slots[i];
    return id === undefined ? undefined : this.records.get(id);
  }

  #forget(r: StoredRecord): void {
    if (r.ttlMs !== undefined || r.maxIdleMs !== undefined) this.expiring--;
    this.bytes -= recordBytes(r);
  }
}
