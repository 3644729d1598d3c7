/**
 * Split-brain merge of map data. When a network split heals, membership merges the smaller
 * side into the larger one and emits `merge` on every member of the smaller side. A member the
 * others dropped (cut off or paused past failure detection) before its side formed a group of
 * its own emits `removedFromList` when it learns it and joins again: it merges the same way, as
 * a group of one, so the copies only it kept are not lost (the others found every replica of a
 * partition gone, and started it empty). At that
 * moment such a member still holds the smaller side's table and data: it copies the entries
 * of the partitions it is primary of, waits until it holds a table from its new master, and
 * then re-applies them into the larger cluster through the normal invocation path
 * ({@link OpCode.MergeEntries}: routed to the primary, applied by policy as one ordered,
 * replicated, deduplicated write per chunk). The larger cluster's table overrides the smaller
 * side's, so whatever is not merged this way is dropped.
 *
 * The merge also carries the ids of the calls each captured copy may have applied (its dedupe
 * records): their callers may retry them in the larger cluster, which holds their effects
 * through the merge but no record of them, and would apply them a second time. The larger
 * cluster records them as calls not to run again (DedupeRecord `x`): a retry that arrives
 * after them is answered INDETERMINATE. (One that arrives before runs there once, and the
 * merge policy then weighs the smaller side's state of its keys as any other.)
 *
 * Bounded: at most `maxEntries` entries and call ids are queued per merge (the rest are
 * dropped and counted), chunks carry at most `chunkEntries` entries, 1,000 call ids and about
 * `chunkBytes` bytes, and at most `maxInFlight` chunks are in flight.
 */
import type { ClusterView } from "../cluster/view.ts";
import type { Clock, Timer } from "../core/clock.ts";
import { ShoalError } from "../core/errors.ts";
import type { Logger } from "../core/log.ts";
import type { Invoker } from "../invoke/invoker.ts";
import type { PartitionService } from "../partition/partition_service.ts";
import { isNewer, type PartitionTable } from "../partition/partition_table.ts";
import { mergePolicyCode, mergePolicyName, type MergePolicySetting } from "./merge_policy.ts";
import { MAX_BATCH, OpCode } from "./operations.ts";

/**
 * One entry to merge: [map, key bytes, value bytes (null: removed, from a tombstone), stamp]
 * and, for an entry with an expiry, [..., ttlMs (0 = none), maxIdleMs (0 = none),
 * lastAccessAt]: the merged record keeps its expiry state (expiry.ts).
 */
export type MergeEntry =
  | [string, Uint8Array, Uint8Array | null, number]
  | [string, Uint8Array, Uint8Array | null, number, number, number, number];

export interface SplitMergeConfig {
  /** Entries per chunk (one invocation). @default 256 */
  chunkEntries?: number;
  /** Approximate bytes per chunk. @default 32768 */
  chunkBytes?: number;
  /** Chunks in flight at once. @default 4 */
  maxInFlight?: number;
  /** Entries and call ids queued per merge; more are dropped (and counted). @default 1000000 */
  maxEntries?: number;
}

export interface SplitMergeOptions {
  view: ClusterView;
  partitions: PartitionService;
  invoker: Invoker;
  clock: Clock;
  log: Logger;
  policy: MergePolicySetting;
  /**
   * The entries and tombstones of the partitions this member is primary of, and the ids of
   * the calls each may have applied (its dedupe records) (map service).
   */
  capture: () => Array<{ p: number; entries: MergeEntry[]; calls: string[] }>;
  config?: SplitMergeConfig;
}

interface Chunk {
  p: number;
  es: MergeEntry[];
  /** Call ids the merging copy may have applied (MergeEntries `u`). */
  u?: string[];
  /** Attempts refused with QUORUM so far. */
  refused?: number;
  /** Not sent again before this time (after a QUORUM refusal). */
  notBefore?: number;
}

/**
 * A chunk refused with QUORUM (split-brain protection: this member has not yet re-confirmed
 * its lease with the cluster it merged into) did not run; it is sent again every 500 ms, at
 * most this many times (a minute).
 */
const MAX_QUORUM_RETRIES = 120;

export class SplitMerge {
  readonly config: Required<SplitMergeConfig>;
  /** Counters for metrics and tests. */
  readonly stats = {
    merges: 0,
    /** Entries and call ids queued (the call ids also in `callsQueued`), and those dropped by `maxEntries`. */
    entriesQueued: 0,
    entriesDropped: 0,
    /** Call ids the merging copies may have applied, sent to be recorded in the other cluster. */
    callsQueued: 0,
    chunksSent: 0,
    chunksFailed: 0,
    /** Chunks refused with QUORUM and sent again later. */
    chunksDeferred: 0,
    entriesApplied: 0,
  };
  #opts: SplitMergeOptions;
  #queue: Chunk[] = [];
  #inFlight = 0;
  /** Sending starts once the table is newer than this one and comes from the master. */
  #gate: PartitionTable | null = null;
  #timer: Timer | null = null;
  #stopped = false;
  #unsubscribe: () => void;
  #idleWaiters: Array<() => void> = [];

  constructor(opts: SplitMergeOptions) {
    this.#opts = opts;
    this.config = { chunkEntries: 256, chunkBytes: 32 * 1024, maxInFlight: 4, maxEntries: 1_000_000, ...opts.config };
    if (this.config.chunkEntries < 1 || this.config.chunkEntries > MAX_BATCH) {
      throw new RangeError(`Cannot use chunkEntries ${this.config.chunkEntries}: must be 1–${MAX_BATCH}`);
    }
    const unView = opts.view.subscribe((e) => {
      if (e.type === "merge") this.#onMerge(e.into);
      // A member the others dropped joins again as a group of one (membership.ts #outOfList).
      if (e.type === "removedFromList") this.#onMerge(e.master ?? "");
    });
    const unTable = opts.partitions.onTableChange(() => this.#pump());
    this.#unsubscribe = () => {
      unView();
      unTable();
    };
  }

