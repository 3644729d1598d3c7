/**
 * The map service of one member: the replicas it holds, the primary side of replication
 * (applying writes one at a time per partition, shipping them in order, answering only
 * after every sync backup acked), the backup side (applying in order, detecting gaps and
 * pulling), anti-entropy (periodic sequence/digest checks, snapshots for replicas that
 * cannot catch up from the log), and migration (bringing new replicas up to date before the
 * master commits them).
 *
 * Rules that keep acknowledged writes safe:
 * - A write with sequence s is answered only when every sync backup and every migration
 *   target has acked ≥ s under the current epoch (acks are cumulative).
 * - Reads are answered only when the last write to the key they read is acked that way, and,
 *   after a promotion, when the backups confirmed the new primary's state.
 * - A backup accepts writes only from the primary its table names, under that epoch, and
 *   only once its state is confirmed to follow that primary (check or snapshot).
 * - When the primary changes, the new primary first asks the other replicas of its row
 *   which history each holds (catch-up, below) and pulls a copy that is ahead of its own;
 *   only then its state is the truth, and replicas that differ are replaced by a snapshot.
 *
 * How a replica named in the table could hold fewer writes than were acknowledged, and what
 * rules that out:
 * - A sync backup or migration target that is not confirmed holds back every write
 *   (`#commitSeq`), so nothing is acknowledged past what it acked. Its sequence never goes
 *   down while it stays a replica: writes apply only on the lineage it follows, a snapshot
 *   (from the table's primary at the table's epoch) is assembled aside and installed only
 *   when complete and never over a newer state of the same lineage, and anti-entropy
 *   mismatches only reset the lineage (the content stays until such a snapshot). So a backup
 *   being re-filled when its primary dies still holds everything it acked.
 * - A copy is dropped only when the member's table neither names it nor lists it in the
 *   partition's migration. A migration target the table does not list yet (the push was
 *   lost) keeps its copy while the primary touches it, and after a silence of
 *   `migrationTimeoutMs` only once it holds a table newer than the one at the last touch
 *   (`#isTarget`): until then a commit naming it may be on its way. A primary that starts
 *   a new migration (another id from the master) checks its targets again from scratch, so
 *   a target that dropped its copy under an abandoned migration is never counted caught up
 *   on the strength of its old acks, and the master commits only on a ready report for the
 *   migration it runs.
 * - A handoff commits a new primary only after it acked every write while the old primary
 *   served nothing (`handoff`).
 * - A restarted process is a new member (a new id): no table names it before it was filled
 *   as a migration target.
 * - Split-brain merge: the winning side's table names only members that followed its
 *   primaries; losing-side copies are replaced by the winners' (what they held comes back only
 *   through the merge policy), and catch-up never prefers another lineage over its own.
 * - Async backups are not waited for: one promoted after every sync replica died may lack
 *   acknowledged writes (more failures than `backupCount`); catch-up still takes the most
 *   advanced copy of the same history that a surviving replica holds.
 * What is left is caught at promotion: a new primary that holds no history at all (a fresh
 * copy) while the partition had a primary before takes any replica's history, and if no
 * replica has one, counts and logs the loss (`counters.dataLoss`, `map.partition.data_lost`)
 * instead of serving silently.
 */
import type { ServiceDeps } from "../cluster/service_deps.ts";
import type { ClusterView } from "../cluster/view.ts";
import type { Clock, Timer } from "../core/clock.ts";
import type { Logger } from "../core/log.ts";
import type { Random } from "../core/random.ts";
import type { Invoker, InvokeRequest, Reply } from "../invoke/invoker.ts";
import type { PartitionService } from "../partition/partition_service.ts";
import { fillingOf, isNewer, type PartitionTable } from "../partition/partition_table.ts";
import type { NodeId, Transport } from "../transport/transport.ts";
import { Kind } from "../wire/kinds.ts";
import type { Message } from "../wire/message.ts";
import type { IMap } from "./imap.ts";
import { MapProxy } from "./map_proxy.ts";
import { MapStats } from "./map_stats.ts";
import "./messages.ts";
import { executeOp, isWrite, opKeys, parseBody } from "./operations.ts";
import { type LogEntry, PartitionData, type SnapshotData } from "./partition_data.ts";
import { bytesEqual, keyId } from "./record_store.ts";

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
  /** Dedupe records kept per partition. @default 2048 */
  dedupePerPartition?: number;
  /** Writes kept per partition for re-shipping. @default 256 */
  logPerPartition?: number;
  /**
   * Backups ack a write straight to its caller, and the primary answers at once naming the
   * backups to wait for (saves a hop). Used only when every sync backup and migration target
   * is confirmed; otherwise the primary answers after their acks, as without it. @default false
   */
  directBackupAcks?: boolean;
}

export interface MapServiceOptions extends ServiceDeps {
  partitions: PartitionService;
  invoker: Invoker;
  config?: MapServiceConfig;
}

type Role = "sync" | "async" | "target";

interface Follower {
  id: NodeId;
  role: Role;
  /** Snapshot transfers started to this replica under the current epoch. */
  snapshots: number;
  /** Acked under the current epoch; meaningful once confirmed. */
  acked: number;
  confirmed: boolean;
  lastSentAt: number;
  lastProgressAt: number;
  lastCheckAt: number;
}

/** What a replica reported about its copy to a new primary. */
interface HistoryReport {
  /** Lineage whose history the copy holds (-1: none, a fresh copy). */
  hl: number;
  /** Epoch of the primary that drew `hl`. */
  he: number;
  s: number;
  n: number;
}

/**
 * A new primary's catch-up: it serves nothing (MIGRATING) and checks no follower until it
 * knows that no replica of its row holds a history ahead of its own, or pulled that copy.
 */
interface CatchUp {
  /** This member's copy when it became primary. */
  mine: { l: number; e: number; s: number };
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

interface Waiter {
  seq: number;
  done: (ok: boolean) => void;
}

interface PrimaryState {
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
  catchUp: CatchUp | null;
  /** Last report of filling backups in sync (see #reportSynced). */
  syncedReportAt: number;
  /** Highest sequence committed so far (see #commitSeq). */
  committed: number;
}

interface SnapshotOut {
  p: number;
  to: NodeId;
  epoch: number;
  lineage: number;
  sid: number;
  chunks: Message[];
  /** Approximate payload bytes of each chunk (entries and their keys), for the counters. */
  bytes: number[];
  acked: boolean[];
  /** Last time each chunk was sent (-Infinity: not yet). */
  sentAt: number[];
  /** Times each chunk was sent. */
  tries: number[];
  /** Send order (per transfer) of each chunk's first and latest transmission. */
  firstOrder: number[];
  lastOrder: number[];
  /** Transmissions so far (orders are taken from it). */
  sends: number;
  remaining: number;
  /** Last time the replica acked a chunk (or the start). */
  progressAt: number;
  /** Last timeout resend (-Infinity: none since the last progress). */
  resentAt: number;
  /** Timeout resends since the last progress: the next waits rto × 2^backoff (at most 4×). */
  backoff: number;
  /** A replica's copy sent to a new primary that asked for it (catch-up). */
  up: boolean;
}

interface SnapshotIn {
  sid: number;
  from: NodeId;
  epoch: number;
  lineage: number;
  n: number;
  s: number;
  d: [number, number];
  got: Map<number, { entries: SnapshotData["entries"]; dedupe: SnapshotData["dedupe"] }>;
  /** Last time a chunk of this transfer arrived (new or resent). */
  lastChunkAt: number;
}

/** What the simulator and tests inspect on a member. */
export interface ReplicaDebug {
  p: number;
  seq: number;
  /** The history this replica holds (the primary's lineage id), -1 when unconfirmed. */
  lineage: number;
  digest: [number, number];
  primary: boolean;
  /** Primary only: its ownership epoch (-1 on replicas). */
  epoch: number;
  entries: number;
  /** Primary only: still catching up (serves nothing). */
  catchingUp?: boolean;
  /** Primary only: followers and whether they are confirmed and caught up. */
  followers?: Array<{ id: NodeId; role: Role; confirmed: boolean; acked: number }>;
}

export class MapService {
  readonly self: NodeId;
  readonly config: Required<MapServiceConfig>;
  readonly stats = new MapStats();
  readonly counters = {
    writesApplied: 0,
    backupsApplied: 0,
    snapshotsSent: 0,
    snapshotsInstalled: 0,
    pulls: 0,
    dedupeHits: 0,
    staleEpochRejected: 0,
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
  };
  #view: ClusterView;
  #transport: Transport;
  #clock: Clock;
  #log: Logger;
  #partitions: PartitionService;
  #invoker: Invoker;
  #rng: Random;
  #data = new Map<number, PartitionData>();
  #primaries = new Map<number, PrimaryState>();
  /**
   * Replicas held as migration targets (not in the table): last time the primary touched
   * them, and the table (term, version) this member held then.
   */
  #touched = new Map<number, { at: number; term: number; version: number }>();
  #pullAt = new Map<number, number>();
  #snapOut = new Map<string, SnapshotOut>();
  #snapIn = new Map<number, SnapshotIn>();
  /** Transfers (`p|member`) refused while every session was taken, oldest first. */
  #snapWaiting = new Set<string>();
  /**
   * Smoothed round trip of snapshot chunks to each member (chunk sent once → its ack), which
   * paces chunk resends. Entries of members that left are dropped on the tick.
   */
  #chunkRtt = new Map<NodeId, { srttMs: number; varMs: number }>();
  /**
   * Handoff seals: the old primary, serving nothing more, said its history ends at `s` of
   * lineage `l`, and this copy matched it. A member promoted by that handoff whose copy is
   * still exactly that history has every write the partition acknowledged and skips the
   * catch-up query (saves a round trip on every migration that moves a primary).
   */
  #sealed = new Map<number, { l: number; s: number }>();
  #sid = 1;
  #proxies = new Map<string, MapProxy<unknown, unknown>>();
  #timer: Timer | null = null;
  #stopped = false;
  #unsubscribeTable: () => void;

