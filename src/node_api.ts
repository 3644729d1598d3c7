/**
 * The surface of a running node that the HTTP layer, the CLI and embedding apps use.
 * `startNode()` in node.ts returns an object implementing it.
 */
import type { QuorumState } from "./cluster/quorum.ts";
import type { ClusterView } from "./cluster/view.ts";
import type { IMap } from "./map/imap.ts";
import type { IQueue, QueueOptions } from "./map/queue.ts";
import type { ITopic } from "./map/topic.ts";
import type { MapLocalStats, PartitionSummary } from "./map/summary.ts";
import type { MapSize, MapSizeSweepOptions } from "./map/cluster_map_sizes.ts";
import type { PartitionReplicaInfo } from "./partition/summary.ts";
import type { CandidateType, NodeId, TransportStats } from "./transport/transport.ts";

export type { MapLocalStats, MapSize, MapSizeSweepOptions, PartitionReplicaInfo, PartitionSummary };

export interface LinkInfo {
  peer: NodeId;
  kind: "direct" | "relayed";
  via?: NodeId;
  /** A direct link's selected ICE candidate pair: the type of this end's candidate (WebRTC only). */
  candidateType?: CandidateType;
  /** The peer's candidate type in that pair. */
  remoteCandidateType?: CandidateType;
}

/**
 * A latency histogram: `counts[i]` is the number of observations ≤ `boundsMs[i]` and above
 * the previous bound (not cumulative); the last entry counts those above every bound.
 */
export interface LatencyHistogram {
  boundsMs: number[];
  /** Length `boundsMs.length + 1`. */
  counts: number[];
  sumMs: number;
  count: number;
}

/** Counts and latencies of one map operation kind, as called on this member. */
export interface OperationStats {
  map: string;
  /** e.g. "get", "put", "remove". */
  op: string;
  count: number;
  errors: number;
  latency: LatencyHistogram;
}

/** Jobs and tasks per state, as seen in the job maps. */
export interface JobStats {
  jobs: Record<string, number>;
  tasks: Record<string, number>;
}

/** Numbers for `GET /metrics` beyond what the rest of `ShoalNode` exposes; every part optional. */
export interface NodeMetrics {
  /** Master changes observed by this member since it started. */
  masterChanges?: number;
  operations?: OperationStats[];
  maps?: MapLocalStats[];
  /**
   * Replication events of this member's map service since it started, by name (writes and
   * backups applied, snapshot chunks sent and resent, pulls, catch-ups, losses, …).
   */
  replication?: Record<string, number>;
  jobs?: JobStats;
  /**
   * Cluster-layer messages from linked members refused because their sender may not send
   * them or they lie (membership and partition table; see SECURITY.md), by reason.
   */
  rejected?: Record<string, number>;
}

export interface ShoalNode extends AsyncDisposable {
  readonly id: NodeId;
  readonly name: string;
  readonly clusterName: string;
  /** Base URL of this node's HTTP server, if any. */
  readonly httpUrl: string | undefined;
  readonly cluster: ClusterView;
  getMap<K = unknown, V = unknown>(name: string): IMap<K, V>;
  /** The distributed queue `name` (see src/map/queue.ts). */
  getQueue<T = unknown>(name: string, options?: QueueOptions): IQueue<T>;
  /** The topic `name` (best-effort: a ring of the default capacity; see src/map/topic.ts). */
  getTopic<T = unknown>(name: string): ITopic<T>;
  /** The reliable topic `name`: a ring of `capacity` messages with sequence numbers. */
  getReliableTopic<T = unknown>(name: string, options?: { capacity?: number }): ITopic<T>;
  /** Names of the maps with entries in the partitions this member is primary of (its share only). */
  mapNames(): string[];
  /**
   * Every map of the cluster (the first `maxMaps` by name) and its entry count, the same
   * whichever member is asked; a size is null when some partition could not be counted.
   * Not counted as map operations of this member.
   */
  mapSizes(opts?: MapSizeSweepOptions): Promise<MapSize[]>;
  partitionSummary(): PartitionSummary;
  partitionTable(): PartitionReplicaInfo[];
  links(): LinkInfo[];
  transportStats(): TransportStats;
  /** The latest clock-offset estimate per linked member (its clock minus ours), for `GET /cluster`. */
  clockOffsets?(): Record<NodeId, { offsetMs: number; rttMs: number }>;
  /** Optional extra figures for `GET /metrics` (operation latencies, local map entries, jobs). */
  metrics?(): NodeMetrics;
  /** Split-brain protection: whether this member serves data now, and its lease. */
  quorum?(): QuorumState;
  /** Graceful leave: migrates owned partitions away, says `left`, closes links. */
  shutdown(): Promise<void>;
}

/**
 * The members of `node`'s view it has no link to, direct or relayed (empty once it reaches
 * every member): what its ready line and `GET /health` report as `lacks`.
 */
export function membersLacking(node: Pick<ShoalNode, "id" | "links" | "cluster">): NodeId[] {
  const linked = new Set(node.links().map((l) => l.peer));
  return node.cluster.members().map((m) => m.id).filter((id) => id !== node.id && !linked.has(id));
}
