/**
 * Per-map backup counts, as Hazelcast runs them: the partition table holds replicas up to
 * the largest count any map has (map_config.ts `partitionBackups`), and each map replicates
 * to the first of them only. Replica rank r (1 = first backup) holds map m when r ≤ m's
 * backupCount + asyncBackupCount, and a write to m waits for the acks of ranks 1..m's
 * backupCount (plus migration targets).
 *
 * A copy's **level** names what it holds: the maps whose total backups are ≥ level (0 = every
 * map: the primary's copy, and every copy when all maps replicate alike). A follower of rank
 * r is kept at level r: the primary ships it the writes of the maps it holds (others go as
 * empty entries without call id, so the sequence stays one per partition and a retry reaching
 * that replica as a new primary is applied, not answered from a dedupe record of a write it
 * never held), checks it against the digest of those maps, and snapshots only them. When a
 * follower's rank changes the primary checks it again at its new level (a copy that moves up
 * in rank drops the maps it no longer holds first; one that moves down takes a snapshot).
 *
 * Internal maps follow their user map: the locks of map m (`\u0001lock:m`) replicate as m;
 * queues and topics take the node's defaults.
 */
import { LOCK_MAP_PREFIX } from "./locks.ts";
import { type BackupCounts, isInternalMap, type MapConfigs } from "./map_config.ts";
import type { LogEntry, PartitionData } from "./partition_data.ts";

const CACHE_LIMIT = 4096;

export class ReplicationLevels {
  /** Every map replicates to every replica of its partition with the table's sync count (nothing to filter). */
  readonly uniform: boolean;
  /** Sync backups of the partition table (the most any map has). */
  readonly maxSync: number;
  #cache = new Map<string, BackupCounts>();

  constructor(
    readonly configs: MapConfigs,
    /** The node's counts (maps without their own). */
    readonly defaults: BackupCounts,
    /** The partition table's counts. */
    partition: BackupCounts,
  ) {
    this.maxSync = partition.backupCount;
    this.uniform = defaults.backupCount === partition.backupCount &&
      defaults.asyncBackupCount === partition.asyncBackupCount &&
      Object.values(configs.maps).every((s) =>
        (s.backupCount ?? defaults.backupCount) === defaults.backupCount &&
        (s.asyncBackupCount ?? defaults.asyncBackupCount) === defaults.asyncBackupCount
      );
  }

  /** The backup counts map `m` (or the internal map `m`) replicates with. */
  of(m: string): BackupCounts {
    let c = this.#cache.get(m);
    if (c) return c;
    const user = m.startsWith(LOCK_MAP_PREFIX) ? m.slice(LOCK_MAP_PREFIX.length) : isInternalMap(m) ? null : m;
    let r = null;
    try {
      r = user === null ? null : this.configs.resolve(user);
    } catch {
      // An ambiguous name never gets a proxy; replicate anything else with it as the node's defaults.
    }
    c = {
      backupCount: r?.backupCount ?? this.defaults.backupCount,
      asyncBackupCount: r?.asyncBackupCount ?? this.defaults.asyncBackupCount,
    };
    if (this.#cache.size >= CACHE_LIMIT) this.#cache.clear();
    this.#cache.set(m, c);
    return c;
  }

  /** Sync backups a write to map `m` waits for. */
  sync(m: string): number {
    return this.uniform ? this.maxSync : this.of(m).backupCount;
  }

  /** Whether a copy at `level` holds map `m`. */
  holds(m: string, level: number): boolean {
    if (level === 0 || this.uniform) return true;
    const c = this.of(m);
    return c.backupCount + c.asyncBackupCount >= level;
  }

  /** A predicate for the maps a copy at `level` holds, or undefined when it holds all. */
  keep(level: number): ((m: string) => boolean) | undefined {
    return level === 0 || this.uniform ? undefined : (m) => this.holds(m, level);
  }

  /**
   * The entries as a follower at `level` receives them: writes of maps it does not hold are
   * left out, and an entry that lost an effect loses its call id and result too.
   */
  filter(entries: LogEntry[], level: number): LogEntry[] {
    const keep = this.keep(level);
    if (!keep) return entries;
    return entries.map((en) => {
      if (en.e.every((e) => keep(e.m))) return en;
      return { seq: en.seq, r: null, e: en.e.filter((e) => keep(e.m)) };
    });
  }

  /** The digest of what a copy at `level` holds of `d`. */
  digestAt(d: PartitionData, level: number): [number, number] {
    const keep = this.keep(level);
    return keep ? d.digestOf(keep) : d.digest;
  }
}
