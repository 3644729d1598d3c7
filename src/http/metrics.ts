/**
 * What `GET /metrics` exposes, gathered from a node's read-only surface: members, master,
 * partitions, links, maps, operations, transport and jobs. Optional parts
 * (`ShoalNode.metrics()`) appear only when the node provides them.
 */
import type { LatencyHistogram, ShoalNode } from "../node_api.ts";
import { memoryUsage } from "../runtime/process.ts";
import type { MapSize } from "./map_sizes.ts";
import type { HistogramFamily, MetricFamily, ScalarFamily } from "./prometheus.ts";

/** Figures the HTTP layer itself keeps. */
export interface HttpMetricInputs {
  /** Cluster-wide map sizes from the cache. */
  mapSizes: MapSize[];
  /** Master changes seen since the app was created (used when the node does not count them). */
  masterChangesSeen: number;
  sseClients: number;
}

function gauge(name: string, help: string, samples: ScalarFamily["samples"]): ScalarFamily {
  return { name, help, type: "gauge", samples };
}

function counter(name: string, help: string, samples: ScalarFamily["samples"]): ScalarFamily {
  return { name, help, type: "counter", samples };
}

/** A counter with one sample per direction, `sent` and `received`. */
function sentReceived(name: string, help: string, sent: number, received: number): ScalarFamily {
  return counter(name, help, [
    { labels: { direction: "sent" }, value: sent },
    { labels: { direction: "received" }, value: received },
  ]);
}

/** Converts a non-cumulative millisecond histogram into cumulative buckets in seconds. */
export function toSecondsBuckets(
  h: LatencyHistogram,
): { buckets: { le: number; count: number }[]; sum: number; count: number } {
  let acc = 0;
  const buckets = h.boundsMs.map((b, i) => {
    acc += h.counts[i] ?? 0;
    return { le: b / 1000, count: acc };
  });
  buckets.push({ le: Infinity, count: acc + (h.counts[h.boundsMs.length] ?? 0) });
  return { buckets, sum: h.sumMs / 1000, count: h.count };
}

/** The process's resident set and JavaScript heap (reserved, and used including uncollected garbage). */
function processMemory(): ScalarFamily[] {
  const m = memoryUsage();
  if (!m) return [];
  return [
    gauge("shoal_process_resident_memory_bytes", "Resident set size of this member's process", [{ value: m.rss }]),
    gauge(
      "shoal_process_heap_bytes",
      "JavaScript heap of this member's process: reserved, used (garbage included), and external (buffers held by JS objects)",
      [
        { labels: { kind: "total" }, value: m.heapTotal },
        { labels: { kind: "used" }, value: m.heapUsed },
        { labels: { kind: "external" }, value: m.external },
      ],
    ),
  ];
}

/**
 * Gathers every metric family for one scrape.
 * @param node the node
 * @param http figures kept by the HTTP layer
 * @returns the families, ready for `renderPrometheus`
 */
