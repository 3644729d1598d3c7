/**
 * What the parts of one member's map service share: its dependencies, its configuration and
 * counters, the replicas it holds and the primary state of the partitions it leads. The
 * role handlers (primary.ts, backup.ts, catch_up.ts) and the snapshot transfers
 * (snapshot_transfer.ts) each take this context; map_service.ts wires them together.
 */
import type { ClusterView } from "../cluster/view.ts";
import type { Clock } from "../core/clock.ts";
import type { Logger } from "../core/log.ts";
import type { Random } from "../core/random.ts";
import type { Invoker } from "../invoke/invoker.ts";
import type { PartitionService } from "../partition/partition_service.ts";
import type { NodeId, Transport } from "../transport/transport.ts";
import { Kind } from "../wire/kinds.ts";
import type { EntryListenersConfig } from "./entry_listeners.ts";
import { EventPolls } from "./event_polls.ts";
import { ParkedOps } from "./parked_ops.ts";
import { MapConfigs } from "./map_config.ts";
import type { HousekeepingConfig, MapHousekeeping } from "./map_housekeeping.ts";
import { ProcessorRegistry } from "./entry_processor.ts";
import type { CustomMergePolicy } from "./merge_policy.ts";
import type { CheckItem } from "./messages.ts";
import { DEFAULT_LOG_BYTES, PartitionData } from "./partition_data.ts";
import { DEFAULT_EVENT_BYTES } from "./entry_events.ts";
import { ReplicationLevels } from "./replication_levels.ts";

export interface MapServiceConfig {
  /** Replication tick (retransmits, checks, migration readiness). @default 50 */
  tickMs?: number;
  /** Resend writes or checks a replica has not acked after this long. @default 300 */
  retransmitMs?: number;
  /** Compare sequence and digest with caught-up replicas this often. @default 2000 */
  antiEntropyMs?: number;
  /** Operations waiting per partition on the primary. @default 1024 */
  maxPendingPerPartition?: number;
  /** Snapshot chunk size. @default 32768 */
  snapshotChunkBytes?: number;
  /** Snapshot chunks in flight per transfer. @default 4 */
  snapshotWindow?: number;
  /** Snapshot transfers a primary runs at once. @default 8 */
  maxSnapshotSessions?: number;
  /** Migration targets not committed by then are dropped. @default 15000 */
  migrationTimeoutMs?: number;
  /**
   * A new primary waits this long at most for the other replicas of its row to say which
   * history they hold (re-asking every retransmitMs; replicas that leave the member list are
   * not waited for), then serves with the answers it has. @default 10000
   */
  catchUpTimeoutMs?: number;
  /**
   * Dedupe records of call ids that name no client (none from an invoker), kept per
   * partition. The records of clients' calls are kept until each client's watermark passes
   * them (dedupe_records.ts), up to `dedupeCapPerPartition`. @default 2048
   */
  dedupePerPartition?: number;
  /**
   * Hard cap on the dedupe records of clients' calls one partition copy holds; past it the
   * oldest record of the client holding the most is dropped, and a retry of that call is
   * answered INDETERMINATE, not applied (counted: `dedupeEvicted`). @default 8192
   */
  dedupeCapPerPartition?: number;
  /** Hard cap on the bytes of those records' results per partition copy (about). @default 262144 (256 KiB) */
  dedupeCapBytesPerPartition?: number;
  /** Clients (invokers) whose watermarks a partition copy remembers (departed ones forgotten first). @default 1024 */
  dedupeClientsPerPartition?: number;
  /** Writes kept per partition for re-shipping. @default 256 */
  logPerPartition?: number;
  /**
   * Bytes of keys and values the replication log of one partition copy holds (about; trimmed
   * in batches, so up to 1.5 × this between trims; the newest write always stays). A backup
   * behind by more than the log holds gets a snapshot. @default 16384 (16 KiB)
   */
  logBytesPerPartition?: number;
  /** Bytes of results the dedupe records of call ids that name no client hold per partition copy (about; oldest dropped first). @default 65536 (64 KiB) */
  dedupeBytesPerPartition?: number;
  /** Bytes of keys and values the entry events of one partition copy hold at most (about; oldest writes dropped first). @default 16384 (16 KiB) */
  eventBytesPerPartition?: number;
  /**
   * Backups answer a write's caller themselves, in place of the primary (saves a hop and the
   * primary's answer; InvokeBackupAnswer). Used only when every sync backup and migration
   * target is confirmed; otherwise the primary answers after their acks, as without it.
   * @default true
   */
  directBackupAcks?: boolean;
  /** Entry events kept per partition on every replica (listeners resume from them). @default 256 */
  eventsPerPartition?: number;
  /** A listener's poll that finds no new event is held this long at most (below the invoker's attempt timeout). @default 1000 */
  eventPollHoldMs?: number;
  /** Expiry sweep, touch batching and eviction pacing. */
  housekeeping?: HousekeepingConfig;
  /** The listening side of entry listeners on this member. */
  listeners?: EntryListenersConfig;
}

