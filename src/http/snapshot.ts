/**
 * The dashboard's state of the cluster as one JSON object: the `GET /cluster` body, the
 * partition table in compact form (member indexes instead of ids), and map sizes. Sent
 * over `GET /events` and served at `GET /snapshot`.
 */
import type { ShoalNode } from "../node_api.ts";
import type { NodeId } from "../transport/transport.ts";
import { type ClusterJson, clusterJson } from "./cluster_info.ts";
import type { MapSize } from "./map_sizes.ts";

/**
 * The partition table with replicas as indexes into `ids`, and what the page needs to mark
 * the same partitions missing a replica as the summary counts (`replicasMissing`): a replica
 * on a member no longer alive, or a backup still filling, is not one. The page judged by row
 * length alone, so it showed "replicas missing N" with no cell marked after a failure.
 */
export interface CompactTable {
  /** Members first (in age order), then any other id the table mentions. */
  ids: NodeId[];
  /** `ids` below this index are the live members; the others are only named by the table. */
  live: number;
  /** Per partition: primary index, then backup indexes. */
  replicas: number[][];
  /** Partitions with a migration in flight: [partition, target replica indexes]. */
  migrating: [number, number[]][];
  /** Partitions with backups created in place that are not yet in sync: [partition, their indexes]. */
  filling: [number, number[]][];
  /** Replicas wanted per partition (the summary's), when the node tells; else the page takes the longest row. */
  wanted?: number;
}

/** What the dashboard renders. */
export interface DashboardSnapshot {
  cluster: ClusterJson;
  table: CompactTable;
  maps: MapSize[];
}

/**
 * Builds the compact table of `node`.
 * @param node the node
 * @param memberIds ids to number first (the live members)
 * @param wanted replicas wanted per partition (`PartitionSummary.replicasWanted`)
 */
export function compactTable(node: ShoalNode, memberIds: NodeId[], wanted?: number): CompactTable {
  const ids = [...memberIds];
  const index = new Map(ids.map((id, i) => [id, i]));
  const idx = (id: NodeId) => {
    let i = index.get(id);
    if (i === undefined) {
      i = ids.length;
      ids.push(id);
      index.set(id, i);
    }
    return i;
  };
  const replicas: number[][] = [];
  const migrating: [number, number[]][] = [];
  const filling: [number, number[]][] = [];
  for (const p of node.partitionTable()) {
    replicas[p.partition] = p.replicas.map(idx);
    if (p.migratingTo) migrating.push([p.partition, p.migratingTo.map(idx)]);
    if (p.filling && p.filling.length > 0) filling.push([p.partition, p.filling.map(idx)]);
  }
  for (let i = 0; i < replicas.length; i++) replicas[i] ??= [];
  return { ids, live: memberIds.length, replicas, migrating, filling, ...(wanted === undefined ? {} : { wanted }) };
}

/**
 * Builds the full dashboard snapshot.
 * @param node the node
 * @param maps the latest map sizes
 */
export function buildSnapshot(node: ShoalNode, maps: MapSize[]): DashboardSnapshot {
  const cluster = clusterJson(node);
  const wanted = node.partitionSummary().replicasWanted;
  return { cluster, table: compactTable(node, cluster.members.map((m) => m.id), wanted), maps };
}