  constructor(opts: MapServiceOptions) {
    this.self = opts.self;
    this.#view = opts.view;
    this.#transport = opts.transport;
    this.#clock = opts.clock;
    this.#log = opts.log;
    this.#partitions = opts.partitions;
    this.#invoker = opts.invoker;
    this.#rng = opts.rng;
    this.config = {
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
      directBackupAcks: false,
      ...opts.config,
    };
    opts.router.on([
      Kind.MapBackupOps,
      Kind.MapBackupAck,
      Kind.MapSyncCheck,
      Kind.MapSyncPull,
      Kind.MapSnapshotChunk,
      Kind.MapSnapshotAck,
    ], (from, msg) => {
      if (!this.#stopped) this.#onMessage(from, msg);
    });
    this.#invoker.serve((from, req, reply) => this.#serve(from, req, reply));
    this.#unsubscribeTable = this.#partitions.onTableChange((next, prev) => this.#onTable(next, prev));
    this.#partitions.onMigrationStart((p, epoch, row, mid) => this.#onMigrationStart(p, epoch, row, mid));
    this.#onTable(this.#partitions.table);
    this.#schedule();
  }

  /** The IMap proxy for `name` (created on first use). */
  getMap<K = unknown, V = unknown>(name: string): IMap<K, V> {
    if (typeof name !== "string" || name.length === 0 || name.length > 256) {
      throw new RangeError(`Cannot use map name ${JSON.stringify(name)}: 1–256 characters`);
    }
    let m = this.#proxies.get(name);
    if (!m) {
      (m = new MapProxy(name, this.#invoker, this.#partitions.config.partitionCount, this.#clock, this.stats),
        this.#proxies.set(name, m));
    }
    return m as unknown as IMap<K, V>;
  }

  /** Map names and entry counts over the partitions this member is primary of. */
  localMaps(): Array<{ name: string; size: number }> {
    const sizes = new Map<string, number>();
    for (const p of this.#primaries.keys()) {
      const d = this.#data.get(p);
      if (!d) continue;
      for (const [name, s] of d.maps) sizes.set(name, (sizes.get(name) ?? 0) + s.size);
    }
    return [...sizes].map(([name, size]) => ({ name, size })).sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Partitions this member is primary of, and holds as backup. */
  ownedCounts(): { primary: number; backup: number } {
    let backup = 0;
    for (const p of this.#data.keys()) if (!this.#primaries.has(p)) backup++;
    return { primary: this.#primaries.size, backup };
  }

  /** Internal state per held partition, for the simulator's invariant checks. */
  debugReplicas(): ReplicaDebug[] {
    const out: ReplicaDebug[] = [];
    for (const [p, d] of this.#data) {
      const prim = this.#primaries.get(p);
      const r: ReplicaDebug = {
        p,
        seq: d.seq,
        lineage: d.lineage,
        digest: [...d.digest] as [number, number],
        primary: !!prim,
        epoch: prim?.epoch ?? -1,
        entries: d.entryCount,
      };
      if (prim) r.catchingUp = prim.catchUp !== null;
      if (prim) {
        r.followers = [...prim.followers.values()].map((f) => ({
          id: f.id,
          role: f.role,
          confirmed: f.confirmed,
          acked: f.acked,
        }));
      }
      out.push(r);
    }
    return out;
  }

  /**
   * The entries of every partition this member is primary of, as the split-brain merge
   * re-applies them: [map, key, value, updatedAt] per entry.
   */
  captureForMerge(): Array<{ p: number; entries: Array<[string, Uint8Array, Uint8Array, number]> }> {
    const out: Array<{ p: number; entries: Array<[string, Uint8Array, Uint8Array, number]> }> = [];
    for (const p of this.#primaries.keys()) {
      const d = this.#data.get(p);
      if (!d) continue;
      const entries: Array<[string, Uint8Array, Uint8Array, number]> = [];
      for (const [name, store] of d.maps) {
        for (const r of store.records.values()) entries.push([name, r.key, r.value, r.updatedAt]);
      }
      if (entries.length > 0) out.push({ p, entries });
    }
    return out;
  }

  /**
   * Replaces this member's copy of `p` with an empty one, telling nobody (tests only: stands
   * for a replica that lost its copy without the primary noticing yet).
   */
  debugLoseCopy(p: number): void {
    if (!this.#data.has(p) || this.#primaries.has(p)) return;
    this.#data.set(
      p,
      new PartitionData(p, { dedupe: this.config.dedupePerPartition, log: this.config.logPerPartition }),
    );
    this.#snapIn.delete(p);
    this.#sealed.delete(p);
  }

  /**
   * The call id of the write in this copy's recent log that set `key` of `map` to `value`
   * (tests only: the simulator's copy count of acknowledged writes).
   */
  debugCallOf(p: number, map: string, key: Uint8Array, value: Uint8Array): string | undefined {
    const log = this.#data.get(p)?.log ?? [];
    for (let i = log.length - 1; i >= 0; i--) {
      const hit = log[i].e.some((e) => e.m === map && e.k && e.v && bytesEqual(e.k, key) && bytesEqual(e.v, value));
      if (hit) return log[i].c;
    }
    return undefined;
  }

  /** Whether this member's copy of `p` holds the write of call `c` (tests only). */
  debugHoldsCall(p: number, c: string): boolean {
    return this.#data.get(p)?.dedupe.has(c) ?? false;
  }

  /** Reads a replica's local value (tests only: bypasses routing). */
  debugLocalValue(p: number, map: string, key: Uint8Array): Uint8Array | undefined {
    return this.#data.get(p)?.maps.get(map)?.get(key)?.value;
  }

  stop(): void {
    this.#stopped = true;
    this.#timer?.cancel();
    this.#unsubscribeTable();
    for (const prim of this.#primaries.values()) this.#failWaiters(prim);
  }

  // ---- table changes ------------------------------------------------------------------

  #ensureData(p: number): PartitionData {
    let d = this.#data.get(p);
    if (!d) {
      d = new PartitionData(p, { dedupe: this.config.dedupePerPartition, log: this.config.logPerPartition });
      this.#data.set(p, d);
    }
    return d;
  }

  #onTable(t: PartitionTable, prev?: PartitionTable): void {
    if (this.#stopped) return;
    const backups = this.#partitions.config.backupCount;
    const queries = new Map<NodeId, CheckItem[]>();
    const hellos = new Map<NodeId, PullItem[]>();
    for (let p = 0; p < t.partitionCount; p++) {
      const row = t.replicas[p];
      const epoch = t.epochs[p];
      let prim = this.#primaries.get(p);
      if (row[0] === this.self) {
        if (!prim || prim.epoch !== epoch) {
          if (prim) this.#demote(prim);
          const d = this.#ensureData(p);
          if (prim || d.lineage >= 0) {
            this.#log.debug("map.primary.promoted", { p, epoch, seq: d.seq, entries: d.entryCount });
          }
          // A new history for `epoch`, continuing this copy once catch-up found none ahead of it
          // (the copy keeps naming the history it holds until then).
          const seal = this.#sealed.get(p);
          const sealed = !!seal && seal.l === d.lineage && seal.l === d.historyLineage && seal.s === d.seq;
          this.#sealed.delete(p);
          d.lineage = this.#newLineage();
          this.#snapIn.delete(p);
          prim = {
            p,
            epoch,
            lineage: d.lineage,
            followers: new Map(),
            waiters: [],
            keyPending: new Map(),
            readBarrier: d.seq,
            migration: null,
            handoff: false,
            catchUp: null,
            syncedReportAt: -Infinity,
            committed: d.seq,
          };
          this.#primaries.set(p, prim);
          if (sealed) d.follow(prim.lineage, epoch);
          else this.#startCatchUp(prim, row, (prev?.replicas[p]?.length ?? 0) > 0, queries);
        }
        if (prim.migration && (sameRow(prim.migration.row, row) || row.length === 0)) {
          prim.migration = null;
          prim.handoff = false;
        }
        this.#syncFollowers(prim, row, backups);
        this.#progress(prim);
      } else {
        if (prim) {
          this.#demote(prim);
          this.#primaries.delete(p);
        }
        if (row.includes(this.self)) {
          const d = this.#ensureData(p);
          this.#touched.delete(p);
          // Newly a backup and not following anyone yet: say so to the primary, whose own check
          // may have arrived before this table (it is not repeated for a retransmit interval).
          if (d.lineage < 0 && row[0] !== undefined && !prev?.replicas[p]?.includes(this.self)) {
            push(hellos, row[0], { p, e: epoch, s: d.seq, l: d.lineage, d0: d.digest[0], d1: d.digest[1] });
          }
        } else if (this.#data.has(p) && !this.#isTarget(p)) {
          this.#sealed.delete(p);
          this.#log.debug("map.replica.dropped", {
            p,
            seq: this.#data.get(p)!.seq,
            entries: this.#data.get(p)!.entryCount,
            version: t.version,
          });
          this.#data.delete(p);
          this.#snapIn.delete(p);
          this.#touched.delete(p);
        }
      }
    }
    for (const [key, s] of this.#snapOut) {
      if (s.up ? t.epochs[s.p] > s.epoch : this.#primaries.get(s.p)?.epoch !== s.epoch) this.#dropTransfer(key);
    }
    this.#sendChecks(queries);
    for (const [to, items] of hellos) {
      this.counters.pulls += items.length;
      this.#transport.send(to, { t: Kind.MapSyncPull, items });
    }
  }

  // ---- new primary: catch-up ------------------------------------------------------------

  /**
   * Asks the other live replicas of `row` which history they hold (a MapSyncCheck item with
   * `q`); with none to ask, decides at once. Until it is done the primary serves nothing and
   * checks no follower, so no replica is made to follow (or replaced by) a copy that may lack
   * acknowledged writes another replica holds.
   */
  #startCatchUp(
    prim: PrimaryState,
    row: readonly NodeId[],
    hadPrimary: boolean,
    queries: Map<NodeId, CheckItem[]>,
  ): void {
    const d = this.#data.get(prim.p)!;
    const now = this.#clock.now();
    const live = new Set(this.#view.members().map((m) => m.id));
    const waiting = new Set(row.filter((id) => id !== this.self && live.has(id)));
    prim.catchUp = {
      mine: { l: d.historyLineage, e: d.historyEpoch, s: d.seq },
      hadPrimary,
      waiting,
      answers: new Map(),
      deadline: now + this.config.catchUpTimeoutMs,
      sentAt: now,
      source: null,
      sourceAt: now,
    };
    if (waiting.size === 0) return this.#decideCatchUp(prim);
    for (const id of waiting) push(queries, id, { ...this.#checkItem(prim, false), q: true });
  }

  /**
   * Whether a replica's copy is ahead of this primary's: the same history further on, or any
   * history when this copy holds none (a fresh copy). Copies of another lineage are not
   * taken whatever their epoch: an epoch orders appointments, not content (two reigns during
   * a split appoint primaries whose histories diverge), and every replica that had to ack a
   * write follows the lineage it acked, so within one reign the seqs of one lineage decide.
   */
  #ahead(a: HistoryReport, mine: CatchUp["mine"]): boolean {
    if (a.hl === -1) return false;
    if (mine.l === -1) return a.s > 0 || a.n > 0;
    return a.hl === mine.l && a.s > mine.s;
  }

  /** With every answer in (or the time up): pull the most advanced copy ahead of ours, or serve. */
  #decideCatchUp(prim: PrimaryState): void {
    const c = prim.catchUp!;
    let best: [NodeId, HistoryReport] | null = null;
    for (const [id, a] of c.answers) {
      if (!this.#ahead(a, c.mine)) continue;
      if (!best || a.he > best[1].he || (a.he === best[1].he && a.s > best[1].s)) best = [id, a];
    }
    if (!best) return this.#finishCatchUp(prim, null);
    c.source = best[0];
    this.#requestCopy(prim, c);
  }

  #requestCopy(prim: PrimaryState, c: CatchUp): void {
    c.sourceAt = this.#clock.now();
    this.#transport.send(c.source!, {
      t: Kind.MapSyncPull,
      items: [{ p: prim.p, e: prim.epoch, s: 0, l: -1, d0: 0, d1: 0, up: true }],
    });
  }

  #finishCatchUp(prim: PrimaryState, pulledFrom: NodeId | null): void {
    const c = prim.catchUp!;
    prim.catchUp = null;
    const d = this.#data.get(prim.p)!;
    d.follow(prim.lineage, prim.epoch);
    prim.readBarrier = Math.max(prim.readBarrier, d.seq);
    if (pulledFrom !== null) {
      this.counters.catchUpPulls++;
      this.#log.info("map.primary.caught_up", {
        p: prim.p,
        epoch: prim.epoch,
        from: pulledFrom,
        seq: d.seq,
        entries: d.entryCount,
        before: c.mine.s,
      });
    } else if (c.mine.l === -1 && c.hadPrimary && ![...c.answers.values()].some((a) => a.hl !== -1)) {
      this.counters.dataLoss++;
      this.#log.error("map.partition.data_lost", {
        p: prim.p,
        epoch: prim.epoch,
        asked: [...c.answers.keys()],
        silent: [...c.waiting],
      });
    }
    if (c.waiting.size > 0) {
      this.counters.catchUpTimeouts++;
      this.#log.warn("map.primary.catch_up_incomplete", { p: prim.p, epoch: prim.epoch, silent: [...c.waiting] });
    }
    const now = this.#clock.now();
    const checks = new Map<NodeId, CheckItem[]>();
    for (const f of prim.followers.values()) {
      f.lastCheckAt = now;
      push(checks, f.id, this.#checkItem(prim, f.role === "target"));
    }
    this.#sendChecks(checks);
    this.#progress(prim);
  }

