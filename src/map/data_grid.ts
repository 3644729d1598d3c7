/**
 * Wires the partition service, the invocation layer and the map service of one member
 * together. `node.ts` builds one of these per node; tests and the simulator do the same.
 */
import { Quorum } from "../cluster/quorum.ts";
import { ShoalError } from "../core/errors.ts";
import type { ServiceDeps } from "../cluster/service_deps.ts";
import { Invoker, type InvokerConfig } from "../invoke/invoker.ts";
import { partitionEvents, type PartitionListener } from "../partition/partition_events.ts";
import { type PartitionConfig, PartitionService } from "../partition/partition_service.ts";
import type { PartitionReplicaInfo } from "../partition/summary.ts";
import type { IMap } from "./imap.ts";
import { MapConfigs, type MapsConfig, partitionBackups } from "./map_config.ts";
import { MapService, type MapServiceConfig } from "./map_service.ts";
import { ProcessorRegistry, type ProcessorTable } from "./entry_processor.ts";
import { DistributedQueue, type QueueOptions } from "./queue.ts";
import { Topic } from "./topic.ts";
import type { Clock } from "../core/clock.ts";
import { checkMergePolicy, type MergePolicySetting } from "./merge_policy.ts";
import { SplitMerge, type SplitMergeConfig } from "./split_merge.ts";
import type { MapOpStats } from "./map_stats.ts";
import { type MapSize, type MapSizeSweepOptions, sweepMapSizes } from "./cluster_map_sizes.ts";
import { OpCode } from "./operations.ts";
import type { MapLocalStats, PartitionSummary } from "./summary.ts";

export interface DataGridConfig extends PartitionConfig {
  invoke?: InvokerConfig;
  map?: MapServiceConfig;
  /**
   * What happens to the smaller side's entries when a split brain heals (see
   * merge_policy.ts): "latestUpdate" (the later update or removal wins), "putIfAbsent"
   * (only keys the larger side lacks are added), "passThrough" (the smaller side's entry
   * wins), "discard" (the larger side wins, the smaller side's changes are dropped), or a
   * custom policy object. @default "latestUpdate"
   */
  mergePolicy?: MergePolicySetting;
  merge?: SplitMergeConfig;
  /** Per-map settings by name pattern (map_config.ts). @default none */
  maps?: MapsConfig;
  /**
   * Split-brain protection: a member that sees fewer data members than this, or whose lease
   * with that many ran out, serves no data operation (retryable `QUORUM`). 0 = off. @default 0
   */
  minClusterSize?: number;
  /** The lease (see src/cluster/lease.ts); below membership's `suspectUnansweredMs`. @default 1000 */
  leaseMs?: number;
}

export interface DataGridOptions extends ServiceDeps {
  config: DataGridConfig;
  /** The application's entry processors, by name (the built-ins are always there). */
  processors?: ProcessorTable;
}

/** One member's share of the partitioned IMap. */
export class DataGrid {
  readonly partitions: PartitionService;
  readonly invoker: Invoker;
  readonly maps: MapService;
  readonly merge: SplitMerge;
  /** The entry processors this member runs (their sorted names are a join setting: `processors.joinSetting()`). */
  readonly processors: ProcessorRegistry;
  readonly clock: Clock;
  readonly quorum: Quorum;