export function collectMetrics(node: ShoalNode, http: HttpMetricInputs): MetricFamily[] {
  const view = node.cluster;
  const members = view.members();
  const extra = node.metrics?.() ?? {};
  const table = node.partitionTable();
  const summary = node.partitionSummary();
  let owned = 0;
  let backedUp = 0;
  let migratingHere = 0;
  for (const p of table) {
    const rank = p.replicas.indexOf(node.id);
    if (rank === 0) owned++;
    else if (rank > 0) backedUp++;
    if (p.migratingTo && (rank >= 0 || p.migratingTo.includes(node.id))) migratingHere++;
  }
  const links = node.links();
  const t = node.transportStats();
  const self = view.member(node.id);
  const f: MetricFamily[] = [
    gauge("shoal_info", "Constant 1, labelled with this member's identity", [{
      labels: { member: node.id, name: node.name, cluster: node.clusterName, runtime: self?.runtime ?? "unknown" },
      value: 1,
    }]),
    gauge("shoal_up", "1 once this member has joined a cluster", [{ value: view.joined ? 1 : 0 }]),
    gauge("shoal_members", "Live members in this member's view", [
      { labels: { lite: "false" }, value: members.filter((m) => !m.lite).length },
      { labels: { lite: "true" }, value: members.filter((m) => m.lite).length },
    ]),
    gauge("shoal_is_master", "1 when this member is the master", [{ value: view.isMaster() ? 1 : 0 }]),
    gauge("shoal_master_epoch", "Master epoch: increases with every master change", [{ value: view.masterEpoch }]),
    counter("shoal_master_changes_total", "Master changes observed by this member", [{
      value: extra.masterChanges ?? http.masterChangesSeen,
    }]),
    gauge("shoal_member_list_version", "Version of the member list", [{ value: view.memberListVersion }]),
    gauge("shoal_partition_table_version", "Version of the partition table", [{ value: summary.version }]),
    gauge("shoal_partitions", "Number of partitions", [{ value: summary.count }]),
    gauge("shoal_partitions_owned", "Partitions whose primary is this member", [{ value: owned }]),
    gauge("shoal_partitions_backed_up", "Partitions this member holds a backup of", [{ value: backedUp }]),
    gauge("shoal_partitions_migrating", "Partitions this member takes part in migrating", [{ value: migratingHere }]),
    gauge("shoal_cluster_partitions_migrating", "Partitions with a migration in flight, cluster-wide", [{
      value: summary.migrating,
    }]),
    gauge("shoal_cluster_replicas_missing", "Replicas missing to reach the configured count, cluster-wide", [{
      value: summary.replicasMissing,
    }]),
    counter("shoal_partitions_lost_total", "Partitions whose every replica died, counted by this member while master", [
      { value: summary.lost },
    ]),
    counter(
      "shoal_partition_data_loss_total",
      "Partitions this member became primary of with no replica holding their history",
      [{ value: summary.dataLoss }],
    ),
    gauge("shoal_links", "This member's links to other members", [
      { labels: { kind: "direct" }, value: links.filter((l) => l.kind === "direct").length },
      { labels: { kind: "relayed" }, value: links.filter((l) => l.kind === "relayed").length },
    ]),
    gauge(
      "shoal_map_size",
      "Entries in a map, cluster-wide, as last counted by this member",
      http.mapSizes.filter((m) => m.size !== null).map((m) => ({ labels: { map: m.name }, value: m.size as number })),
    ),
    ...processMemory(),
    gauge(
      "shoal_map_entries",
      "Entries of a map held on this member",
      (extra.maps ?? []).flatMap((m) => [
        { labels: { map: m.name, role: "primary" }, value: m.primaryEntries },
        { labels: { map: m.name, role: "backup" }, value: m.backupEntries },
      ]),
    ),
    counter(
      "shoal_replication_events_total",
      "Replication events of this member's map service, by event",
      Object.entries(extra.replication ?? {}).map(([event, value]) => ({ labels: { event }, value })),
    ),
    counter(
      "shoal_map_operations_total",
      "Map operations called on this member",
      (extra.operations ?? []).map((o) => ({ labels: { map: o.map, op: o.op }, value: o.count })),
    ),
    counter(
      "shoal_map_operation_errors_total",
      "Map operations called on this member that failed",
      (extra.operations ?? []).map((o) => ({ labels: { map: o.map, op: o.op }, value: o.errors })),
    ),
    {
      name: "shoal_map_operation_duration_seconds",
      help: "Latency of map operations called on this member",
      type: "histogram",
      samples: (extra.operations ?? []).map((o) => ({
        labels: { map: o.map, op: o.op },
        ...toSecondsBuckets(o.latency),
      })),
    } satisfies HistogramFamily,
    sentReceived("shoal_transport_frames_total", "Transport frames", t.framesSent, t.framesReceived),
    sentReceived("shoal_transport_bytes_total", "Transport bytes", t.bytesSent, t.bytesReceived),
    counter(
      "shoal_transport_message_bytes_total",
      "Encoded bytes of the messages this member sent, by kind",
      Object.entries(t.bytesSentByKind ?? {}).map(([kind, value]) => ({ labels: { kind }, value })),
    ),
    sentReceived("shoal_transport_messages_total", "Transport messages", t.messagesSent, t.messagesReceived),
    counter("shoal_transport_dropped_total", "Frames or messages dropped by the transport", [
      { labels: { reason: "invalid" }, value: t.droppedInvalid },
      { labels: { reason: "overflow" }, value: t.droppedOverflow },
      { labels: { reason: "no_route" }, value: t.droppedNoRoute },
      { labels: { reason: "forged" }, value: t.droppedForged },
    ]),
    counter(
      "shoal_cluster_rejected_total",
      "Membership and partition-table messages from members refused: wrong sender or a lie (SECURITY.md)",
      Object.entries(extra.rejected ?? {}).map(([reason, value]) => ({ labels: { reason }, value })),
    ),
    counter("shoal_transport_forwarded_total", "Messages forwarded on behalf of other members", [{
      value: t.forwarded,
    }]),
    gauge(
      "shoal_jobs",
      "Jobs per state",
      Object.entries(extra.jobs?.jobs ?? {}).map(([state, n]) => ({ labels: { state }, value: n })),
    ),
    gauge(
      "shoal_tasks",
      "Job tasks per state",
      Object.entries(extra.jobs?.tasks ?? {}).map(([state, n]) => ({ labels: { state }, value: n })),
    ),
    gauge("shoal_http_sse_clients", "Open dashboard event streams", [{ value: http.sseClients }]),
  ];
  return f;
}