  #tickCatchUp(prim: PrimaryState, now: number, live: ReadonlySet<NodeId>, queries: Map<NodeId, CheckItem[]>): void {
    const c = prim.catchUp!;
    for (const id of [...c.waiting]) if (!live.has(id)) c.waiting.delete(id);
    if (c.source !== null) {
      if (!live.has(c.source)) {
        // The source died: take the next best copy (the answers of the others still hold).
        c.answers.delete(c.source);
        c.source = null;
        this.#snapIn.delete(prim.p);
        return this.#decideCatchUp(prim);
      }
      if (now - c.sourceAt >= SNAPSHOT_STALE_RETRANSMITS * this.config.retransmitMs) this.#requestCopy(prim, c);
      return;
    }
    if (c.waiting.size === 0 || now >= c.deadline) return this.#decideCatchUp(prim);
    if (now - c.sentAt >= this.config.retransmitMs) {
      c.sentAt = now;
      for (const id of c.waiting) push(queries, id, { ...this.#checkItem(prim, false), q: true });
    }
  }

  /** A replica's answer to a history query (or, from the source, to a copy request it cannot serve). */
  #onHistoryReport(from: NodeId, it: PullItem): void {
    const prim = this.#primaries.get(it.p);
    if (!prim || prim.epoch !== it.e || !prim.catchUp) return;
    const c = prim.catchUp;
    if (!c.waiting.has(from) && c.source !== from) return;
    c.waiting.delete(from);
    c.answers.set(from, { hl: it.hl ?? -1, he: it.he ?? -1, s: it.s, n: it.n ?? 0 });
    if (c.source === from) {
      c.source = null;
      this.#snapIn.delete(prim.p);
    }
    if (c.source === null && c.waiting.size === 0) this.#decideCatchUp(prim);
  }

