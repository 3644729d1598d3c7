/**
 * The packed form of a snapshot chunk's entries (MapSnapshotPacked, PROTOCOL.md kind 106):
 * one byte string per chunk instead of a CBOR array per entry. Encoding and decoding are a
 * walk over one buffer (no CBOR item, object or check per field), and the bytes shrink: a
 * map name is written once per chunk, lengths and integers are varints, an `updatedAt` equal
 * to `createdAt` is one flag bit.
 *
 * Layout (integers are unsigned LEB128 varints of at most 8 bytes and at most 2^53 − 1;
 * stamps are float64, little-endian):
 *
 * ```
 * 0x01                          format
 * varint M, M × (varint n, n bytes of UTF-8)      map names, each ≤ 256 UTF-16 units
 * varint N                      entries
 * N × entry:
 *   u8 flags                    bit 0: expiry fields follow; bit 1: updatedAt = createdAt;
 *                               bit 2 (with bit 0): lastAccessAt = updatedAt; others 0
 *   varint map index (< M)
 *   varint key length, key bytes
 *   varint value length, value bytes
 *   varint version
 *   f64 createdAt, [f64 updatedAt]
 *   [varint ttlMs, varint maxIdleMs, [f64 lastAccessAt]]
 * ```
 *
 * Format 2 is format 1 compressed with raw DEFLATE (RFC 1951) behind the byte 0x02
 * ({@link deflatePacked}); it inflates to at most the message size limit.
 *
 * {@link unpackEntries} accepts exactly what {@link isSnapshotEntry} accepts, entry by entry,
 * and nothing else: every length is checked against the bytes left before it is read,
 * stamps must be finite in [0, 2^53 − 1], the entry count cannot exceed what the bytes can
 * hold, and no byte may follow the last entry. Malformed input gives a reason, never a throw.
 */
import { deflateRawSync, inflateRawSync } from "node:zlib";
import { Limits } from "../wire/limits.ts";

/**
 * One entry of a snapshot: [map, key, value, version, createdAt, updatedAt] and, for an entry
 * with an expiry, [..., ttlMs (0 = none), maxIdleMs (0 = none), lastAccessAt]. Version 0 marks
 * a tombstone (see partition_data.ts SnapshotData).
 */
export type SnapshotEntry =
  | [string, Uint8Array, Uint8Array, number, number, number]
  | [string, Uint8Array, Uint8Array, number, number, number, number, number, number];

const FORMAT = 1;
/** Format byte of packed entries compressed with raw DEFLATE (RFC 1951): the rest inflates to a format-1 string. */
const FORMAT_DEFLATE = 2;
const F_EXPIRY = 1;
const F_SAME_UPDATED = 2;
const F_SAME_ACCESS = 4;
const MAX_INT = Number.MAX_SAFE_INTEGER;
/** The fewest bytes an entry takes: flags, map index, two lengths, version, one stamp. */
const MIN_ENTRY_BYTES = 5 + 8;
/** Map names per chunk at most (a chunk names each map it holds once). */
export const MAX_PACKED_MAPS = 4096;
/** A map name's UTF-16 length at most (as the schema of snapshot entries). */
const MAX_MAP_NAME = 256;

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder("utf-8", { fatal: true });

function varintSize(x: number): number {
  let n = 1;
  while (x >= 128) {
    x = Math.floor(x / 128);
    n++;
  }
  return n;
}

/** Where records are written to, one at a time (RecordStore.packInto, PartitionData.snapshotInto). */
export type EntrySink = Pick<EntryPacker, "entry">;

/**
 * Writes packed chunks entry by entry, straight from where the records are (no entry tuple
 * or copy of a key or value in between), and cuts a chunk once about `chunkBytes` of entries
 * are in it (each counted as its key, value and 24 bytes, 40 with an expiry). The entries go
 * to a reused scratch buffer; a cut prefixes them with the chunk's map names and count.
 * @throws RangeError for an entry no receiver would accept (a negative or fractional version
 *   or expiry, a stamp outside [0, 2^53 − 1], a map name over 256 characters): the sender's
 *   own data, so a bug, never network input
 */
