/**
 * Tombstones: the keys removed from a partition, with the stamp of the removal, so that a
 * split-brain merge can tell "removed here after you wrote it" from "never written here"
 * (without them a key removed on one side comes back from the other under `latestUpdate`).
 *
 * Bounded and expiring: at most `max` per partition and `maxBytes` of keys (the oldest are
 * dropped first; the newest always stays) and none older than `ttlMs` before the newest removal.
 * (The count alone let keys of up to 4 MiB each hold many MB per copy: found by an internal
 * review.) Both rules use only the stamps of the
 * removals (never a local clock), so every replica, applying the same writes in the same
 * order, holds the same tombstones. A removal older than the retention is forgotten: a
 * merge after a split longer than `ttlMs` (or with more than `max` removals in a partition)
 * can bring such a key back under `latestUpdate`.
 */
import { keyId } from "./record_store.ts";

export interface Tombstone {
  m: string;
  key: Uint8Array;
  /** Stamp of the removal (see hlc.ts). */
  at: number;
}

export interface TombstoneLimits {
  /** Tombstones kept per partition. @default 4096 */
  max?: number;
  /** Tombstones older than this before the newest removal are dropped. @default 600000 (10 min) */
  ttlMs?: number;
  /** Bytes of keys and map names kept per partition. @default 262144 (256 KiB) */
  maxBytes?: number;
}

export class Tombstones {
  readonly max: number;
  readonly ttlMs: number;
  readonly maxBytes: number;
  /** Bytes of the keys and map names held. */
  bytes = 0;
  /** In removal order (stamps rise within a partition's history), so the oldest is first. */
  #byKey = new Map<string, Tombstone>();
  /** Tombstones dropped by the bounds (not by a later write of the key). */
  dropped = 0;

  constructor(limits: TombstoneLimits = {}) {
    this.max = limits.max ?? 4096;
    this.ttlMs = limits.ttlMs ?? 600_000;
    this.maxBytes = limits.maxBytes ?? 256 * 1024;
    if (!(this.max >= 0) || !(this.ttlMs >= 0) || !(this.maxBytes >= 0)) {
      throw new RangeError("Cannot use negative tombstone limits");
    }
  }

  get size(): number {
    return this.#byKey.size;
  }

  /** The stamp of the removal of `key` from map `m`, if remembered. */
  get(m: string, key: Uint8Array): number | undefined {
    return this.#byKey.get(id(m, key))?.at;
  }

  /** Records the removal of `key` at stamp `at`, then applies the bounds. */
  add(m: string, key: Uint8Array, at: number): void {
    if (this.max === 0) return;
    const k = id(m, key);
    this.#remove(k);
    this.#byKey.set(k, { m, key, at });
    this.bytes += cost(m, key);
    this.#prune(at);
  }

  /** The key was written again: its removal no longer matters. */
  delete(m: string, key: Uint8Array): void {
    // Most writes find no tombstone at all: no key string built for them.
    if (this.#byKey.size > 0) this.#remove(id(m, key));
  }

  clear(): void {
    this.#byKey.clear();
    this.bytes = 0;
  }

  #remove(k: string): void {
    const t = this.#byKey.get(k);
    if (t === undefined) return;
    this.#byKey.delete(k);
    this.bytes -= cost(t.m, t.key);
  }

  values(): IterableIterator<Tombstone> {
    return this.#byKey.values();
  }

  #prune(newest: number): void {
    for (const [k, t] of this.#byKey) {
      const over = this.#byKey.size > this.max || (this.bytes > this.maxBytes && this.#byKey.size > 1);
      if (!over && t.at >= newest - this.ttlMs) break;
      this.#remove(k);
      this.dropped++;
    }
  }
}

/** What one tombstone counts against `maxBytes`: its key and map name. */
function cost(m: string, key: Uint8Array): number {
  return m.length + key.byteLength;
}

function id(m: string, key: Uint8Array): string {
  return `${m.length}:${m}${keyId(key)}`;
}
