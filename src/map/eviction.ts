/**
 * Eviction: keeping a map's entries (or bytes) whose primary is one member under the map's
 * `maxSizePerMember` / `maxBytesPerMember`. As in Hazelcast, the limit counts the entries the
 * member holds as primary (backups are not counted; a copy it is catching up or handing off
 * is), and the victim is chosen by sampling: `EVICTION_SAMPLE` random records of a partition
 * the member serves, of which the least recently used (`lru`), least frequently used (`lfu`)
 * or the first (`random`) goes.
 * The primary decides; an eviction is a replicated removal (effect `why: Evicted`).
 */
import type { Random } from "../core/random.ts";
import type { EvictionPolicy, ResolvedMapSettings } from "./map_config.ts";
import type { PartitionData } from "./partition_data.ts";
import { keyId, type MapRecord, type RecordStore } from "./record_store.ts";

/** Records sampled per eviction (Hazelcast samples 15). */
export const EVICTION_SAMPLE = 15;

/**
 * Picks the record to evict from `store` by sampling `sample` random slots; records whose
 * key id is in `keep` are never picked. @returns undefined when the store is empty or only holds kept records
 */
export function pickVictim(
  store: RecordStore,
  policy: EvictionPolicy,
  rng: Random,
  keep?: ReadonlySet<string>,
  sample = EVICTION_SAMPLE,
): MapRecord | undefined {
  // Slots below slotCount that hold no record (holes left by removals) read as undefined.
  const n = store.slotCount;
  if (store.size === 0 || policy === "none") return undefined;
  let best: MapRecord | undefined;
  for (let i = 0; i < sample * 2 && i < n * 4; i++) {
    const r = store.atSlot(Math.floor(rng.next() * n));
    if (!r || (keep && keep.size > 0 && isKept(r, keep))) continue;
    if (policy === "random") return r;
    if (!best || better(policy, r, best)) best = r;
    if (i + 1 >= sample && best) break;
  }
  if (best) return best;
  // Sampling only met kept records: fall back to a scan (rare: the store is nearly all kept keys).
  for (const r of store.values()) if (!keep || !isKept(r, keep)) return r;
  return undefined;
}

function isKept(r: MapRecord, keep: ReadonlySet<string>): boolean {
  return keep.has(keyId(r.key));
}

function better(policy: EvictionPolicy, a: MapRecord, b: MapRecord): boolean {
  if (policy === "lfu" && a.hits !== b.hits) return a.hits < b.hits;
  return a.lastAccessAt < b.lastAccessAt;
}

/** Entries and bytes of one map over the member's primary partitions. */
export interface MapUsage {
  entries: number;
  bytes: number;
}

/**
 * The member's usage per map, over the copies it holds as primary: recomputed from the
 * stores (`recompute`, after ownership changes and once a second) and adjusted by each write
 * the primary applies in between (`adjust`), so checking a limit costs O(1) per write.
 */
export class MemberUsage {
  readonly maps = new Map<string, MapUsage>();

  recompute(primaries: Iterable<PartitionData>): void {
    this.maps.clear();
    for (const d of primaries) {
      for (const [m, s] of d.maps) {
        const u = this.#of(m);
        u.entries += s.size;
        u.bytes += s.bytes;
      }
    }
  }

  adjust(m: string, entries: number, bytes: number): void {
    const u = this.#of(m);
    u.entries += entries;
    u.bytes += bytes;
  }

  get(m: string): MapUsage {
    return this.maps.get(m) ?? { entries: 0, bytes: 0 };
  }

  /** Whether map `m` is over a limit of `s`. */
  over(m: string, s: ResolvedMapSettings): boolean {
    if (s.eviction === "none") return false;
    const u = this.maps.get(m);
    if (!u) return false;
    return (s.maxSizePerMember > 0 && u.entries > s.maxSizePerMember) ||
      (s.maxBytesPerMember > 0 && u.bytes > s.maxBytesPerMember);
  }

  #of(m: string): MapUsage {
    let u = this.maps.get(m);
    if (!u) (u = { entries: 0, bytes: 0 }, this.maps.set(m, u));
    return u;
  }
}