/** The defaults of {@link MapServiceConfig}, overridden by `config`. */
export function mapServiceConfig(config?: MapServiceConfig): Required<MapServiceConfig> {
  return {
    tickMs: 50,
    retransmitMs: 300,
    antiEntropyMs: 2000,
    maxPendingPerPartition: 1024,
    snapshotChunkBytes: 32 * 1024,
    snapshotWindow: 4,
    maxSnapshotSessions: 8,
    migrationTimeoutMs: 15_000,
    catchUpTimeoutMs: 10_000,
    dedupePerPartition: 2048,
    logPerPartition: 256,
    logBytesPerPartition: DEFAULT_LOG_BYTES,
    dedupeBytesPerPartition: 64 * 1024,
    dedupeCapPerPartition: 8192,
    dedupeCapBytesPerPartition: 256 * 1024,
    dedupeClientsPerPartition: 1024,
    eventBytesPerPartition: DEFAULT_EVENT_BYTES,
    directBackupAcks: true,
    eventsPerPartition: 256,
    eventPollHoldMs: 1000,
    housekeeping: {},
    listeners: {},
    ...config,
  };
}

/** The map service's counters (read by tests, the simulator and the metrics). */
export function newMapCounters() {
  return {
    writesApplied: 0,
    /** Writes the primary originated (expiry, eviction, touches, idle floors). */
    localWrites: 0,
    backupsApplied: 0,
    snapshotsSent: 0,
    snapshotsInstalled: 0,
    pulls: 0,
    dedupeHits: 0,
    /** Retries below their caller's watermark, answered INDETERMINATE instead of applied again. */
    dedupeRefused: 0,
    /** Retries of calls whose ids came with a split-brain merge, answered INDETERMINATE (DedupeRecord `x`). */
    mergedRefused: 0,
    /** Merged records of locks, queues and topics refused as no such record could be (merged_records.ts). */
    mergedImplausible: 0,
    /**
     * Retries that may have run (InvokeRequest `g`), began before this member served the
     * partition with history missing (PartitionData `historyLostAt`) and have no dedupe record:
     * answered INDETERMINATE, since the lost history may hold their earlier attempt.
     */
    retriesInDoubt: 0,
    /** Dedupe records dropped by the hard cap (a retry of such a call is answered INDETERMINATE). */
    dedupeEvicted: 0,
    /** Clients whose dedupe watermarks a copy forgot (client cap; departed clients first). */
    dedupeForgotten: 0,
    staleEpochRejected: 0,
    /** Backup ops and snapshot chunks from a member that is not the partition's primary here (refused). */
    notFromPrimary: 0,
    demotedPending: 0,
    directAcked: 0,
    /** New primaries that pulled a replica's copy ahead of their own before serving. */
    catchUpPulls: 0,
    /** New primaries that served before every replica of their row answered. */
    catchUpTimeouts: 0,
    /**
     * Partitions this member began to serve as primary holding no history while the
     * partition had a primary before and no replica of its row had one either: whatever the
     * partition held is gone.
     */
    dataLoss: 0,
    /** Snapshot (and catch-up copy) chunks sent for the first time, and their approximate payload bytes. */
    snapshotChunksSent: 0,
    snapshotChunkBytesSent: 0,
    /** Chunks sent again (a timeout with no progress, or a later chunk acked first), and their bytes. */
    snapshotChunksResent: 0,
    snapshotChunkBytesResent: 0,
    /** Snapshot chunks sent compressed (snapshot_codec.ts, format 2). */
    snapshotChunksDeflated: 0,
    /** Packed snapshot chunks received whose entries were malformed (dropped unacknowledged). */
    snapshotChunksInvalid: 0,
    /** Resends triggered because a chunk sent later was acknowledged first (the earlier one was lost). */
    snapshotFastResends: 0,
    /** Transfers started to a replica that already had one from this primary under the same epoch. */
    snapshotsRestarted: 0,
    /** Transfers dropped before completion (no progress for too long, replica gone or not a follower). */
    snapshotsAbandoned: 0,
    /** Pulls a primary received (anti-entropy, gaps), those during a migration of the partition, and those while a transfer to the puller was under way. */
    pullsReceived: 0,
    pullsReceivedDuringMigration: 0,
    pullsReceivedDuringTransfer: 0,
    /** Log re-shipments to a replica behind (after a pull, a confirmation or a timeout), and the writes they carried. */
    logResends: 0,
    logOpsResent: 0,
    /** Writes a filling replica held aside from a fill stream (fill_stream.ts), and streams it stopped taking (full). */
    fillStreamOps: 0,
    fillStreamOverflows: 0,
    /** Fill streams that did not reach back to their snapshot (never expected; logged). */
    fillStreamGaps: 0,
    /** Filling copies that became primary keeping what their stream held. */
    fillStreamsMaterialized: 0,
    /** Fill streams a primary started to replicas being filled by a snapshot. */
    fillStreamsStarted: 0,
  };
}
export type MapCounters = ReturnType<typeof newMapCounters>;