  /** Whether nothing is queued or in flight. */
  get idle(): boolean {
    return this.#queue.length === 0 && this.#inFlight === 0;
  }

  /** Resolves once nothing is queued or in flight. */
  whenIdle(): Promise<void> {
    if (this.idle) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  stop(): void {
    this.#stopped = true;
    this.#timer?.cancel();
    this.#unsubscribe();
    this.#queue = [];
  }

  /**
   * Whether this member merged and does not hold a table of its new master yet. Until then
   * it still holds the smaller side's table, and its old group may still renew each other's
   * leases (they share that table): a write served now would be acknowledged after the
   * entries to merge were captured, and then dropped when the new table overrides the old
   * one. Split-brain protection refuses every data operation meanwhile (data_grid.ts).
   */
  get awaitingTable(): boolean {
    return this.#gate !== null && !this.#gateOpen();
  }

  #onMerge(into: string): void {
    if (this.#stopped) return;
    this.stats.merges++;
    this.#gate = this.#opts.partitions.table;
    if (mergePolicyCode(this.#opts.policy) === null) {
      this.#opts.log.info("map.merge.discarded", { into });
      return;
    }
    let queued = 0, dropped = 0;
    for (const { p, entries, calls } of this.#opts.capture()) {
      let chunk: Chunk = { p, es: [] };
      let bytes = 0;
      /** Counts one more id or entry against `maxEntries`: false once the merge is full. */
      const admit = () => queued < this.config.maxEntries ? (queued++, true) : (dropped++, false);
      /** Adds the bytes of what was just put in the chunk; queues the chunk once it is full. */
      const added = (n: number, full: boolean) => {
        bytes += n;
        if (!full && bytes < this.config.chunkBytes) return;
        this.#queue.push(chunk);
        chunk = { p, es: [] };
        bytes = 0;
      };
      // The call ids first: a retry that reaches the other cluster after them is refused there
      // (every chunk is one write; the ids of a partition go in its first chunks).
      for (const c of calls) {
        if (!admit()) continue;
        this.stats.callsQueued++;
        const u = chunk.u ??= [];
        u.push(c);
        added(c.length + 8, u.length >= MAX_BATCH);
      }
      for (const e of entries) {
        if (!admit()) continue;
        chunk.es.push(e);
        added(
          e[0].length + e[1].byteLength + (e[2]?.byteLength ?? 0) + 16,
          chunk.es.length >= this.config.chunkEntries,
        );
      }
      if (chunk.es.length > 0 || chunk.u) this.#queue.push(chunk);
    }
    this.stats.entriesQueued += queued;
    this.stats.entriesDropped += dropped;
    if (dropped > 0) this.#opts.log.warn("map.merge.entries_dropped", { dropped, limit: this.config.maxEntries });
    this.#opts.log.info("map.merge.start", {
      into,
      entries: queued,
      chunks: this.#queue.length,
      policy: mergePolicyName(this.#opts.policy),
    });
    this.#pump();
  }

  /** Whether this member holds a table of its new master, newer than the one of the merge. */
  #gateOpen(): boolean {
    const g = this.#gate;
    if (!g) return true;
    const p = this.#opts.partitions;
    if (p.tableSource === undefined || p.tableSource !== this.#opts.view.master() || !isNewer(p.table, g)) return false;
    this.#gate = null;
    return true;
  }

  #pump(): void {
    if (this.#stopped) return;
    if (this.#queue.length === 0) return this.#checkIdle();
    if (!this.#gateOpen()) {
      // Tables arrive with pushes; poll too in case none changes while we wait.
      if (!this.#timer) this.#timer = this.#opts.clock.setTimer(200, () => (this.#timer = null, this.#pump()));
      return;
    }
    const pol = mergePolicyCode(this.#opts.policy)!;
    const wait = (this.#queue[0].notBefore ?? 0) - this.#opts.clock.now();
    if (wait > 0) {
      if (!this.#timer) this.#timer = this.#opts.clock.setTimer(wait, () => (this.#timer = null, this.#pump()));
      return;
    }
    while (this.#inFlight < this.config.maxInFlight && this.#queue.length > 0) {
      if ((this.#queue[0].notBefore ?? 0) > this.#opts.clock.now()) return this.#pump();
      const c = this.#queue.shift()!;
      this.#inFlight++;
      this.stats.chunksSent++;
      const body = c.u ? { m: "", pol, es: c.es, u: c.u } : { m: "", pol, es: c.es };
      this.#opts.invoker.invoke(c.p, OpCode.MergeEntries, body, true).then(
        (n) => void (this.stats.entriesApplied += typeof n === "number" ? n : 0),
        (err) => {
          if (err instanceof ShoalError && err.code === "QUORUM" && (c.refused ?? 0) < MAX_QUORUM_RETRIES) {
            c.refused = (c.refused ?? 0) + 1;
            c.notBefore = this.#opts.clock.now() + 500;
            this.stats.chunksDeferred++;
            this.#queue.unshift(c);
            return;
          }
          this.stats.chunksFailed++;
          this.#opts.log.warn("map.merge.chunk_failed", { p: c.p, entries: c.es.length, error: String(err) });
        },
      ).finally(() => {
        this.#inFlight--;
        this.#pump();
      });
    }
  }

  #checkIdle(): void {
    if (!this.idle) return;
    for (const w of this.#idleWaiters.splice(0)) w();
  }
}
