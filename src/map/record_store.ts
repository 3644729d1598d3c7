/**
 * Records of one map in one partition. Keys and values are stored as their CBOR bytes, so
 * two keys are the same key exactly when their encodings are equal.
 *
 * The record carries what later features need: a version (bumped on every write), creation
 * and update times (TTL, merge policies), and an optional TTL.
 */
export interface MapRecord {
  key: Uint8Array;
  value: Uint8Array;
  /** 1 on creation, +1 on every update. */
  version: number;
  createdAt: number;
  updatedAt: number;
  /** Time to live from `updatedAt`; not enforced yet. */
  ttlMs?: number;
}

/** A string that identifies key bytes (one char per byte), usable as a JS Map key. */
export function keyId(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    // apply takes the bytes as an array-like directly (a spread would iterate them).
    s += Reflect.apply(String.fromCharCode, null, bytes.subarray(i, i + 8192));
  }
  return s;
}

/** Byte-wise equality (CBOR-equal values). */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

export class RecordStore {
  readonly records = new Map<string, MapRecord>();
  /** The map name as UTF-8, for digests. */
  readonly nameBytes: Uint8Array;

  constructor(readonly name: string) {
    this.nameBytes = new TextEncoder().encode(name);
  }

  get size(): number {
    return this.records.size;
  }

  get(key: Uint8Array): MapRecord | undefined {
    return this.records.get(keyId(key));
  }
}
