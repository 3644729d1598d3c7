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
 *   (commit.ts `commitSeq`), so nothing is acknowledged past what it acked. Its sequence never goes
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
import type { Invoker } from "../invoke/invoker.ts";
import type { PartitionService } from "../partition/partition_service.ts";
import { type PartitionTable, sameRow } from "../partition/partition_table.ts";
import type { NodeId } from "../transport/transport.ts";
import { Kind } from "../wire/kinds.ts";
import { BackupRole, pullItem } from "./backup.ts";
import type { ProcessorRegistry } from "./entry_processor.ts";
import { isInternalMap } from "./map_config.ts";
import { CatchUp } from "./catch_up.ts";
import type { IMap } from "./imap.ts";
import {
  MapContext,
  type MapCounters,
  type MapServiceConfig,
  mapServiceConfig,
  primaryQuiet,
  type PrimaryState,
  push,
  type Role,
} from "./map_context.ts";
import { EntryListeners } from "./entry_listeners.ts";
import { MapConfigs } from "./map_config.ts";
import { MapHousekeeping } from "./map_housekeeping.ts";
import { MapProxy } from "./map_proxy.ts";
import type { CustomMergePolicy } from "./merge_policy.ts";
import type { MergeEntry } from "./split_merge.ts";
import { MapStats } from "./map_stats.ts";
import {
  type CheckItem,
  MapBackupAckMsg,
  MapBackupOpsMsg,
  MapSnapshotAckMsg,
  type MapSnapshotChunk,
  MapSnapshotChunkMsg,
  MapSnapshotPackedMsg,
  MapSyncCheckMsg,
  MapSyncPullMsg,
  type PullItem,
} from "./messages.ts";
import type { PartitionData } from "./partition_data.ts";
import { PrimaryRole } from "./primary.ts";
import type { MapRecord } from "./record_store.ts";
import { SnapshotTransfers } from "./snapshot_transfer.ts";
import { TickPace } from "../core/tick_pace.ts";
import { bytesEqual } from "./record_store.ts";
import type { MapLocalStats } from "./summary.ts";

export type { MapServiceConfig } from "./map_context.ts";

export interface MapServiceOptions extends ServiceDeps {
  partitions: PartitionService;
  invoker: Invoker;
  config?: MapServiceConfig;
  /** Per-map settings (map_config.ts); the same on every member. @default none */
  maps?: MapConfigs;
  /** Entry processors run here as primary (entry_processor.ts). */
  processors?: ProcessorRegistry;
  /** The custom split-brain merge policy, when `mergePolicy` is one (applied to the MergeEntries this member serves). */
  customMergePolicy?: CustomMergePolicy;
  /** Whether the wait of a fenced primary is over (see MapContextDeps.fenceOver). @default always */
  fenceOver?: (fence: { term: number; version: number }) => boolean;
  /** See MapContextDeps.protectedMap. @default never */
  protectedMap?: (m: string) => boolean;
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
  /** Primary only: whether it serves nothing because it hands the partition over (a migration). */
  handingOff?: boolean;
  /** The copy's level (which maps it holds; replication_levels.ts). */
  level: number;
  /**
   * Primary only, with per-map backup counts: the digest a copy at each level 0–6 holds
   * (compare a backup's `digest` with `digests[its level]`).
   */
  digests?: Array<[number, number]>;
  /** Primary only: followers and whether they are confirmed and caught up. */
  followers?: Array<{ id: NodeId; role: Role; confirmed: boolean; acked: number }>;
}

/**
 * One member's map service: the shell that owns the timer and the message handlers, applies
 * table changes (who is primary, backup or migration target of what) and hands each message
 * to the part that handles it: {@link PrimaryRole} (primary.ts), {@link BackupRole}
 * (backup.ts), {@link CatchUp} (catch_up.ts) and {@link SnapshotTransfers}
 * (snapshot_transfer.ts).
 */
/** Map names whose proxy {@link MapService.getMap} keeps (one per name a caller used). */
const MAX_CACHED_PROXIES = 10_000;

