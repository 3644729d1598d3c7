/** What the partition layer reports about the table, for the HTTP layer, the CLI and embedding apps. */
import type { NodeId } from "../transport/transport.ts";

export interface PartitionReplicaInfo {
  partition: number;
  /** replicas[0] is the primary, then sync backups in rank order, then async backups. */
  replicas: NodeId[];
  /** Ownership epoch: increases whenever the primary changes. */
  epoch: number;
  /** Target replicas of an in-flight migration, if any. */
  migratingTo?: NodeId[];
  /** Backups created in place that are still receiving the partition's older entries. */
  filling?: NodeId[];
}

/** The partition layer's part of a member's partition summary (the map layer adds `dataLoss`). */
export interface PartitionTableSummary {
  count: number;
  version: number;
  /** Primary partitions per member. */
  owners: Record<NodeId, number>;
  /** Sum over partitions of (wanted replicas − live replicas in sync; backups still filling count as missing). */
  replicasMissing: number;
  /**
   * The replicas wanted per partition that `replicasMissing` counts against: 1 + backupCount,
   * capped by the data members in the view (absent from a summary that does not tell).
   */
  replicasWanted?: number;
  /** Partitions with a migration in flight. */
  migrating: number;
  /**
   * Partitions whose every replica died before re-replication completed, as counted by
   * this member while it was master (more failures than `backupCount`: their data is gone).
   */
  lost: number;
}
