/**
 * The partition service: holds this member's copy of the partition table and, on the
 * master, produces new versions. (About 800 lines: its master and member sides share the table,
 * the view and the pace; the parts with state of their own are apart already: table_collect.ts,
 * migrations_inflight.ts, commit_hold.ts, backups_synced.ts, leaving_members.ts.)
 *
 * Members apply a pushed table only if it is newer than theirs and comes from the member
 * they believe is master. A member that becomes master first collects the newest table
 * any live member holds, then repairs it (drops dead members; the first live backup of a
 * partition whose primary died becomes primary, epoch + 1) and publishes it. From then on,
 * every tick, it compares the table with the ideal assignment for the live data members and
 * moves partitions towards it by migration: it asks the primary to bring the members of the
 * new replica list up to date (MigrationStart), and commits the new list only when the
 * primary reports them ready (MigrationReady). Replicas are dropped only by a commit, so a
 * migration never lowers the number of live replicas.
 *
 * Split by owned state: a new master's collect of the newest table (table_collect.ts), the
 * migrations in flight (migrations_inflight.ts), the in-sync reports of backups created in place
 * (backups_synced.ts) and the commits held while the master's quorum has lapsed (commit_hold.ts)
 * live in their own files, the pure planning in assignment.ts and partition_table.ts. What
 * remains is the table and the master's pass (repair, backups created in place, fills spread,
 * migrations started and committed) that changes it, with the pass's pacing.
 */
import type { ClusterView } from "../cluster/view.ts";
import { LeavingMembers } from "./leaving_members.ts";
import type { Clock, Timer } from "../core/clock.ts";
import type { Logger } from "../core/log.ts";
import { TickPace } from "../core/tick_pace.ts";
import type { MessageRouter } from "../transport/router.ts";
import type { NodeId, Transport } from "../transport/transport.ts";
import { Kind } from "../wire/kinds.ts";
import type { Message } from "../wire/message.ts";
import { assignPartitions, fillMissingReplicas, repairReplicas, spreadFills } from "./assignment.ts";
import {
  PartitionBackupsSyncedMsg,
  PartitionLeaveNowhereMsg,
  PartitionMemberLeavingMsg,
  type PartitionMigrationReady,
  PartitionMigrationReadyMsg,
  type PartitionMigrationStart,
  PartitionMigrationStartMsg,
  type PartitionTableFetch,
  PartitionTableFetchMsg,
  PartitionTablePushMsg,
  PartitionTableReportMsg,
  PartitionTableVersionMsg,
  type WireTable,
} from "./messages.ts";
import {
  assertTableFollows,
  emptyTable,
  isNewer,
  nextTable,
  type PartitionTable,
  primariesChanged,
  rebaseTable,
  reignTerm,
  sameRow,
  tableFromWire,
  tableInfo,
  tableSummary,
  tableToWire,
  termRound,
  withFilling,
} from "./partition_table.ts";
import type { PartitionReplicaInfo, PartitionTableSummary } from "./summary.ts";
import { implausibleTable, TableCollect } from "./table_collect.ts";
import { applySyncedReports, type SyncedItem, SyncedReports } from "./backups_synced.ts";
import { CommitHold } from "./commit_hold.ts";
import { InflightMigrations } from "./migrations_inflight.ts";
import type { PartitionConfig } from "./partition_config.ts";

export type { PartitionConfig };

export interface PartitionServiceOptions {
  self: NodeId;
  view: ClusterView;
  transport: Transport;
  router: MessageRouter;
  clock: Clock;
  log: Logger;
  config: PartitionConfig;
}

export type TableListener = (next: PartitionTable, prev: PartitionTable) => void;
/** `mid` names the migration (the same on resends; absent from masters that predate it). */
export type MigrationStartListener = (p: number, epoch: number, row: readonly NodeId[], mid?: number) => void;