export class MapService {
  readonly self: NodeId;
  readonly config: Required<MapServiceConfig>;
  readonly stats = new MapStats();
  readonly counters: MapCounters;
  #ctx: MapContext;
  #snapshots: SnapshotTransfers;
  #primary: PrimaryRole;
  #backup: BackupRole;
  #catchUp: CatchUp;
  #proxies = new Map<string, MapProxy<unknown, unknown>>();
  #quietProxies = new Map<string, MapProxy<unknown, unknown>>();
  #pace: TickPace | null = null;
  #stopped = false;
  /** When the next anti-entropy round is due (see {@link PrimaryRole.tick}). */
  #antiEntropyAt = -Infinity;
  #unsubscribeTable: () => void;
  #unsubscribeView: () => void;
  /** A table change is being applied (catch-ups it ends wait for its end to settle the limits). */
  #inTable = false;
  /** Per-map settings. */
  readonly mapConfigs: MapConfigs;
  /** Expiry, touches and eviction on this member's primaries. */
  readonly housekeeping: MapHousekeeping;
  /** Entry listeners registered on this member. */
  readonly listeners: EntryListeners;

  constructor(opts: MapServiceOptions) {
    this.self = opts.self;
    this.config = mapServiceConfig(opts.config);
    const ctx = this.#ctx = new MapContext({ ...opts, config: this.config });
    this.counters = ctx.counters;
    this.mapConfigs = ctx.mapConfigs;
    this.#snapshots = new SnapshotTransfers(ctx);
    this.#primary = new PrimaryRole(ctx, this.#snapshots);
    this.housekeeping = ctx.housekeeping = new MapHousekeeping(
      {
        serving: () => this.#serving(),
        held: () => this.#held(),
        writeLocal: (p, effects) => this.#primary.writeLocal(p, effects),
      },
      ctx.mapConfigs,
      ctx.rng,
      this.config.housekeeping,
    );
    this.listeners = new EntryListeners(
      ctx.invoker,
      ctx.partitions.config.partitionCount,
      ctx.clock,
      () => [...ctx.primaries.keys()],
      this.config.listeners,
    );
    this.#catchUp = new CatchUp(ctx, this.#snapshots, (prim) => {
      this.#primary.progress(prim);
      // A catch-up that ended on a message or a tick: the member serves more now (within a
      // table change, the change's end does this once).
      if (!this.#inTable) this.housekeeping.settle(Math.floor(ctx.clock.now()));
    });
    this.#backup = new BackupRole(ctx, this.#snapshots, this.#catchUp);
    const r = opts.router;
    r.on(MapBackupOpsMsg, (from, msg) => {
      this.#wake();
      if (!this.#stopped) this.#backup.onBackupOps(from, msg);
    });
    r.on(MapBackupAckMsg, (from, msg) => {
      this.#wake();
      if (this.#stopped) return;
      for (const it of msg.items) {
        if (it.sf !== undefined) this.#primary.onStreamAck(from, it.p, it.e, it.s, it.lv ?? 0, it.sf);
        else this.#primary.onAck(from, it.p, it.e, it.s, it.lv ?? 0);
      }
    });
    r.on(MapSyncCheckMsg, (from, msg) => {
      this.#wake();
      if (!this.#stopped) this.#backup.onChecks(from, msg.items);
    });
    r.on(MapSyncPullMsg, (from, msg) => {
      this.#wake();
      if (this.#stopped) return;
      for (const it of msg.items) {
        if (it.up) this.#catchUp.onCopyRequest(from, it);
        else if (it.q) this.#catchUp.onHistoryReport(from, it);
        else this.#primary.onPull(from, it);
      }
    });
    const onChunk = (from: NodeId, msg: MapSnapshotChunk) => {
      this.#wake();
      if (msg.up) this.#catchUp.onCopyChunk(from, msg);
      else this.#backup.onChunk(from, msg);
    };
    r.on(MapSnapshotChunkMsg, (from, msg) => {
      if (!this.#stopped) onChunk(from, msg);
    });
    r.on(MapSnapshotPackedMsg, (from, msg) => {
      if (this.#stopped) return;
      const c = this.#snapshots.unpack(from, msg);
      if (c) onChunk(from, c);
    });
    r.on(MapSnapshotAckMsg, (from, msg) => {
      this.#wake();
      if (!this.#stopped) this.#snapshots.onAck(from, msg);
    });
    ctx.invoker.serve((from, req, reply) => {
      this.#wake();
      if (!this.#stopped) this.#primary.serve(from, req, reply);
    });
    this.#unsubscribeTable = ctx.partitions.onTableChange((next, prev) => this.#onTable(next, prev));
    // A member that left the view (its lease ended) retries no call: drop its dedupe records
    // (a late retry of one is refused by the raised watermark; dedupe_records.ts).
    this.#unsubscribeView = ctx.view.subscribe((e) => {
      this.#wake();
      if (e.type === "memberRemoved") { for (const d of ctx.data.values()) d.dedupe.departed(e.member.id); }
    });
    ctx.partitions.onMigrationStart((p, epoch, row, mid) => {
      this.#wake();
      this.#primary.onMigrationStart(p, epoch, row, mid);
    });
    ctx.partitions.setEmptyCheck((p, epoch) => this.#primary.holdsNothing(p, epoch));
    ctx.partitions.setUntouchedFillCheck((p, epoch, m) => this.#primary.releaseUntouchedFiller(p, epoch, m));
    this.#onTable(ctx.partitions.table);
    this.#pace = new TickPace(ctx.clock, this.config.tickMs, () => this.#tick(), () => this.#antiEntropyAt);
  }

  /** The IMap proxy for `name` (created on first use). */
  getMap<K = unknown, V = unknown>(name: string): IMap<K, V> {
    return this.#proxy<K, V>(name, this.#proxies, this.stats);
  }

  /**
   * The IMap proxy for `name` whose calls are not recorded as map operations of this member:
   * for its own bookkeeping (the job engine's maps), which runs on timers and on every scrape
   * of `/metrics`, so counting it moved `shoal_map_operations_total` with nobody calling.
   */
  quietMap<K = unknown, V = unknown>(name: string): IMap<K, V> {
    return this.#proxy<K, V>(name, this.#quietProxies, null);
  }

  #proxy<K, V>(name: string, cache: Map<string, MapProxy<unknown, unknown>>, stats: MapStats | null): IMap<K, V> {
    if (typeof name !== "string" || name.length === 0 || name.length > 256) {
      throw new RangeError(`Cannot use map name ${JSON.stringify(name)}: 1–256 characters`);
    }
    if (isInternalMap(name)) throw new RangeError(`Cannot use map name ${JSON.stringify(name)}: reserved`);
    let m = cache.get(name);
    if (!m) {
      const ctx = this.#ctx;
      ctx.mapConfigs.resolve(name); // throws on an ambiguous name
      m = new MapProxy(
        name,
        ctx.invoker,
        ctx.partitions.config.partitionCount,
        ctx.clock,
        stats,
        this.listeners,
      );
      // Proxies hold no state of their own: past MAX_CACHED_PROXIES names a fresh one serves each call.
      if (cache.size < MAX_CACHED_PROXIES) cache.set(name, m);
    }
    return m as unknown as IMap<K, V>;
  }

  /** Map names and entry counts over the partitions this member is primary of. */
  localMaps(): Array<{ name: string; size: number }> {
    const sizes = new Map<string, number>();
    for (const p of this.#ctx.primaries.keys()) {
      const d = this.#ctx.data.get(p);
      if (!d) continue;
      for (const [name, s] of d.maps) if (!isInternalMap(name)) sizes.set(name, (sizes.get(name) ?? 0) + s.size);
    }
    return [...sizes].map(([name, size]) => ({ name, size })).sort((a, b) => a.name.localeCompare(b.name));
  }

  /**
   * Entries per map this member holds: in the partitions it is primary of, and in the copies
   * it holds as a backup (or migration target).
   */
  localMapEntries(): MapLocalStats[] {
    const by = new Map<string, MapLocalStats>();
    for (const [p, d] of this.#ctx.data) {
      const primary = this.#ctx.primaries.has(p);
      for (const [name, s] of d.maps) {
        if (isInternalMap(name)) continue;
        let m = by.get(name);
        if (!m) by.set(name, m = { name, primaryEntries: 0, backupEntries: 0 });
        if (primary) m.primaryEntries += s.size;
        else m.backupEntries += s.size;
      }
    }
    return [...by.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  /**
   * What this member's partition copies keep besides their records (the bounded buffers):
   * log entries, entry events, dedupe records and tombstones, with the approximate bytes of
   * the byte-limited ones.
   */
  bufferStats(): {
    copies: number;
    log: number;
    logBytes: number;
    events: number;
    eventBytes: number;
    dedupe: number;
    dedupeBytes: number;
    tombstones: number;
  } {
    const s = { copies: 0, log: 0, logBytes: 0, events: 0, eventBytes: 0, dedupe: 0, dedupeBytes: 0, tombstones: 0 };
    for (const d of this.#ctx.data.values()) {
      s.copies++;
      s.log += d.log.length;
      s.logBytes += d.logBytes;
      s.events += d.events.size;
      s.eventBytes += d.events.bytes;
      s.dedupe += d.dedupe.size;
      s.dedupeBytes += d.dedupeBytes;
      s.tombstones += d.tombstones.size;
    }
    return s;
  }

  /** Records and the bytes of their stores' typed arrays, summed over this member's copies (see RecordStore.footprint). */
  storeStats(): {
    records: number;
    slots: number;
    columns: number;
    table: number;
    arena: number;
    arenaUsed: number;
    arenaLive: number;
  } {
    const s = { records: 0, slots: 0, columns: 0, table: 0, arena: 0, arenaUsed: 0, arenaLive: 0 };
    for (const d of this.#ctx.data.values()) {
      for (const store of d.maps.values()) {
        const f = store.footprint();
        s.records += store.size;
        s.slots += f.slots;
        s.columns += f.columns;
        s.table += f.table;
        s.arena += f.arena;
        s.arenaUsed += f.arenaUsed;
        s.arenaLive += f.arenaLive;
      }
    }
    return s;
  }

  /** Partitions this member is primary of, and holds as backup. */
  ownedCounts(): { primary: number; backup: number } {
    let backup = 0;
    for (const p of this.#ctx.data.keys()) if (!this.#ctx.primaries.has(p)) backup++;
    return { primary: this.#ctx.primaries.size, backup };
  }

  /**
   * The table stamp partition `p`'s primary (this member) waits on before serving under
   * split-brain protection (see PrimaryState.fence), or null.
   */
  fenceOf(p: number): { term: number; version: number } | null {
    return this.#ctx.primaries.get(p)?.fence ?? null;
  }

  /** The wait of {@link fenceOf} is over for `p`. */
  clearFence(p: number): void {
    const prim = this.#ctx.primaries.get(p);
    if (prim) prim.fence = null;
    this.#wake();
  }

  /** Runs of the tick so far, and those after which it slept (core/tick_pace.ts). */
  get tickStats(): { runs: number; sleeps: number } {
    return { ...(this.#pace?.stats ?? { runs: 0, sleeps: 0 }) };
  }

  /** Internal state per held partition, for the simulator's invariant checks. */
  debugReplicas(): ReplicaDebug[] {
    const out: ReplicaDebug[] = [];
    for (const [p, d] of this.#ctx.data) {
      const prim = this.#ctx.primaries.get(p);
      const r: ReplicaDebug = {
        p,
        seq: d.seq,
        lineage: d.lineage,
        digest: [...d.digest] as [number, number],
        primary: !!prim,
        epoch: prim?.epoch ?? -1,
        entries: d.entryCount,
        level: d.level,
      };
      const lv = this.#ctx.levels;
      if (prim && !lv.uniform) r.digests = Array.from({ length: 7 }, (_, l) => lv.digestAt(d, l));
      if (prim) r.catchingUp = prim.catchUp !== null;
      if (prim) r.handingOff = prim.handoff;
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
   * The entries and tombstones of every partition this member is primary of, as the
   * split-brain merge re-applies them: [map, key, value (null: removed), stamp] per entry,
   * plus [ttlMs, maxIdleMs, lastAccessAt] for an entry with an expiry, and the call ids of
   * its dedupe records. The calls waiting on these primaries end (see WaitOutcome `merged`).
   */
  captureForMerge(): Array<{ p: number; entries: MergeEntry[]; calls: string[] }> {
    const out: Array<{ p: number; entries: MergeEntry[]; calls: string[] }> = [];
    for (const [p, prim] of this.#ctx.primaries) {
      // Writes applied here and not committed yet are captured with the rest: their callers are
      // told INDETERMINATE now, not to retry, or the cluster this side merges into could apply
      // them twice (the merge, and the retry without its dedupe record: test/sim/imap_quorum_test.ts).
      this.#primary.failWaiters(prim, "merged");
      const d = this.#ctx.data.get(p);
      if (!d) continue;
      const entries: MergeEntry[] = [];
      for (const [name, store] of d.maps) {
        for (const r of store.values()) {
          entries.push(
            r.ttlMs !== undefined || r.maxIdleMs !== undefined
              ? [name, r.key, r.value, r.updatedAt, r.ttlMs ?? 0, r.maxIdleMs ?? 0, r.lastAccessAt]
              : [name, r.key, r.value, r.updatedAt],
          );
        }
      }
      for (const t of d.tombstones.values()) entries.push([t.m, t.key, null, t.at]);
      // The calls this copy may have applied: their callers may retry them in the other cluster
      // (an INDETERMINATE answer of the waits ended above can be lost, and an answer to a committed
      // write too), where their records would be missing. The merge records them there as calls
      // not to run again (DedupeRecord `x`).
      const calls = [...d.dedupe.keys()];
      if (entries.length > 0 || calls.length > 0) out.push({ p, entries, calls });
    }
    return out;
  }

  /**
   * Replaces this member's copy of `p` with an empty one, telling nobody (tests only: stands
   * for a replica that lost its copy without the primary noticing yet).
   */
  debugLoseCopy(p: number): void {
    if (!this.#ctx.data.has(p) || this.#ctx.primaries.has(p)) return;
    this.#ctx.data.set(p, this.#ctx.newData(p));
    this.#snapshots.in.delete(p);
    this.#ctx.sealed.delete(p);
  }

  /**
   * The call id of the write in this copy's recent log that set `key` of `map` to `value`
   * (tests only: the simulator's copy count of acknowledged writes).
   */
  debugCallOf(p: number, map: string, key: Uint8Array, value: Uint8Array): string | undefined {
    const log = this.#ctx.data.get(p)?.log;
    for (let i = (log?.length ?? 0) - 1; i >= 0; i--) {
      const w = log!.at(i)!;
      const hit = w.e.some((e) => e.m === map && e.k && e.v && bytesEqual(e.k, key) && bytesEqual(e.v, value));
      if (hit) return w.c;
    }
    return undefined;
  }

  /** Whether this member's copy of `p` holds a dedupe record of call `c` (tests only). */
  debugHasRecord(p: number, c: string): boolean {
    return this.#ctx.data.get(p)?.dedupe.has(c) ?? false;
  }

  /** Whether this member's copy of `p` holds the write of call `c`: its record or its recent log entry (tests only). */
  debugHoldsCall(p: number, c: string): boolean {
    const d = this.#ctx.data.get(p);
    // Its dedupe record may be gone already (a later call of the same client carried a
    // watermark above it once it was answered): the recent log still shows the write.
    return (!!d && (d.dedupe.has(c) || [...d.log.values()].some((e) => e.c === c))) ||
      this.#backup.fills.holdsCall(p, c);
  }

  /** The backup counts map `name` replicates with (its map config's, else the node's). */
  backupCountsOf(name: string): { backupCount: number; asyncBackupCount: number } {
    return { ...this.#ctx.levels.of(name) };
  }

  /** The maps holding records in this member's copy of `p`, and the copy's level (tests only). */
  debugMapsOf(p: number): { maps: string[]; level: number } | undefined {
    const d = this.#ctx.data.get(p);
    return d && { maps: [...d.maps.keys()].sort(), level: d.level };
  }

  /** Reads a replica's local value (tests only: bypasses routing). */
  debugLocalValue(p: number, map: string, key: Uint8Array): Uint8Array | undefined {
    return this.#ctx.data.get(p)?.maps.get(map)?.get(key)?.value;
  }

  /** This member's copy of a record (expiry fields included), for tests. */
  debugLocalRecord(p: number, map: string, key: Uint8Array): Readonly<MapRecord> | undefined {
    return this.#ctx.data.get(p)?.maps.get(map)?.get(key);
  }

  stop(): void {
    this.#stopped = true;
    this.#pace?.stop();
    this.#unsubscribeTable();
    this.#unsubscribeView();
    this.listeners.stop();
    this.#ctx.polls.releaseAll();
    this.#ctx.parked.releaseAll();
    for (const prim of this.#ctx.primaries.values()) this.#primary.failWaiters(prim);
  }

  // ---- table changes ------------------------------------------------------------------

  /**
   * A new table: this member becomes primary of the partitions whose row it heads (a new
   * history, after catch-up), keeps the copies the table names it for, and drops the others
   * (unless it is a migration target).
   */
  #onTable(t: PartitionTable, prev?: PartitionTable): void {
    if (this.#stopped) return;
    this.#wake();
    this.#inTable = true;
    try {
      this.#applyTable(t, prev);
    } finally {
      this.#inTable = false;
    }
    // Primaries gained (a promotion, a partition migrated in): back under the maps' limits in
    // this same turn, not at the next tick.
    this.housekeeping.settle(Math.floor(this.#ctx.clock.now()));
  }

  #applyTable(t: PartitionTable, prev?: PartitionTable): void {
    const ctx = this.#ctx;
    const backups = ctx.partitions.config.backupCount;
    const queries = new Map<NodeId, CheckItem[]>();
    const hellos = new Map<NodeId, PullItem[]>();
    for (let p = 0; p < t.partitionCount; p++) {
      const row = t.replicas[p];
      const epoch = t.epochs[p];
      let prim = ctx.primaries.get(p);
      if (row[0] === this.self) {
        if (!prim || prim.epoch !== epoch) {
          if (prim) this.#primary.demote(prim);
          prim = this.#promote(p, epoch, row, !!prim, prev?.replicas[p]?.[0], t, queries);
        } else if (prim.fence && prim.fence.term !== t.term) {
          // A new master's reign: wait on a quorum of the new reign's tables.
          prim.fence = { term: t.term, version: t.version };
        }
        if (prim.migration && (sameRow(prim.migration.row, row) || row.length === 0)) {
          prim.migration = null;
          prim.handoff = false;
        }
        this.#primary.syncFollowers(prim, row, backups);
        this.#primary.progress(prim);
      } else {
        if (prim) {
          this.#primary.demote(prim);
          ctx.primaries.delete(p);
        }
        if (row.includes(this.self)) {
          const d = ctx.ensureData(p);
          ctx.touched.delete(p);
          // Newly a backup and not following anyone yet: say so to the primary, whose own check
          // may have arrived before this table (it is not repeated for a retransmit interval).
          if (d.lineage < 0 && row[0] !== undefined && !prev?.replicas[p]?.includes(this.self)) {
            push(hellos, row[0], pullItem(p, epoch, d));
          }
        } else if (ctx.data.has(p) && !this.#backup.isTarget(p)) {
          ctx.sealed.delete(p);
          ctx.log.debug("map.replica.dropped", {
            p,
            seq: ctx.data.get(p)!.seq,
            entries: ctx.data.get(p)!.entryCount,
            version: t.version,
          });
          ctx.data.delete(p);
          this.#snapshots.in.delete(p);
          ctx.touched.delete(p);
        }
      }
    }
    this.#snapshots.onTable(t);
    this.#backup.pruneFills();
    ctx.sendChecks(queries);
    for (const [to, items] of hellos) {
      this.counters.pulls += items.length;
      ctx.transport.send(to, { t: Kind.MapSyncPull, items });
    }
  }

  /**
   * This member becomes primary of `p` at `epoch`: a new history, continuing this copy once
   * catch-up found none ahead of it (the copy keeps naming the history it holds until then),
   * or at once when a handoff sealed exactly this copy.
   */
  #promote(
    p: number,
    epoch: number,
    row: readonly NodeId[],
    wasPrimary: boolean,
    before: NodeId | undefined,
    t: PartitionTable,
    queries: Map<NodeId, CheckItem[]>,
  ): PrimaryState {
    const hadPrimary = before !== undefined;
    const ctx = this.#ctx;
    const d = ctx.ensureData(p);
    if (wasPrimary || d.lineage >= 0) {
      ctx.log.debug("map.primary.promoted", { p, epoch, seq: d.seq, entries: d.entryCount });
    }
    const seal = ctx.sealed.get(p);
    const sealed = !!seal && seal.l === d.lineage && seal.l === d.historyLineage && seal.s === d.seq;
    ctx.sealed.delete(p);
    const fills = this.#backup.fills;
    const fill = fills.get(p);
    // A filling copy keeps every write it acknowledged from its fill stream; older entries its
    // snapshot had not brought, now or when it took in an earlier stream (retire), are lost
    // (fill_stream.ts).
    const lost = !sealed && !!fill && fills.materialize(p, d, this.#snapshots.partial(p, fill.l));
    fills.drop(p);
    if (fills.takeIncomplete(p) || lost) {
      d.historyLostAt = ctx.clock.now();
      ctx.counters.dataLoss++;
      ctx.log.error("map.partition.data_lost", { p, epoch, reason: "fill_incomplete", seq: d.seq });
    }
    d.lineage = this.#newLineage();
    this.#snapshots.in.delete(p);
    const prim: PrimaryState = {
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
      committed: new Array(7).fill(d.seq),
      // Not handed over by another primary that sealed its copy (it may have been removed
      // while its lease held): under split-brain protection, wait out that lease first.
      fence: !sealed && hadPrimary && before !== this.self ? { term: t.term, version: t.version } : null,
    };
    ctx.primaries.set(p, prim);
    this.housekeeping.onHeld();
    if (sealed) d.follow(prim.lineage, epoch);
    else this.#catchUp.start(prim, row, hadPrimary, queries);
    return prim;
  }

  /** A fresh lineage id: random, never -1, below 2^52. */
  #newLineage(): number {
    const rng = this.#ctx.rng;
    return Math.floor(rng.next() * 2 ** 26) * 2 ** 26 + Math.floor(rng.next() * 2 ** 26) + 1;
  }

  // ---- periodic work ---------------------------------------------------------------------

  /** See {@link TickPace.wake}. */
  #wake(): void {
    this.#pace?.wake();
  }

  /** @returns whether work is under way (see tick_pace.ts) */
  #tick(): boolean {
    const ctx = this.#ctx;
    const now = ctx.clock.now();
    const checks = new Map<NodeId, CheckItem[]>();
    const live = new Set(ctx.view.members().map((m) => m.id));
    // One anti-entropy round for every partition this member leads: the checks of a round to
    // one member travel in one message every antiEntropyMs, instead of a few items in almost
    // every tick's message (each follower's check came due at its own phase).
    const round = now >= this.#antiEntropyAt;
    if (round) this.#antiEntropyAt = now + this.config.antiEntropyMs;
    const filling = (ctx.partitions.table.filling?.size ?? 0) > 0;
    let busy = filling;
    for (const prim of ctx.primaries.values()) {
      if (prim.catchUp) {
        this.#catchUp.tick(prim, now, live, checks);
        busy = true;
      } else {
        // A wait that is over (or that split-brain protection does not ask for) ends here too, not
        // only at the next request's gate: a partition nobody calls kept its fence, and its
        // primary's ticks never went quiet.
        if (prim.fence && ctx.fenceOver(prim.fence)) prim.fence = null;
        this.#primary.tick(prim, now, live, checks, round);
        if (filling) this.#primary.reportSynced(prim, now, false);
        busy ||= !primaryQuiet(ctx, prim, now, live, this.#snapshots.out);
      }
    }
    ctx.sendChecks(checks);
    this.housekeeping.tick(Math.floor(now));
    ctx.polls.expire(now);
    if (ctx.parked.size > 0) {
      for (const op of ctx.parked.due(now, ctx.holderAlive)) {
        this.#primary.serveParked(op, op.deadline <= now ? 0 : op.deadline);
      }
    }
    this.#snapshots.tick(now, live);
    this.#backup.tick();
    return busy || this.housekeeping.busy || ctx.polls.size > 0 || ctx.parked.size > 0 ||
      this.#snapshots.out.size > 0 || this.#snapshots.in.size > 0 || ctx.touched.size > 0 ||
      this.#backup.fills.size > 0;
  }

  /** Every copy this member holds as primary: serving, catching up or handing off. */
  *#held(): Iterable<PartitionData> {
    for (const p of this.#ctx.primaries.keys()) {
      const d = this.#ctx.data.get(p);
      if (d) yield d;
    }
  }

  /** Partitions this member serves as primary now (not catching up, not handing off). */
  *#serving(): Iterable<PartitionData> {
    const ctx = this.#ctx;
    const t = ctx.partitions.table;
    for (const prim of ctx.primaries.values()) {
      if (prim.catchUp || prim.handoff || t.replicas[prim.p][0] !== ctx.self) continue;
      const d = ctx.data.get(prim.p);
      if (d) yield d;
    }
  }
}