export class EntryPacker {
  /** The chunks cut so far. */
  readonly chunks: Uint8Array[] = [];
  #buf = new Uint8Array(64 * 1024);
  #view = new DataView(this.#buf.buffer);
  #at = 0;
  #n = 0;
  #estimate = 0;
  #maps = new Map<string, number>();
  #names: Uint8Array[] = [];
  #lastMap = "";
  #lastIndex = -1;

  constructor(readonly chunkBytes = Infinity) {}

  /**
   * One entry: the key at `kb[koff, koff + klen)`, the value at `vb[voff, voff + vlen)`; it
   * has an expiry (the 9-field form) when `ttl` or `maxIdle` is non-zero, unless `expiry` says.
   */
  entry(
    map: string,
    kb: Uint8Array,
    koff: number,
    klen: number,
    vb: Uint8Array,
    voff: number,
    vlen: number,
    version: number,
    createdAt: number,
    updatedAt: number,
    ttl: number,
    maxIdle: number,
    lastAccessAt: number,
    expiry = ttl !== 0 || maxIdle !== 0,
  ): void {
    let mi = this.#lastIndex;
    if (map !== this.#lastMap || mi < 0) {
      mi = this.#maps.get(map) ?? -1;
      if (mi < 0) {
        if (map.length > MAX_MAP_NAME) throw new RangeError(`Cannot pack map name of ${map.length} characters`);
        mi = this.#names.length;
        this.#maps.set(map, mi);
        this.#names.push(utf8.encode(map));
      }
      this.#lastMap = map;
      this.#lastIndex = mi;
    }
    checkUint(version);
    // At most: flags, 4 varints of up to 8 bytes, 3 stamps and 2 varints with an expiry.
    this.#room(klen + vlen + 80);
    const out = this.#buf, view = this.#view;
    let at = this.#at;
    const sameUpdated = updatedAt === createdAt;
    const sameAccess = expiry && lastAccessAt === updatedAt;
    out[at++] = (expiry ? F_EXPIRY : 0) | (sameUpdated ? F_SAME_UPDATED : 0) | (sameAccess ? F_SAME_ACCESS : 0);
    at = writeUint(out, at, mi);
    at = writeUint(out, at, klen);
    if (klen > 16) out.set(kb.subarray(koff, koff + klen), at);
    else for (let k = 0; k < klen; k++) out[at + k] = kb[koff + k];
    at += klen;
    at = writeUint(out, at, vlen);
    if (vlen > 16) out.set(vb.subarray(voff, voff + vlen), at);
    else for (let k = 0; k < vlen; k++) out[at + k] = vb[voff + k];
    at += vlen;
    at = writeUint(out, at, version);
    at = writeStamp(view, at, createdAt);
    if (!sameUpdated) at = writeStamp(view, at, updatedAt);
    if (expiry) {
      at = writeUint(out, at, checkUint(ttl));
      at = writeUint(out, at, checkUint(maxIdle));
      if (!sameAccess) at = writeStamp(view, at, lastAccessAt);
    }
    this.#at = at;
    this.#n++;
    this.#estimate += klen + vlen + (expiry ? 40 : 24);
    if (this.#estimate >= this.chunkBytes) this.cut();
  }

  /** Cuts a chunk of the entries written since the last cut (possibly none). */
  cut(): Uint8Array {
    let size = 1 + varintSize(this.#names.length) + varintSize(this.#n) + this.#at;
    for (const n of this.#names) size += varintSize(n.byteLength) + n.byteLength;
    const out = new Uint8Array(size);
    let at = 0;
    out[at++] = FORMAT;
    at = writeUint(out, at, this.#names.length);
    for (const n of this.#names) {
      at = writeUint(out, at, n.byteLength);
      out.set(n, at);
      at += n.byteLength;
    }
    at = writeUint(out, at, this.#n);
    out.set(this.#buf.subarray(0, this.#at), at);
    this.#at = 0;
    this.#n = 0;
    this.#estimate = 0;
    this.#maps.clear();
    this.#names = [];
    this.#lastIndex = -1;
    this.chunks.push(out);
    return out;
  }

  /** Room for `n` more bytes in the scratch buffer. */
  #room(n: number): void {
    if (this.#at + n <= this.#buf.byteLength) return;
    const buf = new Uint8Array(Math.max(2 * this.#buf.byteLength, this.#at + n));
    buf.set(this.#buf.subarray(0, this.#at));
    this.#buf = buf;
    this.#view = new DataView(buf.buffer);
  }
}

function writeUint(out: Uint8Array, at: number, x: number): number {
  while (x >= 128) {
    out[at++] = (x % 128) | 128;
    x = Math.floor(x / 128);
  }
  out[at++] = x;
  return at;
}

function writeStamp(view: DataView, at: number, x: number): number {
  if (!(x >= 0 && x <= MAX_INT)) throw new RangeError(`Cannot pack stamp ${x}`);
  view.setFloat64(at, x, true);
  return at + 8;
}

/**
 * Packs `entries[from, to)` into one chunk (see {@link EntryPacker}, which throws the same
 * RangeErrors).
 */
export function packEntries(entries: readonly SnapshotEntry[], from = 0, to = entries.length): Uint8Array {
  const w = new EntryPacker();
  for (let i = from; i < to; i++) {
    const e = entries[i];
    const expiry = e.length === 9;
    // A 9-field entry keeps its expiry fields even when both are 0 (isSnapshotEntry accepts it).
    w.entry(
      e[0],
      e[1],
      0,
      e[1].byteLength,
      e[2],
      0,
      e[2].byteLength,
      e[3],
      e[4],
      e[5],
      expiry ? e[6] : 0,
      expiry ? e[7] : 0,
      expiry ? e[8] : e[5],
      expiry,
    );
  }
  return w.cut();
}

function checkUint(x: number): number {
  if (!Number.isInteger(x) || x < 0 || x > MAX_INT) throw new RangeError(`Cannot pack ${x} as an unsigned integer`);
  return x;
}

/**
 * `packed` compressed with raw DEFLATE (level 1, the fastest) behind format byte 2, or null
 * when that does not save at least an eighth of the bytes (values that are already
 * compressed or random): the caller then sends `packed` as it is.
 */
export function deflatePacked(packed: Uint8Array): Uint8Array | null {
  const z = deflateRawSync(packed, { level: 1 });
  if (z.byteLength + 1 > packed.byteLength * 0.875) return null;
  const out = new Uint8Array(z.byteLength + 1);
  out[0] = FORMAT_DEFLATE;
  out.set(z, 1);
  return out;
}

/** Why packed entries were refused. */
class Malformed extends Error {}

/**
 * Unpacks what {@link packEntries} wrote. Keys and values are views into `bytes`, except the
 * keys of tombstones (version 0), which are copied: a partition keeps its tombstones' keys,
 * and a view would keep the whole chunk alive.
 * @returns the entries, or the reason the bytes are malformed
 */
export function unpackEntries(bytes: Uint8Array): SnapshotEntry[] | string {
  try {
    if (bytes instanceof Uint8Array && bytes[0] === FORMAT_DEFLATE) return unpack(inflate(bytes));
    return unpack(bytes);
  } catch (e) {
    if (e instanceof Malformed) return e.message;
    return `malformed packed entries: ${String((e as Error)?.message ?? e).slice(0, 80)}`;
  }
}

/** Inflates format 2, to at most the message size limit (a small string cannot expand without bound). */
function inflate(bytes: Uint8Array): Uint8Array {
  let raw: Uint8Array;
  try {
    raw = inflateRawSync(bytes.subarray(1), { maxOutputLength: Limits.maxMessageBytes });
  } catch (e) {
    throw new Malformed(`compressed entries do not inflate: ${String((e as Error)?.message ?? e).slice(0, 80)}`);
  }
  if (raw[0] === FORMAT_DEFLATE) throw new Malformed("compressed entries inflate to compressed entries");
  return new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength);
}

function unpack(bytes: Uint8Array): SnapshotEntry[] {
  if (!(bytes instanceof Uint8Array)) throw new Malformed("packed entries are not bytes");
  if (bytes.byteLength > Limits.maxMessageBytes) throw new Malformed("packed entries exceed the message size limit");
  const end = bytes.byteLength;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  const uint = (): number => {
    let x = 0;
    let scale = 1;
    for (let k = 0; k < 8; k++) {
      if (at >= end) throw new Malformed("truncated varint");
      const b = bytes[at++];
      x += (b & 127) * scale;
      if (b < 128) {
        if (x > MAX_INT) throw new Malformed("integer above 2^53 - 1");
        if (b === 0 && k > 0) throw new Malformed("overlong varint");
        return x;
      }
      scale *= 128;
    }
    throw new Malformed("varint longer than 8 bytes");
  };
  const take = (what: string): Uint8Array => {
    const n = uint();
    if (n > end - at) throw new Malformed(`${what} of ${n} bytes exceeds the ${end - at} left`);
    const b = bytes.subarray(at, at + n);
    at += n;
    return b;
  };
  const stamp = (): number => {
    if (end - at < 8) throw new Malformed("truncated stamp");
    const x = view.getFloat64(at, true);
    at += 8;
    if (!(x >= 0 && x <= MAX_INT)) throw new Malformed(`stamp ${x} outside [0, 2^53 - 1]`);
    return x;
  };
  if (end === 0 || bytes[at++] !== FORMAT) throw new Malformed("unknown packed entries format");
  const m = uint();
  if (m > MAX_PACKED_MAPS) throw new Malformed(`${m} map names exceed ${MAX_PACKED_MAPS}`);
  const names: string[] = [];
  for (let k = 0; k < m; k++) {
    let name: string;
    try {
      name = utf8Strict.decode(take("map name"));
    } catch (e) {
      if (e instanceof Malformed) throw e;
      throw new Malformed("map name is not UTF-8");
    }
    if (name.length > MAX_MAP_NAME) throw new Malformed(`map name of ${name.length} characters exceeds 256`);
    names.push(name);
  }
  const n = uint();
  if (n > (end - at) / MIN_ENTRY_BYTES) throw new Malformed(`${n} entries cannot fit in ${end - at} bytes`);
  const out: SnapshotEntry[] = new Array(n);
  for (let i = 0; i < n; i++) {
    if (at >= end) throw new Malformed("truncated entry");
    const flags = bytes[at++];
    if (flags & ~(F_EXPIRY | F_SAME_UPDATED | F_SAME_ACCESS)) throw new Malformed(`unknown entry flags ${flags}`);
    if ((flags & F_SAME_ACCESS) && !(flags & F_EXPIRY)) throw new Malformed("lastAccessAt flag without expiry");
    const mi = uint();
    if (mi >= names.length) throw new Malformed(`map index ${mi} of ${names.length} names`);
    const key = take("key");
    const value = take("value");
    const version = uint();
    const createdAt = stamp();
    const updatedAt = flags & F_SAME_UPDATED ? createdAt : stamp();
    const k = version === 0 ? key.slice() : key;
    if (flags & F_EXPIRY) {
      const ttl = uint();
      const maxIdle = uint();
      const lastAccessAt = flags & F_SAME_ACCESS ? updatedAt : stamp();
      out[i] = [names[mi], k, value, version, createdAt, updatedAt, ttl, maxIdle, lastAccessAt];
    } else {
      out[i] = [names[mi], k, value, version, createdAt, updatedAt];
    }
  }
  if (at !== end) throw new Malformed(`${end - at} bytes after the last entry`);
  return out;
}