export type Role = "sync" | "async" | "target";

export interface Follower {
  id: NodeId;
  role: Role;
  /** Snapshot transfers started to this replica under the current epoch. */
  snapshots: number;
  /** Acked under the current epoch; meaningful once confirmed. */
  acked: number;
  confirmed: boolean;
  /**
   * While unconfirmed and filled by a snapshot: the fill stream (fill_stream.ts), every write
   * from `from` on, of which the replica acked holding `acked` and all before it.
   */
  stream: { from: number; acked: number } | null;
  /** The level its copy is kept at (its rank; replication_levels.ts). */
  level: number;
  lastSentAt: number;
  lastProgressAt: number;
  lastCheckAt: number;
  /**
   * Until then the follower is left alone (no fill, no write, no ack or pull taken): its
   * primary told the master it holds nothing yet, and the master may give its place to
   * another member (PrimaryRole.releaseUntouchedFiller).
   */
  heldUntil?: number;
}

/** Whether follower `f` is held at `now` (see {@link Follower.heldUntil}). */
export function held(f: Follower, now: number): boolean {
  return f.heldUntil !== undefined && now < f.heldUntil;
}

/**
 * Whether the tick of primary `prim` (primary.ts `tick`, `checkMigration`) has nothing to do now
 * (the map layer's tick then sleeps: ../core/tick_pace.ts)
 * but anti-entropy: every live follower confirmed, holding every write, not held, without a
 * snapshot under way; no migration, handoff, fence or write waiting for acks.
 */
export function primaryQuiet(
  ctx: MapContext,
  prim: PrimaryState,
  now: number,
  live: ReadonlySet<NodeId>,
  snapshotsOut: ReadonlyMap<string, unknown>,
): boolean {
  if (prim.catchUp || prim.migration || prim.handoff || prim.fence || prim.waiters.length > 0) return false;
  const d = ctx.data.get(prim.p);
  if (!d) return false;
  for (const f of prim.followers.values()) {
    if (!live.has(f.id)) continue;
    if (!f.confirmed || f.acked < d.seq || f.stream || held(f, now) || snapshotsOut.has(`${prim.p}|${f.id}`)) {
      return false;
    }
  }
  return true;
}

/** What a replica reported about its copy to a new primary. */
export interface HistoryReport {
  /** Lineage whose history the copy holds (-1: none, a fresh copy). */
  hl: number;
  /** Epoch of the primary that drew `hl`. */
  he: number;
  s: number;
  n: number;
  /** The level of the copy (which maps it holds; replication_levels.ts). */
  lv: number;
}

/**
 * A new primary's catch-up: it serves nothing (MIGRATING) and checks no follower until it
 * knows that no replica of its row holds a history ahead of its own, or pulled that copy.
 */
export interface CatchUpState {
  /** This member's copy when it became primary. */
  mine: { l: number; e: number; s: number; lv: number };
  /** The partition had a primary before (so a copy with no history means lost content). */
  hadPrimary: boolean;
  /** Replicas not yet answered. */
  waiting: Set<NodeId>;
  answers: Map<NodeId, HistoryReport>;
  deadline: number;
  sentAt: number;
  /** The replica whose copy is being pulled. */
  source: NodeId | null;
  /** Last pull request or chunk from `source`. */
  sourceAt: number;
}

export interface Waiter {
  seq: number;
  /** Sync backups that must have acked `seq` (the backupCount of the map it reads or writes). */
  k: number;
  done: (outcome: WaitOutcome) => void;
  /**
   * The answer to a retry of a write applied before (found by its dedupe record): done only once
   * the copies a write needs now hold it, not when the commit sequence passes it. A new primary
   * counts its whole copy as committed, and a backup it fills holds only the writes from its
   * stream's start: answering then would acknowledge a write held by fewer copies than
   * invariant 10 asks (commit.ts `heldNow`).
   */
  held?: true;
}

