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
import type { SnapshotEntry } from "./partition_data.ts";

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

/**
 * Packs `entries[from, to)`.
 * @throws RangeError for an entry no receiver would accept (a negative or fractional version
 *   or expiry, a stamp outside [0, 2^53 − 1], a map name over 256 characters): the sender's
 *   own data, so a bug, never network input
 */
export function packEntries(entries: readonly SnapshotEntry[], from = 0, to = entries.length): Uint8Array {
  const maps = new Map<string, number>();
  const names: Uint8Array[] = [];
  let size = 1;
  for (let i = from; i < to; i++) {
    const e = entries[i];
    if (!maps.has(e[0])) {
      if (e[0].length > MAX_MAP_NAME) throw new RangeError(`Cannot pack map name of ${e[0].length} characters`);
      const name = utf8.encode(e[0]);
      maps.set(e[0], names.length);
      names.push(name);
      size += varintSize(name.byteLength) + name.byteLength;
    }
    const key = e[1], value = e[2];
    size += 1 + varintSize(maps.get(e[0])!) + varintSize(key.byteLength) + key.byteLength +
      varintSize(value.byteLength) + value.byteLength + varintSize(checkUint(e[3])) + 8;
    if (e[5] !== e[4]) size += 8;
    if (e.length === 9) {
      size += varintSize(checkUint(e[6])) + varintSize(checkUint(e[7]));
      if (e[8] !== e[5]) size += 8;
    }
  }
  size += varintSize(names.length) + varintSize(to - from);
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  let at = 0;
  const uint = (x: number) => {
    while (x >= 128) {
      out[at++] = (x % 128) | 128;
      x = Math.floor(x / 128);
    }
    out[at++] = x;
  };
  const bytes = (b: Uint8Array) => {
    uint(b.byteLength);
    if (b.byteLength > 16) out.set(b, at);
    else for (let k = 0; k < b.byteLength; k++) out[at + k] = b[k];
    at += b.byteLength;
  };
  const stamp = (x: number) => {
    if (!(x >= 0 && x <= MAX_INT)) throw new RangeError(`Cannot pack stamp ${x}`);
    view.setFloat64(at, x, true);
    at += 8;
  };
  out[at++] = FORMAT;
  uint(names.length);
  for (const n of names) bytes(n);
  uint(to - from);
  for (let i = from; i < to; i++) {
    const e = entries[i];
    const expiry = e.length === 9;
    const sameUpdated = e[5] === e[4];
    const sameAccess = expiry && e[8] === e[5];
    out[at++] = (expiry ? F_EXPIRY : 0) | (sameUpdated ? F_SAME_UPDATED : 0) | (sameAccess ? F_SAME_ACCESS : 0);
    uint(maps.get(e[0])!);
    bytes(e[1]);
    bytes(e[2]);
    uint(e[3]);
    stamp(e[4]);
    if (!sameUpdated) stamp(e[5]);
    if (expiry) {
      uint(e[6]);
      uint(e[7]);
      if (!sameAccess) stamp(e[8]);
    }
  }
  if (at !== size) throw new RangeError(`Packed ${at} bytes of ${size}`); // a bug in the size count
  return out;
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
