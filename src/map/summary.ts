/** What the map layer reports about this member's share, for the HTTP layer, the CLI and embedding apps. */
import type { PartitionTableSummary } from "../partition/summary.ts";

export interface PartitionSummary extends PartitionTableSummary {
  /**
   * Partitions this member became primary of while no live replica held their history
   * (`map.partition.data_lost` in the log). 0 unless more than `backupCount` copies failed.
   */
  dataLoss: number;
}

/** Entries of one map held on this member. */
export interface MapLocalStats {
  name: string;
  /** Entries in the partitions this member is primary of. */
  primaryEntries: number;
  /** Entries in the copies this member holds as a backup (or migration target). */
  backupEntries: number;
}