/**
 * How a waiter ends: its write or read is committed (`ok`); the partition moved on first
 * (`moved`: the caller retries at the new primary, which holds the write if any backup got
 * it, with its dedupe record); or this member's side lost a split-brain merge first
 * (`merged`: the merge may carry the write into the other cluster without its dedupe record,
 * so a retry there could apply it twice; a write is answered INDETERMINATE, a read retried).
 */
export type WaitOutcome = "ok" | "moved" | "merged";

export interface PrimaryState {
  p: number;
  epoch: number;
  /**
   * Names this primary's history (random, fresh whenever a member becomes primary or its
   * epoch changes). Replicas follow a lineage, not an epoch: two masters acting at once may
   * appoint different primaries, and whatever epochs they hand out, two histories never
   * share a lineage, so a replica never takes one primary's writes on top of another's.
   */
  lineage: number;
  followers: Map<NodeId, Follower>;
  /** Sorted by seq. */
  waiters: Waiter[];
  /** key id → seq of the latest write to it not yet known committed. */
  keyPending: Map<string, number>;
  /** Reads wait for this seq to commit (set on promotion). */
  readBarrier: number;
  /** `mid`: the master's id of the migration (a new id means new targets' checks from scratch). */
  migration: { row: NodeId[]; deadline: number; reportedAt: number; mid?: number } | null;
  /**
   * Handing the partition to a new primary: serves nothing (answers MIGRATING) until the
   * commit, so no read can see this replica once the new primary may have moved on.
   */
  handoff: boolean;
  /** Set from becoming primary until no replica holds a history ahead of this one. */
  catchUp: CatchUpState | null;
  /** Last report of filling backups in sync (see Primary.reportSynced). */
  syncedReportAt: number;
  /** Highest sequence committed so far, per sync backup count k (see Primary's commitSeq). */
  committed: number[];
  /**
   * Appointed by this table without a handoff from another primary (which may have been
   * removed while its lease still held): under split-brain protection it serves once the
   * lease it could still hold has run out (Quorum.fenceCleared); null once it has.
   */
  fence: { term: number; version: number } | null;
  /** The last list of direct ackers handed out (Primary's directAckers): reused while it holds, one array for many writes. */
  ackers?: NodeId[];
}

export interface MapContextDeps {
  self: NodeId;
  view: ClusterView;
  transport: Transport;
  clock: Clock;
  log: Logger;
  rng: Random;
  partitions: PartitionService;
  invoker: Invoker;
  config: Required<MapServiceConfig>;
  /** Per-map settings. @default none */
  maps?: MapConfigs;
  /** Entry processors this member runs as primary (built-ins only when absent). */
  processors?: ProcessorRegistry;
  /** The custom split-brain merge policy, when `mergePolicy` is one (applied to the MergeEntries this member serves). */
  customMergePolicy?: CustomMergePolicy;
  /** Defers work to the end of the received frame being delivered (MessageRouter.afterFrame); absent: none is deferred. */
  router?: { afterFrame(fn: () => void): boolean };
  /**
   * Whether the lease a primary fenced at this table stamp waits out has surely run out
   * (Quorum.fenceCleared; asking starts the wait's count). @default always (no protection)
   */
  fenceOver?: (fence: { term: number; version: number }) => boolean;
  /**
   * Whether split-brain protection covers map `m` (its minimum cluster size is above 1): then a
   * lock of `m` granted with a lease outlives its owner's member until the lease ends (locks.ts).
   * @default never (no protection)
   */
  protectedMap?: (m: string) => boolean;
}