  constructor(opts: DataGridOptions) {
    const { invoke, map, mergePolicy, merge, maps, minClusterSize, leaseMs, ...partitionConfig } = opts.config;
    const policy = checkMergePolicy(mergePolicy ?? "latestUpdate");
    // The node's backup counts are the defaults of maps without their own; the partition
    // table holds replicas for the map with the most (replication_levels.ts).
    const defaults = {
      backupCount: partitionConfig.backupCount ?? 1,
      asyncBackupCount: partitionConfig.asyncBackupCount ?? 0,
    };
    const mapConfigs = new MapConfigs(maps ?? {}, defaults);
    Object.assign(partitionConfig, partitionBackups(mapConfigs.maps, defaults));
    this.clock = opts.clock;
    const base = {
      self: opts.self,
      view: opts.view,
      transport: opts.transport,
      router: opts.router,
      clock: opts.clock,
      log: opts.log,
    };
    this.partitions = new PartitionService({ ...base, config: partitionConfig });
    this.quorum = new Quorum({
      ...base,
      config: { minClusterSize: minClusterSize ?? 0, leaseMs, maxMinClusterSize: mapConfigs.maxMinClusterSize },
      stamp: () => this.partitions.table,
    });
    // The side that held a quorum during a split wins the merge (src/cluster/split_brain.ts): the
    // quorum of the strictest size this member or any map asks for (the same on every member).
    if (this.quorum.active) {
      opts.view.useQuorum?.(() => this.quorum.refusal(this.quorum.maxMinClusterSize) === null);
    }
    // A table the master publishes without its quorum is marked so (PartitionTable.nq).
    if (this.quorum.enabled) this.partitions.setQuorumCheck(() => this.quorum.refusal() === null);
    this.invoker = new Invoker({
      ...base,
      rng: opts.rng,
      partitions: this.partitions,
      config: invoke,
      gate: (p, op, body, serving) => this.#gate(p, op, body, serving),
    });
    this.maps = new MapService({
      ...base,
      rng: opts.rng,
      partitions: this.partitions,
      invoker: this.invoker,
      processors: this.processors = new ProcessorRegistry(opts.processors),
      config: { migrationTimeoutMs: this.partitions.config.migrationTimeoutMs, ...map },
      maps: mapConfigs,
      customMergePolicy: typeof policy === "string" ? undefined : policy,
      fenceOver: (f) => this.quorum.fenceCleared(f, this.quorum.maxMinClusterSize),
      protectedMap: (m) => this.quorum.active && mapConfigs.minClusterSizeFor(m, this.quorum.minClusterSize) > 1,
    });
    // New primaries that wait out a predecessor's lease start collecting answers at once.
    this.partitions.onTableChange((t) => {
      if (!this.quorum.active) return;
      for (let p = 0; p < t.partitionCount; p++) {
        const f = this.maps.fenceOf(p);
        if (f && f.term === t.term && f.version === t.version) {
          this.quorum.fenceCleared(f, this.quorum.maxMinClusterSize);
          return;
        }
      }
    });
    this.merge = new SplitMerge({
      view: opts.view,
      partitions: this.partitions,
      invoker: this.invoker,
      clock: opts.clock,
      log: opts.log,
      policy,
      capture: () => this.maps.captureForMerge(),
      config: merge,
    });
  }

  /** The distributed queue `name` (its items live in the partition of the name). */
  getQueue<T = unknown>(name: string, options?: QueueOptions): DistributedQueue<T> {
    return new DistributedQueue<T>(name, this.invoker, this.partitions.config.partitionCount, this.clock, options);
  }

  /** The topic `name`: a ring of the default capacity (best-effort delivery, gaps reported). */
  getTopic<T = unknown>(name: string): Topic<T> {
    return new Topic<T>(name, this.invoker, this.partitions.config.partitionCount, this.clock);
  }

  /** The reliable topic `name`: a ring of `capacity` messages with sequence numbers. */
  getReliableTopic<T = unknown>(name: string, options?: { capacity?: number }): Topic<T> {
    return new Topic<T>(name, this.invoker, this.partitions.config.partitionCount, this.clock, options);
  }