export class PartitionService {
  readonly self: NodeId;
  readonly config: Required<PartitionConfig>;
  #view: ClusterView;
  #transport: Transport;
  #clock: Clock;
  #log: Logger;
  #table: PartitionTable;
  #source: NodeId | undefined;
  #tableListeners: TableListener[] = [];
  #migrationListeners: MigrationStartListener[] = [];
  #pace: TickPace;
  #stopped = false;
  #unsubscribe: () => void;
  #lastFetchAt = -Infinity;
  #knownMaster: NodeId | undefined;
  /** Filling backups this member's map layer reported in sync, on their way to the master. */
  #synced: SyncedReports;
  // master state
  #masterActive = false;
  /** While this member, just become master, collects the newest table (table_collect.ts). */
  #collect: TableCollect | null = null;
  /** The term of the table this master's reign started from: tables of later terms come from another reign. */
  #reignFrom = 0;
  #inflight = new InflightMigrations();
  #leaving: LeavingMembers;
  #lastHeartbeatAt = -Infinity;
  #idealKey = "";
  #ideal: NodeId[][] | null = null;
  /** The inputs (table, #inputsKey) of the last master pass that changed nothing, none in flight. */
  #quiet: { table: PartitionTable; key: string } | null = null;
  #publishTimer: Timer | null = null;
  #pending: PartitionTable | null = null;
  /** See {@link setEmptyCheck}. */
  #emptyPrimary: ((p: number, epoch: number) => boolean) | null = null;
  /** See {@link setUntouchedFillCheck}. */
  #untouchedFill: ((p: number, epoch: number, member: NodeId) => boolean) | null = null;
  /** See {@link setQuorumCheck}. */
  #hasQuorum: (() => boolean) | null = null;
  /** Ready reports that came while this master's quorum had lapsed: committed once it is back. */
  #held = new CommitHold(() => this.#hasQuorum === null || this.#hasQuorum());
  /** The data members the fills were last spread for (see #masterTick). */
  #fillsBalancedFor = "";
  // graceful leave
  #leaveWaiters: Array<() => void> = [];
  #leaveRequested = false;
  /** Counters for metrics and tests. */
  readonly stats = {
    pushesApplied: 0,
    /** Table pushes, version announcements and migration orders from a member that is not our master (refused). */
    pushesIgnored: 0,
    /** Tables reported by a member whose term or version lies implausibly far ahead (refused; see implausibleTable). */
    reportsRejected: 0,
    migrationsStarted: 0,
    migrationsCommitted: 0,
    migrationsAbandoned: 0,
    /** Master only: ready reports held until the master's quorum was back (split-brain protection). */
    commitsDeferred: 0,
    tablesPublished: 0,
    /** Master only: rows given the backups they lacked in place (no copy first; see fillMissingReplicas). */
    backupsCreated: 0,
    /** Master only: backups created in place that their primary reported in sync. */
    backupsSynced: 0,
    /** Master only: rows of empty partitions this member leads given their backups in sync at once (nothing to copy). */
    backupsCreatedInSync: 0,
    /** Master only: filling backups that held nothing yet moved to another member, to balance the fills. */
    fillsMoved: 0,
    /** Master only: partitions whose every replica died (their data is gone; they start empty). */
    partitionsLost: 0,
    /** Master only: passes that did work (repair, migrations, fills). */
    masterPasses: 0,
    /** Master only: passes skipped, their inputs unchanged since a pass that changed nothing. */
    masterPassesSkipped: 0,
  };