/** The state one member's map service shares between its parts. */
export class MapContext {
  readonly self: NodeId;
  readonly view: ClusterView;
  readonly transport: Transport;
  readonly clock: Clock;
  readonly log: Logger;
  readonly rng: Random;
  readonly partitions: PartitionService;
  readonly invoker: Invoker;
  readonly config: Required<MapServiceConfig>;
  readonly customMergePolicy: CustomMergePolicy | undefined;
  /** Defers `fn` to the end of the received frame being delivered; false (nothing deferred) outside one. */
  readonly afterFrame: (fn: () => void) => boolean;
  /** See {@link MapContextDeps.fenceOver}. */
  readonly fenceOver: (fence: { term: number; version: number }) => boolean;
  /**
   * Whether a lock holder's or waiter's member is alive, as every primary of a key judges it:
   * until the master's member list drops it, not on this member's own verdict (view.ts `listed`).
   */
  readonly holderAlive = (id: NodeId): boolean => this.view.listed(id);
  /** See {@link MapContextDeps.protectedMap}: whether a leased lock of map `m` outlives its owner's member. */
  readonly leaseOutlivesDeath: (m: string) => boolean;
  readonly counters: MapCounters = newMapCounters();
  readonly processors: ProcessorRegistry;
  /** Every replica this member holds (primary, backup or migration target). */
  readonly data = new Map<number, PartitionData>();
  /** The partitions this member is primary of. */
  readonly primaries = new Map<number, PrimaryState>();
  /**
   * Replicas held as migration targets (not in the table): last time the primary touched
   * them, and the table (term, version) this member held then.
   */
  readonly touched = new Map<number, { at: number; term: number; version: number }>();
  /**
   * Handoff seals: the old primary, serving nothing more, said its history ends at `s` of
   * lineage `l`, and this copy matched it. A member promoted by that handoff whose copy is
   * still exactly that history has every write the partition acknowledged and skips the
   * catch-up query (saves a round trip on every migration that moves a primary).
   */
  readonly sealed = new Map<number, { l: number; s: number }>();
  /** Per-map settings (map_config.ts). */
  readonly mapConfigs: MapConfigs;
  /** Per-map backup counts (replication_levels.ts). */
  readonly levels: ReplicationLevels;
  /** Listeners' polls held by this member's primaries (event_polls.ts). */
  readonly polls = new EventPolls();
  /** Blocking queue and lock requests parked on this member's primaries (parked_ops.ts). */
  readonly parked = new ParkedOps();
  /** Expiry, touches and eviction on this member's primaries; set by the map service. */
  housekeeping!: MapHousekeeping;

  constructor(deps: MapContextDeps) {
    this.self = deps.self;
    this.view = deps.view;
    this.transport = deps.transport;
    this.clock = deps.clock;
    this.log = deps.log;
    this.rng = deps.rng;
    this.partitions = deps.partitions;
    this.invoker = deps.invoker;
    this.fenceOver = deps.fenceOver ?? (() => true);
    this.leaseOutlivesDeath = deps.protectedMap ?? (() => false);
    this.config = deps.config;
    this.mapConfigs = deps.maps ?? new MapConfigs();
    const pc = deps.partitions.config;
    this.levels = new ReplicationLevels(this.mapConfigs, this.mapConfigs.defaults ?? pc, pc);
    this.processors = deps.processors ?? new ProcessorRegistry();
    this.customMergePolicy = deps.customMergePolicy;
    const router = deps.router;
    this.afterFrame = router ? (fn) => router.afterFrame(fn) : () => false;
  }

  /** An empty copy of `p` with this member's limits. */
  newData(p: number): PartitionData {
    return new PartitionData(p, {
      dedupe: this.config.dedupePerPartition,
      log: this.config.logPerPartition,
      events: this.config.eventsPerPartition,
      logBytes: this.config.logBytesPerPartition,
      dedupeBytes: this.config.dedupeBytesPerPartition,
      dedupeCap: this.config.dedupeCapPerPartition,
      dedupeCapBytes: this.config.dedupeCapBytesPerPartition,
      dedupeClients: this.config.dedupeClientsPerPartition,
      eventBytes: this.config.eventBytesPerPartition,
    }, this.counters);
  }

  ensureData(p: number): PartitionData {
    let d = this.data.get(p);
    if (!d) {
      d = this.newData(p);
      this.data.set(p, d);
    }
    return d;
  }

  /** The primary's check of a follower's copy at `level`: lineage, sequence and digest. */
  checkItem(prim: PrimaryState, target: boolean, level = 0): CheckItem {
    const d = this.data.get(prim.p)!;
    const dg = this.levels.digestAt(d, level);
    const it: CheckItem = { p: prim.p, e: prim.epoch, l: prim.lineage, s: d.seq, d0: dg[0], d1: dg[1], tg: target };
    if (level > 0 && !this.levels.uniform) it.lv = level;
    return it;
  }

  /** The check of follower `f`. */
  followerCheck(prim: PrimaryState, f: Follower): CheckItem {
    return this.checkItem(prim, f.role === "target", f.level);
  }

  sendChecks(byMember: Map<NodeId, CheckItem[]>): void {
    for (const [id, items] of byMember) if (items.length) this.transport.send(id, { t: Kind.MapSyncCheck, items });
  }
}

/** Appends `v` to the list under `k`. */
export function push<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const a = m.get(k);
  if (a) a.push(v);
  else m.set(k, [v]);
}