  /**
   * Split-brain protection of one operation on partition `p` (its body names the map, whose
   * per-map override decides the minimum cluster size), called before sending it
   * (`serving` false) and before serving it as primary:
   * 1. the quorum and lease (Quorum.check);
   * 2. a member that merged into another cluster serves nothing until it holds that
   *    cluster's table (see SplitMerge.awaitingTable): writes it acknowledged meanwhile were
   *    not captured for the merge and would be lost;
   * 3. serving only: a primary appointed without a handoff waits until its predecessor's
   *    lease has surely run out (Quorum.fenceCleared).
   */
  #gate(p: number, op: number, body: unknown, serving: boolean): ShoalError | null {
    if (!this.quorum.active) return null;
    const m = (body as { m?: unknown } | null)?.m;
    // MapSizes counts the entries of every map: served only where each map's own minimum holds.
    const size = op === OpCode.MapSizes
      ? this.quorum.maxMinClusterSize
      : typeof m === "string"
      ? this.maps.mapConfigs.minClusterSizeFor(m, this.quorum.minClusterSize)
      : this.quorum.minClusterSize;
    if (size <= 1) return null;
    const refused = this.quorum.check(size);
    if (refused) return refused;
    if (this.merge?.awaitingTable) {
      return new ShoalError(
        "QUORUM",
        "This member merged into another cluster; it serves again once it holds that cluster's partition table",
      );
    }
    const fence = serving ? this.maps.fenceOf(p) : null;
    if (fence === null) return null;
    if (!this.quorum.fenceCleared(fence, this.quorum.maxMinClusterSize)) {
      return new ShoalError(
        "QUORUM",
        `Partition ${p} has a new primary that waits until its predecessor's lease has run out; retry`,
      );
    }
    this.maps.clearFence(p);
    return null;
  }

  /** The distributed map `name` (works on lite members too). */
  getMap<K = unknown, V = unknown>(name: string): IMap<K, V> {
    return this.maps.getMap<K, V>(name);
  }

  /** The map `name` for this member's own bookkeeping: its calls are not counted (map_service.ts). */
  quietMap<K = unknown, V = unknown>(name: string): IMap<K, V> {
    return this.maps.quietMap<K, V>(name);
  }

  partitionTable(): PartitionReplicaInfo[] {
    return this.partitions.info();
  }

  partitionSummary(): PartitionSummary {
    return { ...this.partitions.summary(), dataLoss: this.maps.counters.dataLoss };
  }

  /**
   * The canonical summary of this member's per-map settings (map_config.ts
   * `canonicalMapsConfig`): members whose summaries differ must not form one cluster;
   * `mapConfigDifference(local, remote, name)` names the first differing map and field.
   */
  mapConfigSummary(): string {
    return this.maps.mapConfigs.canonical;
  }

  /** SHA-256 (hex) of `mapConfigSummary()`, for a cheap equality check at join. */
  mapConfigDigest(): string {
    return this.maps.mapConfigs.digest;
  }

  /**
   * Partition migration and loss events (partition_events.ts), cluster-wide: called for
   * every partition whose replica list changes in a table this member receives.
   * @returns a function that removes the listener
   */
  addPartitionListener(listener: PartitionListener): () => void {
    return this.partitions.onTableChange((next, prev) => {
      for (const e of partitionEvents(prev, next)) {
        try {
          listener(e);
        } catch {
          // A throwing listener does not disturb the table update.
        }
      }
    });
  }

  /**
   * Every map of the cluster and its entry count, one call per partition (cluster_map_sizes.ts):
   * the same on every member, lite or not.
   */
  mapSizes(opts?: MapSizeSweepOptions): Promise<MapSize[]> {
    return sweepMapSizes(this.invoker, this.partitions.config.partitionCount, this.clock, opts);
  }

  /** Names and sizes of the maps this member is primary for (its share). */
  localMaps(): Array<{ name: string; size: number }> {
    return this.maps.localMaps();
  }

  /** Entries per map this member holds, as primary and as backup. */
  localMapEntries(): MapLocalStats[] {
    return this.maps.localMapEntries();
  }

  /** Per-map op counters and latency histograms measured on this member. */
  mapStats(): MapOpStats[] {
    return this.maps.stats.snapshot();
  }

  /**
   * Graceful shutdown, step one: moves every replica this member holds to other members
   * and resolves when none is left here (or after `timeoutMs`). Call before leaving the
   * cluster, then {@link stop}.
   */
  migrateAway(timeoutMs = 30_000): Promise<void> {
    return this.partitions.leave(timeoutMs);
  }

  /** Stops timers and fails pending calls. */
  stop(): void {
    this.quorum.stop();
    this.merge.stop();
    this.invoker.stop();
    this.maps.stop();
    this.partitions.stop();
  }
}