  constructor(opts: PartitionServiceOptions) {
    this.self = opts.self;
    this.#view = opts.view;
    this.#transport = opts.transport;
    this.#clock = opts.clock;
    this.#log = opts.log;
    this.#leaving = new LeavingMembers(opts.view, opts.clock, (ids) => this.#releaseLeaving(ids));
    const c = opts.config;
    if (!Number.isInteger(c.backupCount) || c.backupCount < 0 || c.backupCount > 6) {
      throw new RangeError(`Cannot use backupCount ${c.backupCount}: must be 0–6`);
    }
    if (!Number.isInteger(c.asyncBackupCount) || c.asyncBackupCount < 0 || c.backupCount + c.asyncBackupCount > 6) {
      throw new RangeError(`Cannot use asyncBackupCount ${c.asyncBackupCount}: backups must total at most 6`);
    }
    this.config = {
      tickMs: 100,
      heartbeatMs: 1000,
      collectTimeoutMs: 2000,
      migrationTimeoutMs: 15_000,
      maxParallelMigrations: 16,
      ...c,
    };
    this.#table = emptyTable(c.partitionCount);
    const r = opts.router;
    // Every message may give the tick work: it wakes it (../core/tick_pace.ts).
    const woken = <A extends unknown[]>(fn: (...a: A) => void) => (...a: A) =>
      this.#stopped || (this.#pace.wake(), fn(...a));
    r.on(PartitionTablePushMsg, woken((from, msg) => this.#onPush(from, msg)));
    r.on(PartitionTableVersionMsg, woken((from, msg) => this.#onVersion(from, msg)));
    r.on(PartitionTableFetchMsg, woken((from, msg) => this.#onFetch(from, msg)));
    r.on(PartitionTableReportMsg, woken((from, msg) => this.#onReport(from, msg)));
    r.on(PartitionMigrationStartMsg, woken((from, msg) => this.#onMigrationStart(from, msg)));
    r.on(PartitionMigrationReadyMsg, woken((_from, msg) => this.#onReady(msg)));
    r.on(PartitionMemberLeavingMsg, woken((from) => this.#onMemberLeaving(from)));
    r.on(PartitionLeaveNowhereMsg, woken((from) => this.#onLeaveNowhere(from)));
    r.on(PartitionBackupsSyncedMsg, woken((from, msg) => this.#onBackupsSynced(from, msg.items)));
    this.#unsubscribe = this.#view.subscribe((e) => {
      if (e.type === "masterChanged" || e.type === "memberRemoved" || e.type === "memberAdded") {
        this.#pace?.wake();
        this.#onViewChange();
      }
    });
    // Reports of a few milliseconds go to the master in one message (backups_synced.ts).
    this.#synced = new SyncedReports(this.#clock, (items) => {
      const master = this.#view.master();
      if (!master || this.#stopped) return;
      this.#send(master, { t: Kind.PartitionBackupsSynced, items }, () => this.#onBackupsSynced(this.self, items));
    });
    this.#pace = new TickPace(this.#clock, this.config.tickMs, () => this.#tick(), () => this.#sleepUntil());
    this.#onViewChange();
  }

  /** This member's current table. */
  get table(): PartitionTable {
    return this.#table;
  }

  /** The master that published the current table (undefined before the first). */
  get tableSource(): NodeId | undefined {
    return this.#source;
  }

  /** Replicas wanted per partition: 1 + backups, capped by the number of data members. */
  wantedReplicas(): number {
    const data = this.#view.members().filter((m) => !m.lite).length;
    return Math.min(1 + this.config.backupCount + this.config.asyncBackupCount, Math.max(1, data));
  }

  primaryOf(p: number): NodeId | undefined {
    return this.#table.replicas[p]?.[0];
  }

  epochOf(p: number): number {
    return this.#table.epochs[p] ?? 0;
  }

  /** The partition layer's part of the summary; the map layer adds `dataLoss`. */
  summary(): PartitionTableSummary {
    const s = tableSummary(this.#table, this.wantedReplicas(), new Set(this.#view.members().map((m) => m.id)));
    return { ...s, lost: this.stats.partitionsLost };
  }

  info(): PartitionReplicaInfo[] {
    return tableInfo(this.#table);
  }

  /** Whether this member is master and done collecting, i.e. publishing tables. */
  get masterActive(): boolean {
    return this.#masterActive && this.#collect === null;
  }

  /**
   * Master only: the table is where the master's planning wants it (every row equals the
   * ideal assignment for the live data members, no migration in flight, no backup filling).
   * Between two planning steps a table can hold no migration and still move on.
   */
  get balanced(): boolean {
    if (!this.masterActive || this.#pending || this.#inflight.size > 0 || !this.#ideal) return false;
    const t = this.#table;
    if (t.migrations.size > 0 || (t.filling?.size ?? 0) > 0) return false;
    return this.#ideal.every((row, p) => sameRow(row, t.replicas[p]));
  }

  onTableChange(fn: TableListener): () => void {
    this.#tableListeners.push(fn);
    return () => void (this.#tableListeners = this.#tableListeners.filter((f) => f !== fn));
  }

  /** The map layer (on the primary) brings the row's members up to date when this fires. */
  onMigrationStart(fn: MigrationStartListener): void {
    this.#migrationListeners.push(fn);
  }

  /**
   * The map layer says which partitions this member leads hold nothing at all (`epoch`: the
   * ownership epoch it serves them under). As master, a backup created in place for such a
   * partition is in sync in the same table update (it is not listed as filling): there is
   * nothing to copy, and a write arriving meanwhile waits until the primary confirmed it.
   */
  setEmptyCheck(fn: (p: number, epoch: number) => boolean): void {
    this.#emptyPrimary = fn;
  }

  /**
   * The map layer says whether a backup it fills (of a partition this member leads) holds nothing
   * yet and, if so, leaves it alone until the next table: as master, the fill may move.
   */
  setUntouchedFillCheck(fn: (p: number, epoch: number, member: NodeId) => boolean): void {
    this.#untouchedFill = fn;
  }

  /** Split-brain protection: whether this member holds its quorum (tables published without it are marked `nq`). */
  setQuorumCheck(fn: () => boolean): void {
    this.#hasQuorum = fn;
  }

  /** Called by the primary's map layer once every member of `row` is up to date (for migration `mid`). */
  reportMigrationReady(p: number, epoch: number, row: readonly NodeId[], mid?: number): void {
    const master = this.#view.master();
    if (!master) return;
    const msg: PartitionMigrationReady = { t: Kind.PartitionMigrationReady, p, epoch, row: [...row] };
    if (mid !== undefined) msg.mid = mid;
    this.#send(master, msg, () => this.#onReady(msg));
  }

  /** Asks the master for its table (throttled); used when a peer shows a newer epoch. */
  requestTable(): void {
    const master = this.#view.master();
    const now = this.#clock.now();
    if (!master || master === this.self || now - this.#lastFetchAt < 200) return;
    this.#lastFetchAt = now;
    this.#transport.send(master, { t: Kind.PartitionTableFetch, collect: false });
  }

  /**
   * Graceful leave: asks the master to move every replica off this member and resolves once
   * the table holds none here (or after `timeoutMs`).
   */
  leave(timeoutMs = 30_000): Promise<void> {
    this.#leaveRequested = true;
    this.#pace.wake();
    if (this.#holdsNothing()) return Promise.resolve();
    return new Promise((resolve) => {
      const t = this.#clock.setTimer(timeoutMs, () => done());
      const done = () => {
        t.cancel();
        resolve();
      };
      this.#leaveWaiters.push(done);
      this.#sendLeaving();
    });
  }

  stop(): void {
    this.#stopped = true;
    this.#leaving.stop();
    this.#pace.stop();
    this.#publishTimer?.cancel();
    this.#synced.stop();
    this.#unsubscribe();
    for (const w of this.#leaveWaiters.splice(0)) w();
  }

  // ---- member side ------------------------------------------------------------------

  #apply(next: PartitionTable, source: NodeId): void {
    if (!isNewer(next, this.#table)) return;
    const prev = this.#table;
    assertTableFollows(prev, next);
    this.#table = next;
    this.#source = source;
    this.stats.pushesApplied++;
    const promoted = primariesChanged(prev, next);
    if (promoted > 0 && prev.version > 0) {
      this.#log.info("partition.table.primaries_changed", { version: next.version, partitions: promoted });
    } else this.#log.debug("partition.table.applied", { version: next.version, migrating: next.migrations.size });
    for (const fn of this.#tableListeners) fn(next, prev);
    if (this.#leaveRequested && this.#holdsNothing()) { for (const w of this.#leaveWaiters.splice(0)) w(); }
  }

  #holdsNothing(): boolean {
    const others = this.#view.members().some((m) => !m.lite && m.id !== this.self);
    if (!others) return true;
    return this.#table.replicas.every((r) => !r.includes(this.self));
  }

  #sendLeaving(): void {
    const master = this.#view.master();
    if (!master) return;
    this.#send(master, { t: Kind.PartitionMemberLeaving }, () => this.#onMemberLeaving(this.self));
  }

  #onPush(from: NodeId, msg: WireTable): void {
    if (from !== this.#view.master() || from === this.self) {
      this.stats.pushesIgnored++;
      return;
    }
    const t = tableFromWire(msg, this.config.partitionCount);
    if (!t) return void this.#log.warn("partition.table.invalid", { from });
    this.#apply(t, from);
  }

  #onVersion(from: NodeId, theirs: { term: number; version: number }): void {
    if (from !== this.#view.master() || from === this.self) return void this.stats.pushesIgnored++;
    if (isNewer(theirs, this.#table)) {
      this.#lastFetchAt = -Infinity;
      this.requestTable();
    } else if (isNewer(this.#table, theirs)) {
      // The master is behind this member: another member acted as master for a while
      // (membership disagreed). Report the newer table so the master can merge it.
      this.#transport.send(from, { t: Kind.PartitionTableReport, ...tableToWire(this.#table) });
    }
  }

  #onFetch(from: NodeId, msg: PartitionTableFetch): void {
    if (msg.collect) {
      this.#transport.send(from, { t: Kind.PartitionTableReport, ...tableToWire(this.#table) });
    } else if (this.masterActive) {
      this.#transport.send(from, { t: Kind.PartitionTablePush, ...tableToWire(this.#table) });
    }
  }

  #onMigrationStart(from: NodeId, msg: PartitionMigrationStart): void {
    if (from !== this.#view.master()) return void this.stats.pushesIgnored++;
    const { p, epoch, row, mid } = msg;
    if (p >= this.config.partitionCount) return;
    for (const fn of this.#migrationListeners) fn(p, epoch, row, mid);
  }

  #onMemberLeaving(from: NodeId): void {
    if (this.#view.isMaster() && this.#view.member(from)) {
      this.#leaving.add(from);
      this.#ideal = null;
    }
  }

  /** Every data member is leaving and none was admitted meanwhile (leaving_members.ts): let them go. */
  #releaseLeaving(ids: ReadonlySet<NodeId>): void {
    for (const id of ids) this.#send(id, { t: Kind.PartitionLeaveNowhere }, () => this.#onLeaveNowhere(this.self));
  }

  /** The master says no data member stays: a graceful leave has nowhere to move its replicas. */
  #onLeaveNowhere(from: NodeId): void {
    if (from !== this.#view.master() || !this.#leaveRequested || this.#leaveWaiters.length === 0) return;
    this.#log.warn("partition.leave.nowhere", { reason: "every data member is leaving: no one takes the data" });
    for (const w of this.#leaveWaiters.splice(0)) w();
  }

  /** Sends `msg` to `to`; to this member itself, runs `local` after the current step instead. */
  #send(to: NodeId, msg: Message, local: () => void): void {
    if (to === this.self) {
      // Local delivery after the current step, as if it had crossed the network.
      this.#clock.setTimer(0, () => {
        if (!this.#stopped) local();
      });
    } else {
      this.#transport.send(to, msg);
    }
  }

  // ---- master side ------------------------------------------------------------------

  #onViewChange(): void {
    if (this.#stopped) return;
    const isMaster = this.#view.isMaster();
    if (isMaster && !this.#masterActive) {
      this.#masterActive = true;
      this.#inflight.clear();
      this.#held.clear();
      this.#ideal = null;
      this.#startCollect();
    } else if (!isMaster && this.#masterActive) {
      this.#masterActive = false;
      this.#collect = null;
      this.#inflight.clear();
      this.#held.clear();
      this.#leaving.clear();
    }
    // A member that just learned its master (a joiner) asks for the table at once: the pushes
    // the master sent before this member knew it were ignored, and the heartbeat is a second away.
    const master = this.#view.master();
    if (!isMaster && master !== undefined && master !== this.#knownMaster) {
      this.#lastFetchAt = -Infinity;
      this.requestTable();
    }
    this.#knownMaster = master;
    if (this.#leaveRequested) this.#sendLeaving();
    this.#leaving.prune();
    if (this.#leaveRequested && this.#holdsNothing()) { for (const w of this.#leaveWaiters.splice(0)) w(); }
    if (this.masterActive) this.#masterTick();
  }

  #startCollect(): void {
    const others = this.#view.members().filter((m) => m.id !== this.self).map((m) => m.id);
    this.#collect = new TableCollect(
      others,
      this.#table,
      this.#clock.now(),
      this.config.collectTimeoutMs,
      (id) => this.#transport.send(id, { t: Kind.PartitionTableFetch, collect: true }),
    );
    this.#log.info("partition.master.collect", { members: others.length, version: this.#table.version });
    this.#maybeFinishCollect();
  }

  #onReport(from: NodeId, msg: WireTable): void {
    const c = this.#collect;
    if (c && !c.awaits(from)) return;
    let t = tableFromWire(msg, this.config.partitionCount);
    if (t && implausibleTable(t, this.#table, this.#view.masterEpoch)) {
      this.stats.reportsRejected++;
      this.#log.warn("partition.table.implausible", { from, term: t.term, version: t.version });
      t = null;
    }
    if (!c) return t ? this.#onNewerTable(t) : undefined;
    c.answered(from, t);
    this.#maybeFinishCollect();
  }

  #maybeFinishCollect(): void {
    const c = this.#collect;
    if (!c || !c.done(this.#clock.now(), (id) => this.#view.member(id) !== undefined)) return;
    this.#collect = null;
    const best = isNewer(this.#table, c.best) ? this.#table : c.best;
    // Continue from the newest table under a term of our own, above every term seen; in-flight
    // migrations of the old master are dropped.
    const term = this.#newTerm(Math.max(termRound(best.term), termRound(this.#table.term)));
    this.#reignFrom = best.term;
    const base: PartitionTable = { ...best, migrations: new Map() };
    this.#log.info("partition.master.ready", { version: best.version, term, missing: c.missing });
    this.#stage(nextTable(base, base.replicas, new Map(), Math.max(best.version, this.#table.version) + 1, term));
    this.#masterTick();
  }

  /**
   * A term for a new reign of this master: a round above `seenRound` and at least the
   * membership's master epoch, with this member's admission number as the low part, so no
   * concurrent master (a split brain) can hold the same term.
   */
  #newTerm(seenRound: number): number {
    const joinedAt = this.#view.member(this.self)?.joinedAt ?? 0;
    return reignTerm(Math.max(seenRound + 1, this.#view.masterEpoch), joinedAt);
  }

  /**
   * An active master learns that a member holds a table of another reign that is not older
   * than the one this reign started from: another member published tables while acting as
   * master (a split brain, or membership disagreeing for a while). Membership decided that
   * this member is master, so its table stays; it moves to a new term above both reigns and
   * gives every partition a new epoch of that term, so every primary of its table outranks
   * any the other reign appointed, and members holding the other table accept this one.
   * Replicas re-confirm by digest; what only the other side wrote is brought back by the
   * split-brain merge of the map layer, not by the table.
   */
  #onNewerTable(theirs: PartitionTable): void {
    if (!this.masterActive) return;
    const mine = this.#current();
    // Our own reign's tables, and tables this reign started from or superseded, change nothing.
    if (theirs.term === mine.term || theirs.term <= this.#reignFrom) return;
    this.#inflight.clear();
    this.#held.clear();
    const term = this.#newTerm(Math.max(termRound(theirs.term), termRound(mine.term)));
    this.#reignFrom = Math.max(this.#reignFrom, theirs.term);
    const next = rebaseTable(mine, term, Math.max(theirs.version, mine.version) + 1);
    this.#log.warn("partition.master.other_reign", {
      mine: `${mine.term}/${mine.version}`,
      theirs: `${theirs.term}/${theirs.version}`,
      term,
    });
    this.#stage(next);
    this.#masterTick();
  }

  /** The table the master is building (staged changes not yet published). */
  #current(): PartitionTable {
    return this.#pending ?? this.#table;
  }

  /** Stages a new master table; published after the current step, coalescing changes. */
  #stage(t: PartitionTable): void {
    assertTableFollows(this.#current(), t);
    this.#pending = t;
    if (this.#publishTimer) return;
    this.#publishTimer = this.#clock.setTimer(1, () => {
      this.#publishTimer = null;
      const staged = this.#pending;
      this.#pending = null;
      if (!staged || !this.masterActive) return;
      // Staged tables are built fresh (nextTable, rebaseTable), never marked: marked here alone.
      const t2 = this.#hasQuorum && !this.#hasQuorum() ? { ...staged, nq: true } : staged;
      // Pushed before it is applied here: the primaries' first messages under it (checks of
      // new backups) then reach each member after the table that makes them valid.
      this.#broadcast({ t: Kind.PartitionTablePush, ...tableToWire(t2) });
      this.#apply(t2, this.self);
      this.stats.tablesPublished++;
    });
  }

  #broadcast(msg: Message): void {
    for (const m of this.#view.members()) if (m.id !== this.self) this.#transport.send(m.id, msg);
  }

  /** With nothing under way, the master's tick sleeps until its next heartbeat; the others' for one heartbeatMs. */
  #sleepUntil(): number {
    return (this.masterActive ? this.#lastHeartbeatAt : this.#clock.now()) + this.config.heartbeatMs;
  }

  /** @returns whether work is under way: a collect, a leave, a migration, a table change */
  #tick(): boolean {
    const now = this.#clock.now();
    if (this.#collect) {
      this.#collect.askAgain(now);
      this.#maybeFinishCollect();
      return true;
    }
    if (this.#leaveRequested && !this.#holdsNothing() && now - this.#lastFetchAt >= 1000) {
      this.#lastFetchAt = now;
      this.#sendLeaving();
    }
    if (!this.masterActive) return this.#leaveRequested;
    this.#masterTick();
    if (now - this.#lastHeartbeatAt >= this.config.heartbeatMs) {
      this.#lastHeartbeatAt = now;
      this.#broadcast({ t: Kind.PartitionTableVersion, version: this.#table.version, term: this.#table.term });
    }
    return this.#leaveRequested || this.#inflight.size > 0 || this.#quiet === null || this.#pending !== null;
  }

  /** Repair, abandon stale migrations, plan new ones. */
  #masterTick(): void {
    if (!this.masterActive) return;
    // (Asked on every pass, so that the quorum is seen held as soon as it is.) The reports held
    // are checked again against the migrations in flight now (one abandoned meanwhile commits nothing).
    if (!this.#held.lapsed()) { for (const msg of this.#held.release()) this.#onReady(msg); }
    const now = this.#clock.now();
    let t = this.#current();
    // A pure function of the table, (leaving) members and migrations in flight: with none in
    // flight and the inputs of a pass that changed nothing, it would change nothing again.
    const inputs = this.#inputsKey();
    if (this.#inflight.size === 0 && this.#quiet?.table === t && this.#quiet.key === inputs && !t.nq) {
      this.stats.masterPassesSkipped++;
      return;
    }
    this.#quiet = null;
    this.stats.masterPasses++;
    const live = new Set(this.#view.members().map((m) => m.id));
    let replicas = t.replicas as NodeId[][];
    let changed = false;
    const filling = new Map(t.filling ?? []);
    // 1. Repair: drop dead members; the first live backup in sync becomes primary (epoch + 1).
    if (replicas.some((r) => r.some((m) => !live.has(m)))) {
      // A row left with only backups still filling has lost what they had not received yet.
      const emptied = replicas.filter((r, p) =>
        r.length > 0 && r.every((m) =>
          !live.has(m) || (filling.get(p)?.includes(m) ?? false)
        )
      ).length;
      if (emptied > 0) {
        this.stats.partitionsLost += emptied;
        this.#log.warn("partition.repair.all_replicas_gone", { partitions: emptied, live: [...live] });
      }
      replicas = repairReplicas(replicas, live, filling);
      changed = true;
    }
    // 2. Abandon migrations whose members died, whose epoch moved or that took too long.
    const migrations = new Map(t.migrations);
    const stale = this.#inflight.abandon((p, m) =>
      m.row.some((id) => !live.has(id)) || t.epochs[p] !== m.epoch || replicas[p][0] !== t.replicas[p][0] ||
      now - m.startedAt > this.config.migrationTimeoutMs
    );
    for (const p of stale) (migrations.delete(p), this.stats.migrationsAbandoned++, changed = true);
    // 3. Plan towards the ideal assignment.
    const data = this.#view.members().filter((m) => !m.lite && !this.#leaving.has(m.id)).map((m) => m.id);
    if (data.length > 0) {
      const replicaCount = 1 + this.config.backupCount + this.config.asyncBackupCount;
      // The ideal is a pure function of the rows and the data members: computed again only when
      // one of them changed (table versions move on every report of a backup in sync, rows do not).
      const key = `${data.join(",")}|${replicas.map((r) => r.join(",")).join(";")}`;
      if (key !== this.#idealKey || !this.#ideal) {
        this.#idealKey = key;
        this.#ideal = assignPartitions({
          previous: replicas,
          members: data,
          partitionCount: this.config.partitionCount,
          replicaCount,
        });
      }
      const ideal = this.#ideal;
      // Backups a row lacks are created in place, in this same table update (invariant 10): the
      // primary counts their acks from the start while it fills them. A migration under way on
      // such a row is dropped and planned again from the filled row.
      const R = Math.min(replicaCount, data.length);
      for (const p of this.#inflight.abandon((p) => replicas[p].length > 0 && replicas[p].length < R)) {
        migrations.delete(p);
        this.stats.migrationsAbandoned++;
      }
      const fill = fillMissingReplicas(replicas, ideal, data, replicaCount);
      if (fill.filled.length > 0) {
        for (const p of fill.filled) {
          const added = fill.rows[p].slice(replicas[p].length);
          // An empty partition this member leads (same primary and epoch as its map layer
          // serves) has nothing to copy: its new backups are in sync from this update on.
          const mine = replicas[p][0] === this.self && t.replicas[p][0] === this.self;
          if (mine && this.#emptyPrimary?.(p, t.epochs[p])) {
            this.stats.backupsCreatedInSync++;
            continue;
          }
          filling.set(p, [...(filling.get(p) ?? []), ...added]);
        }
        replicas = fill.rows as NodeId[][];
        changed = true;
        this.stats.backupsCreated += fill.filled.length;
        this.#log.debug("partition.backups.created", { partitions: fill.filled.length });
      }
      // Once per change of the data members, fills of partitions this master leads that hold
      // nothing yet (its map layer says so, and holds them until this table applies) are spread
      // over the data members (spreadFills): no acknowledged write counted one that moves.
      const check = this.#untouchedFill, dataKey = data.join(",");
      if (check && filling.size > 0 && dataKey !== this.#fillsBalancedFor) {
        this.#fillsBalancedFor = dataKey;
        const mine = (p: number) => replicas[p][0] === this.self && t.replicas[p][0] === this.self;
        const spread = spreadFills(replicas, filling, ideal, data, (p, x) => mine(p) && check(p, t.epochs[p], x));
        for (const [p, ms] of spread.filling) filling.set(p, ms);
        this.stats.fillsMoved += spread.moved;
        if (spread.rows) [replicas, changed] = [spread.rows, true];
      }
      for (let p = 0; p < replicas.length; p++) {
        if (this.#inflight.has(p)) continue;
        const cur = replicas[p];
        const want = ideal[p];
        if (sameRow(cur, want)) continue;
        const removalOnly = cur.length > 0 && want[0] === cur[0] && sameRow(cur.filter((m) => want.includes(m)), want);
        if (cur.length === 0 || removalOnly) {
          // Nothing to copy: a fresh partition, or replicas that are no longer wanted.
          replicas = replicas === t.replicas ? replicas.map((r) => [...r]) : replicas;
          replicas[p] = [...want];
          changed = true;
          continue;
        }
        if (this.#inflight.size >= this.config.maxParallelMigrations) continue;
        const { id } = this.#inflight.start(p, want, t.epochs[p], t.term, now);
        migrations.set(p, [...want]);
        this.stats.migrationsStarted++;
        changed = true;
        const start = { t: Kind.PartitionMigrationStart, p, epoch: t.epochs[p], row: [...want], mid: id };
        this.#send(cur[0], start, () => this.#onMigrationStart(this.self, start));
      }
    }
    // 4. Re-send starts that may have been lost.
    for (const [p, m] of this.#inflight.dueForResend(now, 1000)) {
      const start = { t: Kind.PartitionMigrationStart, p, epoch: m.epoch, row: m.row, mid: m.id };
      this.#send(replicas[p][0], start, () => this.#onMigrationStart(this.self, start));
    }
    // A table published without the quorum is published again, unmarked, once the quorum is
    // back: a later collect passes the marked one over (table_collect.ts).
    if (t.nq && this.#hasQuorum?.()) changed = true;
    if (changed) {
      t = withFilling(nextTable(t, replicas, migrations), filling);
      this.#stage(t);
    } else if (this.#inflight.size === 0) this.#quiet = { table: t, key: inputs };
  }

  /** The members (with their kind) and the leaving members, as #masterTick reads them. */
  #inputsKey(): string {
    let key = "";
    for (const m of this.#view.members()) key += (m.lite ? "~" : "") + m.id + ",";
    for (const id of this.#leaving.ids) key += "|" + id;
    return key;
  }

  /**
   * The primary `from` reports backups created in place as in sync: they count as replicas from
   * now on. A message carries the reports of many partitions (a forming cluster confirms
   * hundreds at once); they make one table change, not one each.
   */
  #onBackupsSynced(from: NodeId, items: readonly SyncedItem[]): void {
    if (!this.masterActive) return;
    const t = this.#current();
    const after = applySyncedReports(t, from, items);
    if (!after) return;
    this.stats.backupsSynced += after.synced;
    this.#stage(withFilling(nextTable(t, t.replicas, t.migrations), after.filling));
  }

  /**
   * Called by the primary's map layer: the filling backups `members` of `p` are in sync
   * (resend while the table still lists them; the master ignores stale or repeated reports).
   */
  reportBackupsSynced(p: number, epoch: number, members: readonly NodeId[]): void {
    this.#synced.report(p, epoch, members);
  }

  #onReady(msg: PartitionMigrationReady): void {
    if (!this.masterActive) return;
    const m = this.#inflight.matching(msg);
    if (!m) return;
    if (this.#held.lapsed()) {
      // Published now, the commit would go out in a marked table (see commit_hold.ts).
      if (this.#held.hold(msg)) this.stats.commitsDeferred++;
      return;
    }
    this.#held.forget(msg.p);
    const live = new Set(this.#view.members().map((x) => x.id));
    this.#inflight.delete(msg.p);
    const t = this.#current();
    const migrations = new Map(t.migrations);
    migrations.delete(msg.p);
    if (m.row.some((id) => !live.has(id)) || t.epochs[msg.p] !== m.epoch) {
      this.stats.migrationsAbandoned++;
      this.#stage(nextTable(t, t.replicas, migrations));
      return;
    }
    const replicas = t.replicas.map((r) => [...r]);
    replicas[msg.p] = [...m.row];
    this.stats.migrationsCommitted++;
    // Ready means every member of the row holds the partition and acked every write.
    const filling = new Map(t.filling ?? []);
    filling.delete(msg.p);
    this.#stage(withFilling(nextTable(t, replicas, migrations), filling));
  }
}