  /**
   * Replica side of catch-up: whether `from` may be the new primary of `p` at epoch `e` as far
   * as this member's table tells (a newer epoch here means it is not).
   */
  #maybeNewPrimary(from: NodeId, p: number, e: number): boolean {
    const t = this.#partitions.table;
    if (p >= t.partitionCount || from === this.self) return false;
    if (e < t.epochs[p]) {
      this.counters.staleEpochRejected++;
      return false;
    }
    if (e > t.epochs[p]) {
      this.#partitions.requestTable();
      return true;
    }
    return t.replicas[p][0] === from;
  }

  #historyReport(p: number, e: number): PullItem {
    const d = this.#data.get(p);
    if (!d) return { p, e, s: 0, l: -1, d0: 0, d1: 0, q: true, hl: -1, he: -1, n: 0 };
    return {
      p,
      e,
      s: d.seq,
      l: d.lineage,
      d0: d.digest[0],
      d1: d.digest[1],
      q: true,
      hl: d.historyLineage,
      he: d.historyEpoch,
      n: d.entryCount,
    };
  }

  /** A new primary asks for this member's copy: send it (a snapshot with `up`), or say there is none. */
  #onCopyRequest(from: NodeId, it: PullItem): void {
    if (!this.#maybeNewPrimary(from, it.p, it.e)) return;
    const d = this.#data.get(it.p);
    if (!d || d.historyLineage === -1 || this.#primaries.has(it.p)) {
      this.#transport.send(from, { t: Kind.MapSyncPull, items: [{ ...this.#historyReport(it.p, it.e), hl: -1 }] });
      return;
    }
    const key = `${it.p}|${from}`;
    const cur = this.#snapOut.get(key);
    if (cur && cur.up && cur.epoch === it.e) return this.#pumpSnapshot(cur);
    if (this.#snapOut.size >= this.config.maxSnapshotSessions) return; // the new primary asks again
    this.#snapOut.set(key, this.#newSnapshotOut(it.p, from, it.e, d.historyLineage, d, true));
    this.#pumpSnapshot(this.#snapOut.get(key)!);
  }

  /** A chunk of a replica's copy this new primary asked for; installed (replacing its own) when complete. */
  #onCopyChunk(from: NodeId, c: ChunkMsg): void {
    const prim = this.#primaries.get(c.p);
    if (!prim || prim.epoch !== c.e || !prim.catchUp || prim.catchUp.source !== from) return;
    prim.catchUp.sourceAt = this.#clock.now();
    const snap = this.#assemble(from, c);
    if (!snap) return;
    const d = new PartitionData(c.p, { dedupe: this.config.dedupePerPartition, log: this.config.logPerPartition });
    d.install(snap, prim.lineage);
    if (d.digest[0] !== snap.digest[0] || d.digest[1] !== snap.digest[1]) {
      this.#log.error("map.snapshot.digest_mismatch", { p: c.p, from, catchUp: true });
      prim.catchUp.answers.delete(from);
      prim.catchUp.source = null;
      return this.#decideCatchUp(prim);
    }
    this.#data.set(c.p, d);
    this.#finishCatchUp(prim, from);
  }

  /** A fresh lineage id: random, never -1, below 2^52. */
  #newLineage(): number {
    return Math.floor(this.#rng.next() * 2 ** 26) * 2 ** 26 + Math.floor(this.#rng.next() * 2 ** 26) + 1;
  }

  /**
   * Whether this member holds `p` as a migration target: the table lists it in the
   * partition's migration, or the primary touched the copy recently. A copy the table still
   * lists is kept however long the primary stays silent (a stalled process, a congested
   * link): the primary may already count it as caught up and the master may commit it at
   * any moment, and a committed row must never name a member that dropped its copy.
   *
   * A copy the table never listed (the push that listed it was lost, or is late) is kept
   * while the primary touches it; once it stayed silent past `migrationTimeoutMs` the copy
   * is dropped only under a table newer than the one held at the last touch, which then
   * shows the migration over (it neither lists nor names this member). Until such a table
   * arrives (it is asked for) a commit naming this member may be on its way: dropping on the
   * timeout alone made a committed row name a member without the data.
   */
  #isTarget(p: number): boolean {
    const t = this.#partitions.table;
    if (t.migrations.get(p)?.includes(this.self)) return true;
    const at = this.#touched.get(p);
    if (at === undefined) return false;
    if (this.#clock.now() - at.at < this.config.migrationTimeoutMs) return true;
    if (isNewer(t, at) || this.#partitions.masterActive) return false;
    this.#partitions.requestTable();
    return true;
  }

  /** The primary touched this member's copy of `p`, which the table does not name here. */
  #touch(p: number): void {
    const t = this.#partitions.table;
    this.#touched.set(p, { at: this.#clock.now(), term: t.term, version: t.version });
  }

  #syncFollowers(prim: PrimaryState, row: readonly NodeId[], backups: number): void {
    const want = new Map<NodeId, Role>();
    row.forEach((m, i) => {
      if (i > 0) want.set(m, i <= backups ? "sync" : "async");
    });
    // Members the migration brings in, or moves up to a sync rank, must ack every write from
    // now on: once committed they may be promoted.
    if (prim.migration) {
      prim.migration.row.forEach((m, i) => {
        if (m !== this.self && (!want.has(m) || (i <= backups && want.get(m) !== "sync"))) want.set(m, "target");
      });
    }
    for (const id of [...prim.followers.keys()]) if (!want.has(id)) prim.followers.delete(id);
    const now = this.#clock.now();
    for (const [id, role] of want) {
      const f = prim.followers.get(id);
      if (f) {
        // A replica that left the table drops its copy; as a migration target it starts over.
        if (role === "target" && f.role !== "target") f.confirmed = false;
        f.role = role;
      } else {
        prim.followers.set(id, {
          id,
          role,
          snapshots: 0,
          acked: 0,
          confirmed: false,
          lastSentAt: now,
          lastProgressAt: now,
          lastCheckAt: -Infinity,
        });
        if (prim.catchUp) continue; // checked once catch-up is done
        this.#sendChecks(new Map([[id, [this.#checkItem(prim, role === "target")]]]));
        prim.followers.get(id)!.lastCheckAt = now;
      }
    }
  }

  #demote(prim: PrimaryState): void {
    this.counters.demotedPending += prim.waiters.length;
    this.#failWaiters(prim);
    prim.followers.clear();
    for (const [key, s] of this.#snapOut) if (s.p === prim.p) this.#dropTransfer(key);
  }

  #failWaiters(prim: PrimaryState): void {
    const ws = prim.waiters.splice(0);
    for (const w of ws) w.done(false);
  }

  // ---- primary: serving ops -----------------------------------------------------------

  #serve(from: NodeId, req: InvokeRequest, reply: Reply): void {
    if (this.#stopped) return;
    const t = this.#partitions.table;
    if (!Number.isInteger(req.p) || req.p >= t.partitionCount) {
      return reply("INVALID_ARGUMENT", null, `no partition ${req.p}`);
    }
    const prim = this.#primaries.get(req.p);
    if (!prim || t.replicas[req.p][0] !== this.self) return reply("WRONG_TARGET");
    if (req.e < prim.epoch) {
      this.counters.staleEpochRejected++;
      return reply("STALE_EPOCH", null, `partition ${req.p} is at epoch ${prim.epoch}, not ${req.e}`);
    }
    if (req.e > prim.epoch) {
      this.#partitions.requestTable();
      return reply("WRONG_TARGET");
    }
    const body = parseBody(req.op, req.b);
    if (!body) return reply("INVALID_ARGUMENT", null, `invalid body for op ${req.op}`);
    if (prim.handoff || prim.catchUp) return reply("MIGRATING");
    if (prim.waiters.length >= this.config.maxPendingPerPartition) return reply("OVERLOADED");
    const d = this.#data.get(req.p)!;
    const answer = (result: unknown) => (ok: boolean) => ok ? reply("ok", result) : reply("MIGRATING");
    if (isWrite(req.op)) {
      const seen = d.dedupe.get(req.c);
      if (seen) {
        this.counters.dedupeHits++;
        return this.#waitFor(prim, seen.seq, answer(seen.r));
      }
      // Writes that change nothing (putIfAbsent on a present key, …) are logged too: their
      // result must be deduplicated like any other, or a retry executing later could answer
      // differently from the attempt that counts.
      const out = executeOp(d, req.op, body, Math.floor(this.#clock.now()));
      const entry: LogEntry = { seq: d.seq + 1, c: req.c, r: out.result, e: out.effects };
      const direct = this.#directAckers(prim);
      if (direct && direct.length > 0) entry.o = from;
      d.applyEntry(entry);
      this.counters.writesApplied++;
      const keys = opKeys(req.op, body);
      if (keys) { for (const k of keys) prim.keyPending.set(keyId(k), entry.seq); }
      else prim.readBarrier = Math.max(prim.readBarrier, entry.seq);
      this.#ship(prim, [entry]);
      if (direct && direct.length > 0) {
        this.counters.directAcked++;
        return reply("ok", out.result, undefined, direct);
      }
      return this.#waitFor(prim, entry.seq, answer(out.result));
    }
    const out = executeOp(d, req.op, body, Math.floor(this.#clock.now()));
    this.#waitFor(prim, this.#readSeq(prim, d, req.op, body), answer(out.result));
  }

  /**
   * The members that must ack a write for it to count as acknowledged (sync backups and
   * migration targets), when each of them can ack it to the caller itself: all confirmed,
   * so each receives the write in order. Null when a write must wait on the primary.
   */
  #directAckers(prim: PrimaryState): NodeId[] | null {
    if (!this.config.directBackupAcks) return null;
    const ids: NodeId[] = [];
    let copies = 1;
    for (const f of prim.followers.values()) {
      if (f.role === "async") continue;
      if (!f.confirmed) return null;
      ids.push(f.id);
      if (f.role === "sync") copies++;
    }
    // Too few copies: the write waits on the primary (see #commitSeq).
    if (copies < this.#copiesNeeded()) return null;
    return ids.length <= 7 ? ids : null;
  }

  /** The sequence a read must see committed: the last write to its keys (or all writes). */
  #readSeq(prim: PrimaryState, d: PartitionData, op: number, body: ReturnType<typeof parseBody> & object): number {
    const keys = opKeys(op, body);
    if (!keys) return d.seq;
    let s = prim.readBarrier;
    for (const k of keys) s = Math.max(s, prim.keyPending.get(keyId(k)) ?? 0);
    return s;
  }

  /**
   * Highest sequence every required replica (sync backups, migration targets) acked. While
   * the row holds fewer copies than min(backupCount + 1, data members in the view), nothing
   * past what was committed before commits (invariant 10): the master creates the missing
   * backups in place, and writes wait for them instead of being acknowledged on fewer copies.
   */
  #commitSeq(prim: PrimaryState): number {
    let s = this.#data.get(prim.p)?.seq ?? 0;
    let copies = 1;
    for (const f of prim.followers.values()) {
      if (f.role === "async") continue;
      s = Math.min(s, f.confirmed ? f.acked : -1);
      if (f.role === "sync") copies++;
    }
    if (copies < this.#copiesNeeded()) return Math.min(s, prim.committed);
    return prim.committed = Math.max(prim.committed, s);
  }

  /** min(backupCount + 1, data members in this member's view). */
  #copiesNeeded(): number {
    let data = 0;
    for (const m of this.#view.members()) if (!m.lite) data++;
    return Math.min(this.#partitions.config.backupCount + 1, Math.max(1, data));
  }

  #waitFor(prim: PrimaryState, seq: number, done: (ok: boolean) => void): void {
    if (seq <= this.#commitSeq(prim)) return done(true);
    const ws = prim.waiters;
    let i = ws.length;
    while (i > 0 && ws[i - 1].seq > seq) i--;
    ws.splice(i, 0, { seq, done });
  }

  #progress(prim: PrimaryState): void {
    const c = this.#commitSeq(prim);
    let n = 0;
    while (n < prim.waiters.length && prim.waiters[n].seq <= c) n++;
    if (n > 0) { for (const w of prim.waiters.splice(0, n)) w.done(true); }
    if (prim.keyPending.size > 0) { for (const [k, s] of prim.keyPending) if (s <= c) prim.keyPending.delete(k); }
    this.#checkMigration(prim);
  }

  #ship(prim: PrimaryState, entries: LogEntry[]): void {
    const now = this.#clock.now();
    for (const f of prim.followers.values()) {
      if (!f.confirmed) continue;
      this.#transport.send(f.id, { t: Kind.MapBackupOps, p: prim.p, e: prim.epoch, l: prim.lineage, ops: entries });
      f.lastSentAt = now;
    }
  }

  // ---- primary: migration ---------------------------------------------------------------

  #onMigrationStart(p: number, epoch: number, row: readonly NodeId[], mid?: number): void {
    const prim = this.#primaries.get(p);
    if (!prim || prim.epoch !== epoch) return;
    const now = this.#clock.now();
    const m = prim.migration;
    if (m && sameRow(m.row, row) && (mid === undefined || m.mid === undefined || m.mid === mid)) {
      // A resend of the migration under way.
      m.deadline = now + this.config.migrationTimeoutMs;
      m.reportedAt = -Infinity;
      m.mid ??= mid;
      this.#syncFollowers(prim, this.#partitions.table.replicas[p], this.#partitions.config.backupCount);
    } else {
      prim.migration = { row: [...row], deadline: now + this.config.migrationTimeoutMs, reportedAt: -Infinity, mid };
      prim.handoff = false;
      this.#syncFollowers(prim, this.#partitions.table.replicas[p], this.#partitions.config.backupCount);
      // A new migration: its targets are checked again from scratch. A target that acked
      // under an earlier migration may have dropped its copy since that one ended; counting
      // its old acks would let the master commit a row naming a member without the data.
      const checks = new Map<NodeId, CheckItem[]>();
      for (const f of prim.followers.values()) {
        if (f.role !== "target" || !f.confirmed) continue;
        f.confirmed = false;
        if (this.#snapOut.has(`${p}|${f.id}`) || prim.catchUp) continue;
        f.lastCheckAt = now;
        push(checks, f.id, this.#checkItem(prim, true));
      }
      this.#sendChecks(checks);
    }
    this.#checkMigration(prim);
  }

  #checkMigration(prim: PrimaryState): void {
    const m = prim.migration;
    if (!m || prim.catchUp) return;
    const now = this.#clock.now();
    if (now > m.deadline) {
      prim.migration = null;
      prim.handoff = false;
      this.#syncFollowers(prim, this.#partitions.table.replicas[prim.p], this.#partitions.config.backupCount);
      return;
    }
    if (now - m.reportedAt < this.config.retransmitMs) return;
    const seq = this.#data.get(prim.p)!.seq;
    const ready = m.row.every((id) => {
      if (id === this.self) return true;
      const f = prim.followers.get(id);
      return !!f && f.confirmed && f.acked >= seq;
    });
    if (!ready) return;
    if (m.row[0] !== this.self) {
      // The primary moves: stop serving first, let what is pending commit, then report.
      prim.handoff = true;
      if (prim.waiters.length > 0) return;
    }
    m.reportedAt = now;
    if (m.row[0] !== this.self) {
      // Seal the handoff: nothing more is applied here before the commit (or the migration's end).
      this.#sendChecks(
        new Map([[m.row[0], [{
          ...this.#checkItem(prim, prim.followers.get(m.row[0])?.role === "target"),
          hs: true,
        }]]]),
      );
    }
    this.#partitions.reportMigrationReady(prim.p, prim.epoch, m.row, m.mid);
  }

  // ---- messages -------------------------------------------------------------------------

  #onMessage(from: NodeId, msg: Message): void {
    switch (msg.t) {
      case Kind.MapBackupOps:
        return this.#onBackupOps(from, msg as unknown as { p: number; e: number; l: number; ops: LogEntry[] });
      case Kind.MapBackupAck:
        for (const it of msg.items as Array<{ p: number; e: number; s: number }>) this.#onAck(from, it.p, it.e, it.s);
        return;
      case Kind.MapSyncCheck:
        return this.#onChecks(from, msg.items as CheckItem[]);
      case Kind.MapSyncPull:
        for (const it of msg.items as PullItem[]) this.#onPull(from, it);
        return;
      case Kind.MapSnapshotChunk:
        return this.#onChunk(from, msg as unknown as ChunkMsg);
      case Kind.MapSnapshotAck: {
        const s = this.#snapOut.get(`${msg.p}|${from}`);
        if (!s || s.sid !== msg.sid || (msg.i as number) >= s.chunks.length || s.acked[msg.i as number]) return;
        this.#onChunkAck(s, msg.i as number);
        if (s.remaining === 0) {
          this.#snapOut.delete(`${msg.p}|${from}`);
          this.#startWaitingSnapshots();
        }
        return;
      }
    }
  }

  /** Whether `from` is the primary of `p` at epoch `e` in this member's table. */
  #fromPrimary(from: NodeId, p: number, e: number): boolean {
    const t = this.#partitions.table;
    if (p >= t.partitionCount) return false;
    if (e > t.epochs[p]) {
      this.#partitions.requestTable();
      return false;
    }
    if (e < t.epochs[p]) {
      this.counters.staleEpochRejected++;
      return false;
    }
    return t.replicas[p][0] === from && from !== this.self;
  }

  #onBackupOps(from: NodeId, msg: { p: number; e: number; l: number; ops: LogEntry[] }): void {
    if (!this.#fromPrimary(from, msg.p, msg.e)) return;
    const d = this.#data.get(msg.p);
    if (!d || d.lineage !== msg.l) {
      // The primary counts this member as a replica (perhaps a migration target it lost):
      // ask for what is missing; the primary answers with the log or a snapshot.
      if (!this.#partitions.table.replicas[msg.p].includes(this.self)) this.#touch(msg.p);
      this.#pull(from, msg.p, msg.e, true);
      return;
    }
    if (this.#touched.has(msg.p)) this.#touch(msg.p);
    let callers: Map<NodeId, string[]> | null = null;
    for (const op of msg.ops) {
      if (op.seq <= d.seq) continue;
      if (op.seq !== d.seq + 1) {
        this.#pull(from, msg.p, msg.e, true);
        break;
      }
      d.applyEntry(op);
      this.counters.backupsApplied++;
      if (op.o !== undefined && op.c !== undefined) push(callers ??= new Map(), op.o, op.c);
    }
    this.#transport.send(from, { t: Kind.MapBackupAck, items: [{ p: msg.p, e: msg.e, s: d.seq }] });
    // Writes whose callers wait for each backup's own ack (see directBackupAcks).
    if (callers) {
      for (const [caller, cs] of callers) {
        if (caller === this.self) this.#invoker.onBackupAcks(this.self, from, cs);
        else this.#transport.send(caller, { t: Kind.InvokeBackupAck, pr: from, cs });
      }
    }
  }

  #pull(to: NodeId, p: number, e: number, throttle: boolean): void {
    const now = this.#clock.now();
    if (throttle && now - (this.#pullAt.get(p) ?? -Infinity) < this.config.retransmitMs / 2) return;
    if (this.#snapshotArriving(p, e)) return;
    this.#pullAt.set(p, now);
    this.counters.pulls++;
    const d = this.#data.get(p);
    this.#transport.send(to, {
      t: Kind.MapSyncPull,
      items: [{ p, e, s: d?.seq ?? 0, l: d?.lineage ?? -1, d0: d?.digest[0] ?? 0, d1: d?.digest[1] ?? 0 }],
    });
  }

  /**
   * Whether a snapshot of `p` under epoch `e` is on its way, so pulling would only start a
   * second transfer. A transfer whose chunks stopped coming (the primary gave up on it, or
   * lost its state) no longer counts: the replica pulls again, keeping the chunks it holds
   * in case the same transfer resumes. Without this a dropped transfer left the replica
   * silent, unconfirmed and blocking every write and migration of the partition, for as
   * long as the epoch lasted.
   */
  #snapshotArriving(p: number, e: number): boolean {
    const a = this.#snapIn.get(p);
    return !!a && a.epoch === e &&
      this.#clock.now() - a.lastChunkAt < SNAPSHOT_STALE_RETRANSMITS * this.config.retransmitMs;
  }

  #onChecks(from: NodeId, items: CheckItem[]): void {
    const acks: Array<{ p: number; e: number; s: number }> = [];
    const pulls: PullItem[] = [];
    let reports = 0;
    for (const it of items) {
      if (it.q) {
        // A new primary asks which history this copy holds: answering changes nothing here.
        if (this.#maybeNewPrimary(from, it.p, it.e)) {
          pulls.push(this.#historyReport(it.p, it.e));
          reports++;
        }
        continue;
      }
      if (!this.#fromPrimary(from, it.p, it.e)) continue;
      const inRow = this.#partitions.table.replicas[it.p].includes(this.self);
      if (!inRow && !it.tg) continue;
      if (!inRow) this.#touch(it.p);
      const d = this.#ensureData(it.p);
      if (d.seq === it.s && d.digest[0] === it.d0 && d.digest[1] === it.d1) {
        d.follow(it.l, it.e);
        if (it.hs) this.#sealed.set(it.p, { l: it.l, s: it.s });
        acks.push({ p: it.p, e: it.e, s: d.seq });
        continue;
      }
      // Same history but behind: pull the missing writes. Anything else: diverged, needs a snapshot.
      if (!(d.lineage === it.l && d.seq < it.s)) d.lineage = -1;
      if (this.#snapshotArriving(it.p, it.e)) continue;
      pulls.push({ p: it.p, e: it.e, s: d.seq, l: d.lineage, d0: d.digest[0], d1: d.digest[1] });
    }
    if (acks.length) this.#transport.send(from, { t: Kind.MapBackupAck, items: acks });
    if (pulls.length) {
      this.counters.pulls += pulls.length - reports;
      this.#transport.send(from, { t: Kind.MapSyncPull, items: pulls });
    }
  }

  #onAck(from: NodeId, p: number, e: number, s: number): void {
    const prim = this.#primaries.get(p);
    if (!prim || prim.epoch !== e || prim.catchUp) return;
    const f = prim.followers.get(from);
    if (!f) return;
    const now = this.#clock.now();
    f.lastProgressAt = now;
    if (!f.confirmed) {
      f.confirmed = true;
      f.acked = s;
      // Writes made while the replica was unconfirmed were not shipped to it: send them now.
      const d = this.#data.get(p)!;
      if (f.acked < d.seq) this.#resend(prim, f, d);
      this.#reportSynced(prim, now, true);
    } else if (s > f.acked) f.acked = s;
    this.#progress(prim);
  }

  /**
   * Tells the master which backups the table lists as filling (created in place) are in sync
   * here: confirmed, so they hold every entry and get every later write in order. Repeated
   * every retransmitMs while the table still lists them (`force`: at once).
   */
  #reportSynced(prim: PrimaryState, now: number, force: boolean): void {
    const filling = fillingOf(this.#partitions.table, prim.p);
    if (filling.length === 0 || prim.catchUp) return;
    if (!force && now - prim.syncedReportAt < this.config.retransmitMs) return;
    const synced = filling.filter((id) => prim.followers.get(id)?.confirmed);
    if (synced.length === 0) return;
    prim.syncedReportAt = now;
    this.#partitions.reportBackupsSynced(prim.p, prim.epoch, synced);
  }

  #resend(prim: PrimaryState, f: Follower, d: PartitionData): void {
    const ops = d.logFrom(f.acked + 1);
    f.lastSentAt = this.#clock.now();
    if (ops === null) {
      f.confirmed = false;
      this.#startSnapshot(prim, f.id);
      return;
    }
    this.counters.logResends++;
    this.counters.logOpsResent += ops.length;
    for (let i = 0; i < ops.length; i += 256) {
      this.#transport.send(f.id, {
        t: Kind.MapBackupOps,
        p: prim.p,
        e: prim.epoch,
        l: prim.lineage,
        ops: ops.slice(i, i + 256),
      });
    }
  }

  #onPull(from: NodeId, it: PullItem): void {
    if (it.up) return this.#onCopyRequest(from, it);
    if (it.q) return this.#onHistoryReport(from, it);
    const prim = this.#primaries.get(it.p);
    if (!prim || prim.epoch !== it.e || prim.catchUp) return;
    const f = prim.followers.get(from);
    if (!f) return;
    this.counters.pullsReceived++;
    if (prim.migration) this.counters.pullsReceivedDuringMigration++;
    if (this.#snapOut.has(`${it.p}|${from}`)) this.counters.pullsReceivedDuringTransfer++;
    const d = this.#data.get(it.p)!;
    if (it.l === prim.lineage && it.s <= d.seq) {
      // Same history, behind: the log may cover the gap.
      const ops = d.logFrom(it.s + 1);
      if (ops !== null) {
        f.confirmed = true;
        f.acked = it.s;
        this.#resend(prim, f, d);
        this.#progress(prim);
        return;
      }
    }
    f.confirmed = false;
    if (it.s === d.seq && it.d0 === d.digest[0] && it.d1 === d.digest[1]) {
      f.lastCheckAt = this.#clock.now();
      this.#sendChecks(new Map([[from, [this.#checkItem(prim, f.role === "target")]]]));
      return;
    }
    this.#startSnapshot(prim, from);
  }

  // ---- snapshots ------------------------------------------------------------------------

  #startSnapshot(prim: PrimaryState, to: NodeId): void {
    const key = `${prim.p}|${to}`;
    const cur = this.#snapOut.get(key);
    if (cur && cur.epoch === prim.epoch && cur.lineage === prim.lineage) return;
    if (this.#snapOut.size >= this.config.maxSnapshotSessions) {
      // Started as soon as a session ends (and the replica pulls again anyway).
      if (this.#snapWaiting.size < MAX_SNAPSHOTS_WAITING) this.#snapWaiting.add(key);
      return;
    }
    this.#snapWaiting.delete(key);
    const s = this.#newSnapshotOut(prim.p, to, prim.epoch, prim.lineage, this.#data.get(prim.p)!, false);
    this.#snapOut.set(key, s);
    this.counters.snapshotsSent++;
    const f = prim.followers.get(to);
    if (f && f.snapshots++ > 0) this.counters.snapshotsRestarted++;
    this.#pumpSnapshot(s);
  }

  /** A transfer of `d`'s current content to `to`, cut into chunks of about snapshotChunkBytes. */
  #newSnapshotOut(p: number, to: NodeId, epoch: number, lineage: number, d: PartitionData, up: boolean): SnapshotOut {
    const snap = d.snapshot();
    const chunks: Message[] = [];
    const sizes: number[] = [];
    const sid = this.#sid++;
    let entries: SnapshotData["entries"] = [];
    let bytes = 0;
    // Each dedupe record carries its call's result (often a previous value as bytes).
    let dedupeBytes = 0;
    for (const [callId, , result] of snap.dedupe) {
      dedupeBytes += callId.length + 16 + (result instanceof Uint8Array ? result.byteLength : 8);
    }
    const flush = (last: boolean) => {
      const c: Message = {
        t: Kind.MapSnapshotChunk,
        p,
        e: epoch,
        l: lineage,
        sid,
        i: chunks.length,
        n: 0,
        s: snap.seq,
        d0: snap.digest[0],
        d1: snap.digest[1],
        entries,
        dedupe: last ? snap.dedupe : [],
      };
      if (up) c.up = true;
      chunks.push(c);
      sizes.push(bytes + 64 + (last ? dedupeBytes : 0));
      entries = [];
      bytes = 0;
    };
    for (const e of snap.entries) {
      entries.push(e);
      bytes += e[0].length + e[1].byteLength + e[2].byteLength + 24;
      if (bytes >= this.config.snapshotChunkBytes) flush(false);
    }
    flush(true);
    for (const c of chunks) c.n = chunks.length;
    return {
      p,
      to,
      epoch,
      lineage,
      sid,
      chunks,
      bytes: sizes,
      acked: chunks.map(() => false),
      sentAt: chunks.map(() => -Infinity),
      tries: chunks.map(() => 0),
      firstOrder: chunks.map(() => -1),
      lastOrder: chunks.map(() => -1),
      sends: 0,
      remaining: chunks.length,
      progressAt: this.#clock.now(),
      resentAt: -Infinity,
      backoff: 0,
      up,
    };
  }

  /** Drops an unfinished transfer (counted in snapshotsAbandoned). */
  /**
   * Starts transfers that found every session taken, while sessions are free: otherwise each
   * waited for its replica's next pull (a retransmit interval), and filling many new backups
   * at once (a cluster forming) ran at maxSnapshotSessions per interval.
   */
  #startWaitingSnapshots(): void {
    for (const key of this.#snapWaiting) {
      if (this.#snapOut.size >= this.config.maxSnapshotSessions) return;
      this.#snapWaiting.delete(key);
      const [p, to] = [Number(key.slice(0, key.indexOf("|"))), key.slice(key.indexOf("|") + 1)];
      const prim = this.#primaries.get(p);
      const f = prim?.followers.get(to);
      if (!prim || !f || f.confirmed || prim.catchUp || this.#snapOut.has(key)) continue;
      this.#startSnapshot(prim, to);
    }
  }

  #dropTransfer(key: string): void {
    if (this.#snapOut.delete(key)) this.counters.snapshotsAbandoned++;
    this.#startWaitingSnapshots();
  }

  /** Sends the chunks of the window (the first `snapshotWindow` unacknowledged ones) not sent yet. */
  #pumpSnapshot(s: SnapshotOut): void {
    let inFlight = 0;
    for (let i = 0; i < s.chunks.length && inFlight < this.config.snapshotWindow; i++) {
      if (s.acked[i]) continue;
      inFlight++;
      if (s.tries[i] === 0) this.#sendChunk(s, i);
    }
  }

  #sendChunk(s: SnapshotOut, i: number): void {
    const now = this.#clock.now();
    if (s.tries[i] === 0) {
      this.counters.snapshotChunksSent++;
      this.counters.snapshotChunkBytesSent += s.bytes[i];
      s.firstOrder[i] = s.sends;
    } else {
      this.counters.snapshotChunksResent++;
      this.counters.snapshotChunkBytesResent += s.bytes[i];
    }
    s.lastOrder[i] = s.sends++;
    s.sentAt[i] = now;
    s.tries[i]++;
    this.#transport.send(s.to, s.chunks[i]);
  }

  /**
   * How long a transfer to `to` may go without any acknowledged chunk before its oldest
   * unacknowledged chunk is resent: twice the smoothed chunk round trip plus four times its
   * variation, at least retransmitMs (3 × retransmitMs before any measurement).
   */
  #chunkRtoMs(to: NodeId): number {
    const r = this.#chunkRtt.get(to);
    if (!r) return 3 * this.config.retransmitMs;
    return Math.max(this.config.retransmitMs, 2 * r.srttMs + 4 * r.varMs);
  }

  /**
   * Chunk `i` of `s` was acknowledged. Links are reliable and ordered, so a chunk sent before
   * `i` was first sent and still unacknowledged was lost (or its ack was): it is resent at
   * once. Nothing else is resent while acks come in: on a slow link the chunks are queued,
   * and copies of them would only lengthen the queue.
   */
  #onChunkAck(s: SnapshotOut, i: number): void {
    const now = this.#clock.now();
    if (s.tries[i] === 1) {
      // Karn: only chunks sent once give an unambiguous round trip.
      const sample = now - s.sentAt[i];
      const r = this.#chunkRtt.get(s.to);
      if (!r) this.#chunkRtt.set(s.to, { srttMs: sample, varMs: sample / 2 });
      else {
        r.varMs = 0.75 * r.varMs + 0.25 * Math.abs(r.srttMs - sample);
        r.srttMs = 0.875 * r.srttMs + 0.125 * sample;
      }
    }
    s.acked[i] = true;
    s.remaining--;
    s.progressAt = now;
    s.resentAt = -Infinity;
    s.backoff = 0;
    if (s.remaining === 0) return;
    const first = s.firstOrder[i];
    for (let k = 0; k < s.chunks.length; k++) {
      if (s.acked[k] || s.tries[k] === 0) continue;
      if (s.lastOrder[k] < first) {
        this.counters.snapshotFastResends++;
        this.#sendChunk(s, k);
      }
    }
    this.#pumpSnapshot(s);
  }

  /** Tick: a transfer without any acknowledged chunk for an rto (doubling per try) resends its oldest unacknowledged chunk. */
  #tickSnapshot(s: SnapshotOut, now: number): void {
    const since = Math.max(s.progressAt, s.resentAt);
    if (now - since < this.#chunkRtoMs(s.to) * 2 ** s.backoff) return this.#pumpSnapshot(s);
    for (let k = 0; k < s.chunks.length; k++) {
      if (s.acked[k]) continue;
      if (s.tries[k] === 0) break;
      this.#sendChunk(s, k);
      s.resentAt = now;
      s.backoff = Math.min(2, s.backoff + 1);
      break;
    }
    this.#pumpSnapshot(s);
  }

  #onChunk(from: NodeId, c: ChunkMsg): void {
    if (c.up) return this.#onCopyChunk(from, c);
    if (!this.#fromPrimary(from, c.p, c.e)) return;
    const inRow = this.#partitions.table.replicas[c.p].includes(this.self);
    if (!inRow && !this.#isTarget(c.p)) return;
    if (!inRow) this.#touch(c.p);
    const cur = this.#data.get(c.p);
    if (cur && cur.lineage === c.l && cur.seq >= c.s) {
      // Already at or past this snapshot on the same history (a retransmitted chunk of a
      // transfer that completed): acknowledge it, never go back.
      this.#transport.send(from, { t: Kind.MapSnapshotAck, p: c.p, sid: c.sid, i: c.i });
      return;
    }
    const snap = this.#assemble(from, c);
    if (!snap) return;
    const d = this.#ensureData(c.p);
    d.install(snap, c.l);
    if (d.digest[0] !== snap.digest[0] || d.digest[1] !== snap.digest[1]) {
      this.#log.error("map.snapshot.digest_mismatch", { p: c.p, from });
      d.lineage = -1;
      d.historyLineage = -1;
      return;
    }
    d.follow(c.l, c.e);
    this.counters.snapshotsInstalled++;
    this.#log.debug("map.snapshot.installed", { p: c.p, epoch: c.e, seq: d.seq, entries: d.entryCount, from });
    this.#transport.send(from, { t: Kind.MapBackupAck, items: [{ p: c.p, e: c.e, s: d.seq }] });
  }

  /** Collects a chunk (and acks it); returns the whole snapshot once every chunk is in. */
  #assemble(from: NodeId, c: ChunkMsg): SnapshotData | null {
    let a = this.#snapIn.get(c.p);
    if (!a || a.sid !== c.sid || a.from !== from) {
      a = {
        sid: c.sid,
        from,
        epoch: c.e,
        lineage: c.l,
        n: c.n,
        s: c.s,
        d: [c.d0, c.d1],
        got: new Map(),
        lastChunkAt: 0,
      };
      this.#snapIn.set(c.p, a);
    }
    a.lastChunkAt = this.#clock.now();
    if (c.i >= a.n) return null;
    a.got.set(c.i, { entries: c.entries, dedupe: c.dedupe });
    this.#transport.send(from, { t: Kind.MapSnapshotAck, p: c.p, sid: c.sid, i: c.i });
    if (a.got.size < a.n) return null;
    this.#snapIn.delete(c.p);
    const snap: SnapshotData = { seq: a.s, digest: a.d, entries: [], dedupe: [] };
    for (let i = 0; i < a.n; i++) {
      const part = a.got.get(i)!;
      for (const e of part.entries) snap.entries.push(e);
      for (const e of part.dedupe) snap.dedupe.push(e);
    }
    return snap;
  }

  // ---- periodic work ---------------------------------------------------------------------

  #checkItem(prim: PrimaryState, target: boolean): CheckItem {
    const d = this.#data.get(prim.p)!;
    return { p: prim.p, e: prim.epoch, l: prim.lineage, s: d.seq, d0: d.digest[0], d1: d.digest[1], tg: target };
  }

  #sendChecks(byMember: Map<NodeId, CheckItem[]>): void {
    for (const [id, items] of byMember) if (items.length) this.#transport.send(id, { t: Kind.MapSyncCheck, items });
  }

  #schedule(): void {
    this.#timer = this.#clock.setTimer(this.config.tickMs, () => {
      if (this.#stopped) return;
      this.#tick();
      this.#schedule();
    });
  }

  #tick(): void {
    const now = this.#clock.now();
    const checks = new Map<NodeId, CheckItem[]>();
    const live = new Set(this.#view.members().map((m) => m.id));
    for (const prim of this.#primaries.values()) {
      if (prim.catchUp) {
        this.#tickCatchUp(prim, now, live, checks);
        continue;
      }
      const d = this.#data.get(prim.p)!;
      for (const f of prim.followers.values()) {
        if (!live.has(f.id)) continue;
        if (this.#snapOut.has(`${prim.p}|${f.id}`)) continue;
        if (!f.confirmed) {
          if (now - f.lastCheckAt >= this.config.retransmitMs) {
            f.lastCheckAt = now;
            push(checks, f.id, this.#checkItem(prim, f.role === "target"));
          }
        } else if (f.acked < d.seq) {
          if (now - f.lastProgressAt >= this.config.retransmitMs && now - f.lastSentAt >= this.config.retransmitMs) {
            this.#resend(prim, f, d);
          }
        } else if (now - f.lastCheckAt >= this.config.antiEntropyMs) {
          f.lastCheckAt = now;
          push(checks, f.id, this.#checkItem(prim, f.role === "target"));
        }
      }
      this.#checkMigration(prim);
      this.#reportSynced(prim, now, false);
    }
    this.#sendChecks(checks);
    // Transfers to replicas that left the follower set, died or stopped answering are dropped
    // (the replica pulls again if it still needs one), so they cannot hold the session limit.
    for (const [key, s] of this.#snapOut) {
      const prim = this.#primaries.get(s.p);
      const giveUpMs = Math.max(
        SNAPSHOT_GIVE_UP_RETRANSMITS * this.config.retransmitMs,
        SNAPSHOT_GIVE_UP_RTOS * this.#chunkRtoMs(s.to),
      );
      const stale = !live.has(s.to) || now - s.progressAt > giveUpMs ||
        (s.up
          ? this.#partitions.table.epochs[s.p] > s.epoch
          : !prim || prim.epoch !== s.epoch || !prim.followers.has(s.to));
      if (stale) this.#dropTransfer(key);
      else this.#tickSnapshot(s, now);
    }
    for (const id of this.#chunkRtt.keys()) if (!live.has(id)) this.#chunkRtt.delete(id);
    // Drop migration-target copies nobody committed.
    const t = this.#partitions.table;
    for (const p of [...this.#touched.keys()]) {
      if (t.replicas[p].includes(this.self)) this.#touched.delete(p);
      else if (!this.#isTarget(p)) {
        this.#touched.delete(p);
        this.#data.delete(p);
        this.#snapIn.delete(p);
        this.#sealed.delete(p);
      }
    }
  }
}

interface CheckItem {
  p: number;
  e: number;
  l: number;
  s: number;
  d0: number;
  d1: number;
  tg: boolean;
  /** A history query from a new primary (see MapSyncCheck). */
  q?: boolean;
  /** Handoff seal (see MapSyncCheck). */
  hs?: boolean;
}

interface PullItem {
  p: number;
  e: number;
  s: number;
  l: number;
  d0: number;
  d1: number;
  /** A report answering a history query: the history the copy holds, and its entries. */
  q?: boolean;
  hl?: number;
  he?: number;
  n?: number;
  /** New primary → replica: send me your copy. */
  up?: boolean;
}

interface ChunkMsg {
  p: number;
  e: number;
  l: number;
  sid: number;
  i: number;
  n: number;
  s: number;
  d0: number;
  d1: number;
  entries: SnapshotData["entries"];
  dedupe: SnapshotData["dedupe"];
  up?: boolean;
}

/**
 * A primary drops a snapshot transfer after this many retransmit intervals without an
 * acknowledged chunk (the replica pulls again if it still needs one). Long enough for a
 * congested link whose acks lag by seconds, so such a transfer is not restarted from scratch
 * over and over.
 */
const SNAPSHOT_GIVE_UP_RETRANSMITS = 30;
/**
 * …and at least this many chunk rtos (see #chunkRtoMs), so a transfer over a slow link has its
 * oldest chunk resent 4 times (after 1, 3, 7 and 11 rtos) before it is dropped.
 */
const SNAPSHOT_GIVE_UP_RTOS = 12;
/**
 * A replica takes a snapshot transfer whose chunks stopped arriving for this many retransmit
 * intervals as abandoned, and pulls again (a pull during a live transfer is harmless: the
 * primary keeps the transfer under way and sends nothing more for it).
 */
const SNAPSHOT_STALE_RETRANSMITS = 4;
/** Transfers waiting for a free session at most (see #startWaitingSnapshots). */
const MAX_SNAPSHOTS_WAITING = 4096;

function push<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const a = m.get(k);
  if (a) a.push(v);
  else m.set(k, [v]);
}

function sameRow(a: readonly NodeId[], b: readonly NodeId[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
