/**
 * The primary's side of a partition: it applies writes one at a time, ships them in order
 * to its confirmed followers (sync and async backups, migration targets), answers a write
 * only once every sync backup and migration target acked it (commit.ts), answers a read
 * once the last write to its keys is committed, re-ships its log (or starts a snapshot) to
 * followers behind, checks their copies, and reports a migration ready to the master once
 * every member of the new row acked every write.
 */
import type { InvokeRequest, Reply } from "../invoke/invoker.ts";
import { fillingOf, sameRow } from "../partition/partition_table.ts";
import type { NodeId } from "../transport/transport.ts";
import { Kind } from "../wire/kinds.ts";
import {
  type Follower,
  held,
  type MapContext,
  type PrimaryState,
  push,
  type Role,
  type Waiter,
  type WaitOutcome,
} from "./map_context.ts";
import { type CheckItem, MAX_WRITE_EFFECTS, type PullItem } from "./messages.ts";
import { commitSeq, copiesNeeded, heldNow } from "./commit.ts";
import { AFTER_WRITE, readEvents } from "./event_polls.ts";
import { executeProcessorOp, isProcessorOp } from "./entry_processor.ts";
import { executeLockOp, isLockOp, lockedByOther } from "./locks.ts";
import { capMergeStamps, keepPlausibleMerged } from "./merged_records.ts";
import { executeQueueOp, isQueueOp } from "./queue_ops.ts";
import { executeTopicOp, isTopicOp } from "./topic_ops.ts";
import { nextStamp } from "./hlc.ts";
import { mergeRunsTwice } from "./merge_policy.ts";
import { MAX_PARK_MS, type ParkedOp, parkUntil } from "./parked_ops.ts";
import { executeOp, isWrite, type OpBody, OpCode, opKeys, parseBody, writeTooLarge } from "./operations.ts";
import type { Effect, LogEntry, PartitionData } from "./partition_data.ts";
import { keyId } from "./record_store.ts";
import type { SnapshotTransfers } from "./snapshot_transfer.ts";

/** An op that passed {@link PrimaryRole.serve}'s checks, with what its write or read path needs. */
interface ServedOp {
  prim: PrimaryState;
  d: PartitionData;
  from: NodeId;
  req: InvokeRequest;
  /** Its body, valid. */
  body: OpBody;
  keys: Uint8Array[] | undefined;
  /** The one clock read of the op (its stamp, and the housekeeping's whole-ms time). */
  clockNow: number;
  reply: Reply;
}

/**
 * What answers a call once its write (`write`) or read is committed, or its partition moved on
 * first (see {@link WaitOutcome}).
 */
const answerOnCommit = (reply: Reply, result: unknown, write: boolean) => (outcome: WaitOutcome): void => {
  if (outcome === "ok") return reply("ok", result);
  if (outcome === "merged" && write) {
    return reply(
      "INDETERMINATE",
      null,
      "this member's side of a split merged into the other cluster before the write was committed: it may have been applied there",
    );
  }
  reply("MIGRATING");
};

export class PrimaryRole {
  constructor(readonly ctx: MapContext, readonly snapshots: SnapshotTransfers) {}

  // ---- serving ops ------------------------------------------------------------------------

  /**
   * Serves one invocation. `parkDeadline`: a parked request run again keeps the deadline it
   * was parked with (0: its park time is over, run it whatever the state).
   */
  serve(from: NodeId, req: InvokeRequest, reply: Reply, parkDeadline?: number): void {
    const ctx = this.ctx;
    const t = ctx.partitions.table;
    if (!Number.isInteger(req.p) || req.p >= t.partitionCount) {
      return reply("INVALID_ARGUMENT", null, `no partition ${req.p}`);
    }
    const prim = ctx.primaries.get(req.p);
    if (!prim || t.replicas[req.p][0] !== ctx.self) return reply("WRONG_TARGET");
    if (req.e < prim.epoch) {
      ctx.counters.staleEpochRejected++;
      return reply("STALE_EPOCH", null, `partition ${req.p} is at epoch ${prim.epoch}, not ${req.e}`);
    }
    if (req.e > prim.epoch) {
      ctx.partitions.requestTable();
      return reply("WRONG_TARGET");
    }
    const body = parseBody(req.op, req.b);
    if (!body) return reply("INVALID_ARGUMENT", null, `invalid body for op ${req.op}`);
    if (prim.handoff || prim.catchUp) return reply("MIGRATING");
    if (prim.waiters.length >= ctx.config.maxPendingPerPartition) return reply("OVERLOADED");
    const d = ctx.data.get(req.p)!;
    if (req.op === OpCode.Events) return this.#serveEvents(prim, d, body, reply);
    // One clock read per op: its stamp (hlc.ts) and the housekeeping's whole-ms time.
    const clockNow = ctx.clock.now();
    const keys = opKeys(req.op, body);
    // Writes and reads each in a method of its own: the JIT compiles each on the ops it has seen,
    // so the first writes after a member served only reads (the job coordinator's walks) do not
    // throw away and recompile code shared with the reads (bench/RESULTS.md, "the JIT after warm-up").
    const op: ServedOp = { prim, d, from, req, body, keys, clockNow, reply };
    if (isWrite(req.op)) this.#serveWrite(op, parkDeadline);
    else this.#serveRead(op);
  }

  /** {@link serve}'s write path. */
  #serveWrite(op: ServedOp, parkDeadline: number | undefined): void {
    const { prim, d, from, req, body, keys, clockNow, reply } = op;
    const ctx = this.ctx;
    const now = Math.floor(clockNow);
    const hk = ctx.housekeeping;
    const lv = ctx.levels;
    const seen = d.dedupe.get(req.c);
    if (seen?.x === 1) {
      // Its call id came with a split-brain merge: it may have been applied on the side that
      // merged, whose state the merge carried here (split_merge.ts). Running it would apply it twice.
      ctx.counters.mergedRefused++;
      return reply(
        "INDETERMINATE",
        null,
        `call ${req.c} may have been applied on a side of a split that merged into this cluster: not applied again`,
      );
    }
    if (seen) {
      ctx.counters.dedupeHits++;
      const k = seen.m === undefined ? lv.maxSync : lv.sync(seen.m);
      // Held now by the copies a write needs, not only committed once (a failover may have left fewer).
      return this.#waitFor(prim, seen.seq, k, answerOnCommit(reply, seen.r, true), true);
    }
    if (d.dedupe.isBelowWatermark(req.c)) {
      // Its caller answered it already (or its member left the view and this copy dropped
      // its records): whether it ran here is no longer known, and it must not run twice.
      ctx.counters.dedupeRefused++;
      return reply(
        "INDETERMINATE",
        null,
        `call ${req.c} is below its caller's watermark on partition ${req.p}: not applied again (it may have been applied before)`,
      );
    }
    if (
      req.g !== undefined && d.mayHaveRunInLostHistory(clockNow - req.g) &&
      !(req.op === OpCode.MergeEntries && mergeRunsTwice(body.pol))
    ) {
      // A retry that may have run, of a call begun before this copy began to serve with history
      // missing, and no record of it here: the lost history may hold it, and running it again
      // could apply it twice.
      ctx.counters.retriesInDoubt++;
      return reply(
        "INDETERMINATE",
        null,
        `call ${req.c}: partition ${prim.p} lost history when this primary took over, and an earlier attempt may have been applied in it: not applied again`,
      );
    }
    // Writes that change nothing (putIfAbsent on a present key, …) are logged too: their
    // result must be deduplicated like any other, or a retry executing later could answer
    // differently from the attempt that counts.
    hk.beforeOp(d, body.m, keys, now);
    // Stamped by hybrid logical clock: above every stamp the partition holds (hlc.ts). Lock
    // leases are measured in these stamps too, so they never run backwards across a failover.
    const stamp = nextStamp(clockNow, d.maxAt);
    const alive = ctx.holderAlive, leaseOutlivesDeath = ctx.leaseOutlivesDeath(body.m);
    if (body.pk && parkDeadline !== 0) {
      const w = parkUntil(d, req.op, body, { now: stamp, from, alive, leaseOutlivesDeath });
      const deadline = w && Math.min(parkDeadline ?? now + Math.min(body.pk, MAX_PARK_MS), w.until);
      if (w && deadline! > now && ctx.parked.park(req.p, { from, req, reply, deadline: deadline!, ...w })) return;
    }
    if (
      !isLockOp(req.op) && !isQueueOp(req.op) && !isTopicOp(req.op) && req.op !== OpCode.Destroy &&
      lockedByOther(d, body.m, keys, from, stamp, alive, leaseOutlivesDeath)
    ) {
      return reply("LOCKED", null, `a key of this write is locked by another member`);
    }
    if (req.op === OpCode.MergeEntries) capMergeStamps(body, now);
    const out = isProcessorOp(req.op)
      ? executeProcessorOp(ctx.processors, d, req.op, body, stamp, hk.defaults)
      : isLockOp(req.op)
      ? executeLockOp(d, req.op, body, stamp, from, alive, leaseOutlivesDeath)
      : isQueueOp(req.op)
      ? executeQueueOp(d, req.op, body, stamp)
      : isTopicOp(req.op)
      ? executeTopicOp(d, req.op, body, stamp)
      : executeOp(d, req.op, body, stamp, hk.defaults, ctx.customMergePolicy);
    if (req.op === OpCode.MergeEntries) out.effects = keepPlausibleMerged(d, out.effects, now, ctx.counters);
    // A write the backups would refuse (MapBackupOps' limit), or larger than a message, is not applied here either.
    const n = out.effects.length;
    const tooLarge = n > MAX_WRITE_EFFECTS
      ? `write of ${n} records, over ${MAX_WRITE_EFFECTS}`
      : writeTooLarge(out.effects);
    if (tooLarge) return reply("INVALID_ARGUMENT", null, `Cannot apply ${tooLarge}`);
    const entry: LogEntry = { seq: d.seq + 1, c: req.c, r: out.result, e: out.effects };
    if (req.w !== undefined) entry.w = req.w;
    if (body.u !== undefined) entry.u = body.u;
    const direct = this.#directAckers(prim);
    if (direct && direct.length > 0) (entry.o = from, entry.ak = direct);
    d.applyEntry(entry);
    ctx.counters.writesApplied++;
    if (ctx.parked.has(req.p)) this.#wakeParked(req.p, entry);
    if (keys) { for (const k of keys) prim.keyPending.set(keyId(k), entry.seq); }
    else prim.readBarrier = Math.max(prim.readBarrier, entry.seq);
    this.#ship(prim, [entry], clockNow);
    hk.afterWrite(d, entry, now);
    // A write waits for the sync backups of the maps it changed (all of them when it changed none).
    let k = entry.e.length === 0 ? lv.maxSync : 0;
    for (const e of entry.e) k = Math.max(k, lv.sync(e.m));
    if (direct && direct.length > 0) {
      // Answered by the ackers themselves, each once it applied the write (backup.ts); this
      // primary answers only if its side merges into another cluster before the commit.
      ctx.counters.directAcked++;
      return this.#waitFor(prim, entry.seq, k, (o) => {
        if (o === "merged") answerOnCommit(reply, null, true)(o);
      });
    }
    return this.#waitFor(prim, entry.seq, k, answerOnCommit(reply, out.result, true));
  }

  /** {@link serve}'s read path. */
  #serveRead(op: ServedOp): void {
    const { prim, d, from, req, body, keys, clockNow, reply } = op;
    const ctx = this.ctx;
    const now = Math.floor(clockNow);
    const hk = ctx.housekeeping;
    hk.beforeOp(d, body.m, keys, now);
    const stamp = nextStamp(clockNow, d.maxAt);
    const out = isLockOp(req.op)
      ? executeLockOp(d, req.op, body, stamp, from, ctx.holderAlive, ctx.leaseOutlivesDeath(body.m))
      : isQueueOp(req.op)
      ? executeQueueOp(d, req.op, body, stamp)
      : isTopicOp(req.op)
      ? executeTopicOp(d, req.op, body, stamp)
      : executeOp(d, req.op, body, stamp, hk.defaults);
    const internal = isLockOp(req.op) || isQueueOp(req.op) || isTopicOp(req.op);
    // Only a read of the entry is an access (LRU, max-idle): `isLocked` is not, as in Hazelcast.
    if (!internal) hk.afterRead(d, body.m, keys, now);
    // Reads of a user map wait for its own sync backups; of a lock, queue or topic, or of every
    // map at once (MapSizes), for all.
    const lv = ctx.levels;
    const k = internal || req.op === OpCode.MapSizes ? lv.maxSync : lv.sync(body.m);
    this.#waitFor(prim, this.#readSeq(prim, d, req.op, body), k, answerOnCommit(reply, out.result, false));
  }

  /** Runs again (after this write) the requests parked on an internal map `entry` wrote (parked_ops.ts). */
  #wakeParked(p: number, entry: LogEntry): void {
    const maps = new Set(entry.e.map((e) => e.m));
    const ops = this.ctx.parked.take(p, (op) => maps.has(op.map));
    for (const op of ops) this.ctx.clock.setTimer(0, () => this.serveParked(op, op.deadline));
  }

  /**
   * Runs a parked request again (see {@link serve} for `parkDeadline`), behind the same
   * split-brain gate as a request that just arrived: a member that lost its quorum answers
   * QUORUM (the request has not run, so the caller retries it safely).
   */
  serveParked(op: ParkedOp, parkDeadline: number): void {
    const refused = this.ctx.invoker.refusal(op.req);
    if (refused) return op.reply("QUORUM", null, refused.message);
    this.serve(op.from, op.req, op.reply, parkDeadline);
  }

  /**
   * A listener's poll (event_polls.ts): the position of "now" once committed, or the events
   * after its position of committed writes, held until there are some or the hold runs out.
   */
  #serveEvents(prim: PrimaryState, d: PartitionData, body: NonNullable<ReturnType<typeof parseBody>>, reply: Reply) {
    const ctx = this.ctx;
    const now = ctx.clock.now();
    d.eventsRead(body.m, now);
    if (body.s === -1) {
      return this.#waitFor(
        prim,
        d.seq,
        ctx.levels.maxSync,
        answerOnCommit(reply, { s: d.seq, i: AFTER_WRITE, ev: [] }, false),
      );
    }
    const lost = d.eventsLost && !ctx.levels.holds(body.m, d.eventsLost.level) ? d.eventsLost.until : -1;
    const a = readEvents(d, body, commitSeq(this.ctx, prim, ctx.levels.maxSync), lost);
    if (a) return reply("ok", a);
    const held = ctx.polls.hold(prim.p, {
      body,
      deadline: now + Math.min(ctx.config.eventPollHoldMs, typeof body.h === "number" ? body.h : Infinity),
      answer: (x, status = "ok") => status === "ok" ? reply("ok", x) : reply(status),
    });
    if (!held) reply("OVERLOADED");
  }

  /**
   * A write this primary originates (expiry, eviction, touches, idle floor): applied, logged
   * and shipped like a client's write, without a call id. Reads of its keys wait for it to commit.
   */
  writeLocal(p: number, effects: Effect[]): void {
    const ctx = this.ctx;
    const prim = ctx.primaries.get(p);
    const d = ctx.data.get(p);
    if (!prim || !d || effects.length === 0) return;
    // Stamped like every write (hlc.ts): never below a stamp the partition holds.
    const stamp = nextStamp(ctx.clock.now(), d.maxAt);
    for (const e of effects) if (e.at < stamp) e.at = stamp;
    const entry: LogEntry = { seq: d.seq + 1, r: null, e: effects };
    d.applyEntry(entry);
    ctx.counters.localWrites++;
    for (const e of effects) if (e.k && !e.touch) prim.keyPending.set(keyId(e.k), entry.seq);
    this.#ship(prim, [entry]);
    ctx.housekeeping.afterWrite(d, entry, Math.floor(ctx.clock.now()));
  }

  /**
   * The members that must ack a write for it to count as acknowledged (sync backups and
   * migration targets), when each of them can answer the caller itself: all confirmed, so
   * each receives the write in order. Null when a write must wait on the primary. The same
   * array while the members stay the same (log entries hold it).
   */
  #directAckers(prim: PrimaryState): NodeId[] | null {
    // Per-map backup counts: each write has its own ackers; the primary waits for them itself.
    if (!this.ctx.config.directBackupAcks || !this.ctx.levels.uniform) return null;
    const last = prim.ackers;
    let ids: NodeId[] | null = null, n = 0, copies = 1;
    for (const f of prim.followers.values()) {
      if (f.role === "async") continue;
      if (!f.confirmed) return null;
      // A copy of the last list only from the first member that differs from it.
      if (ids === null && (last === undefined || last[n] !== f.id)) ids = last ? last.slice(0, n) : [];
      if (ids !== null) ids.push(f.id);
      n++;
      if (f.role === "sync") copies++;
    }
    // Too few copies: the write waits on the primary (see commit.ts).
    if (copies < copiesNeeded(this.ctx, this.ctx.levels.maxSync) || n > 7) return null;
    if (ids === null && last !== undefined && last.length === n) return last;
    return prim.ackers = ids ?? (last ? last.slice(0, n) : []);
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
   * Whether this member serves `p` at `epoch` (caught up, not handing off) and its copy never
   * held anything: no write in this history, no entry, no dedupe record. A backup of such a
   * partition has nothing to receive, so the master lists it in sync at once.
   */
  holdsNothing(p: number, epoch: number): boolean {
    const prim = this.ctx.primaries.get(p);
    if (!prim || prim.epoch !== epoch || prim.catchUp || prim.handoff || prim.migration) return false;
    const d = this.ctx.data.get(p);
    return !!d && d.seq === 0 && d.dedupe.size === 0 && d.entryCount === 0;
  }

  /**
   * Whether backup `member` of `p`, created in place and listed as filling, holds nothing
   * this member could not give another member instead: no snapshot chunk sent, no write
   * streamed, never confirmed. If so it is held (left alone: no fill, write, ack or pull
   * taken) for a retransmit interval, so nothing reaches it before the table that replaces it
   * applies here; the master then moves the fill to a member it balances better
   * (PartitionService, untouched fills). No acknowledged write can have counted it.
   */
  releaseUntouchedFiller(p: number, epoch: number, member: NodeId): boolean {
    const ctx = this.ctx;
    const prim = ctx.primaries.get(p);
    if (!prim || prim.epoch !== epoch || prim.catchUp || prim.handoff || prim.migration) return false;
    const f = prim.followers.get(member);
    const d = ctx.data.get(p);
    if (!f || !d || f.role !== "sync" || f.confirmed || f.snapshots > 0) return false;
    if (this.snapshots.out.has(`${p}|${member}`) || (f.stream && f.stream.from <= d.seq)) return false;
    f.stream = null;
    f.heldUntil = ctx.clock.now() + ctx.config.retransmitMs;
    return true;
  }

  /**
   * Tells the master which backups the table lists as filling (created in place) are in sync
   * here: confirmed, so they hold every entry and get every later write in order. Repeated
   * every retransmitMs while the table still lists them (`force`: at once).
   */
  reportSynced(prim: PrimaryState, now: number, force: boolean): void {
    const filling = fillingOf(this.ctx.partitions.table, prim.p);
    if (filling.length === 0 || prim.catchUp) return;
    if (!force && now - prim.syncedReportAt < this.ctx.config.retransmitMs) return;
    const synced = filling.filter((id) => prim.followers.get(id)?.confirmed);
    if (synced.length === 0) return;
    prim.syncedReportAt = now;
    this.ctx.partitions.reportBackupsSynced(prim.p, prim.epoch, synced);
  }

  /** `held`: see {@link Waiter.held}. */
  #waitFor(prim: PrimaryState, seq: number, k: number, done: (outcome: WaitOutcome) => void, held = false): void {
    if (seq <= commitSeq(this.ctx, prim, k) && (!held || heldNow(this.ctx, prim, seq, k))) return done("ok");
    const ws = prim.waiters;
    let i = ws.length;
    while (i > 0 && ws[i - 1].seq > seq) i--;
    ws.splice(i, 0, held ? { seq, k, done, held } : { seq, k, done });
  }

  /** Answers the waiters whose writes are committed now, and reports a migration that became ready. */
  progress(prim: PrimaryState): void {
    const lv = this.ctx.levels;
    // The strictest commit (every sync backup): a waiter at or below it is done whatever its k.
    const c = commitSeq(this.ctx, prim, lv.maxSync);
    let n = 0;
    while (n < prim.waiters.length && prim.waiters[n].seq <= c) n++;
    if (n > 0) {
      // A retry's answer whose write the copies needed now do not all hold yet stays first (its seq ≤ c).
      let kept: Waiter[] | null = null;
      for (const w of prim.waiters.splice(0, n)) {
        if (w.held && !heldNow(this.ctx, prim, w.seq, w.k)) (kept ??= []).push(w);
        else w.done("ok");
      }
      if (kept !== null) prim.waiters.unshift(...kept);
    }
    if (!lv.uniform && prim.waiters.length > 0) {
      // Per-map backup counts: a later waiter of a map with fewer sync backups may be done already.
      const at = new Map<number, number>();
      const rest = prim.waiters;
      prim.waiters = [];
      const done: Array<(outcome: WaitOutcome) => void> = [];
      for (const w of rest) {
        let ck = at.get(w.k);
        if (ck === undefined) at.set(w.k, ck = commitSeq(this.ctx, prim, w.k));
        if (w.seq <= ck && (!w.held || heldNow(this.ctx, prim, w.seq, w.k))) done.push(w.done);
        else prim.waiters.push(w);
      }
      for (const d of done) d("ok");
    }
    if (prim.keyPending.size > 0) { for (const [k, s] of prim.keyPending) if (s <= c) prim.keyPending.delete(k); }
    if (this.ctx.polls.has(prim.p)) {
      const d = this.ctx.data.get(prim.p);
      if (d) this.ctx.polls.retry(prim.p, (b) => readEvents(d, b, c));
    }
    this.checkMigration(prim);
  }

  /** Sends `entries` to the followers; `now`: the clock's time (read here when not given). */
  #ship(prim: PrimaryState, entries: LogEntry[], now = this.ctx.clock.now()): void {
    const ctx = this.ctx;
    for (const f of prim.followers.values()) {
      if (!f.confirmed) {
        if (f.stream) this.#sendOps(prim, f, entries, f.stream.from);
        continue;
      }
      const ops = ctx.levels.filter(entries, f.level);
      ctx.transport.send(f.id, { t: Kind.MapBackupOps, p: prim.p, e: prim.epoch, l: prim.lineage, ops });
      f.lastSentAt = now;
    }
  }

  // ---- fill streams (fill_stream.ts) ------------------------------------------------------

  /**
   * Follower `f` needs a snapshot: it is started, with a fill stream first (not to an async
   * backup, which no write waits for), so the follower receives and acks every write from the
   * last committed one on while the snapshot streams in. A transfer already under way from
   * before the stream began is started again if its base is below the stream's start.
   */
  #fill(prim: PrimaryState, f: Follower): void {
    if (held(f, this.ctx.clock.now())) return;
    if (!f.stream && f.role !== "async") this.#startStream(prim, f);
    this.snapshots.start(prim, f.id, f.stream ? f.stream.from - 1 : 0);
  }

  #startStream(prim: PrimaryState, f: Follower): void {
    const d = this.ctx.data.get(prim.p)!;
    // Every write up to it was committed without this follower (it was not needed for them).
    const from = prim.committed[this.ctx.levels.maxSync] + 1;
    const ops = d.logFrom(from);
    if (ops === null) return; // the log no longer holds them: writes wait for the snapshot
    f.stream = { from, acked: from - 1 };
    this.ctx.counters.fillStreamsStarted++;
    this.#sendOps(prim, f, ops, from);
  }

  /** Writes to follower `f`, 256 per message (`sf`: as its fill stream, from that sequence on). */
  #sendOps(prim: PrimaryState, f: Follower, entries: LogEntry[], sf?: number): void {
    const ctx = this.ctx;
    for (let i = 0; i < entries.length; i += 256) {
      ctx.transport.send(f.id, {
        t: Kind.MapBackupOps,
        p: prim.p,
        e: prim.epoch,
        l: prim.lineage,
        ops: ctx.levels.filter(entries.slice(i, i + 256), f.level),
        ...(sf !== undefined ? { sf, ...(f.level > 0 ? { lv: f.level } : {}) } : {}),
      });
    }
    f.lastSentAt = ctx.clock.now();
  }

  /** A fill stream's ack: follower `from` holds aside every write from `sf` to `s`. */
  onStreamAck(from: NodeId, p: number, e: number, s: number, level: number, sf: number): void {
    const prim = this.ctx.primaries.get(p);
    if (!prim || prim.epoch !== e || prim.catchUp) return;
    const f = prim.followers.get(from);
    if (!f || f.confirmed || !f.stream || f.stream.from !== sf || level !== f.level || s <= f.stream.acked) return;
    f.stream.acked = Math.min(s, this.ctx.data.get(p)!.seq);
    f.lastProgressAt = this.ctx.clock.now();
    this.progress(prim);
  }

  // ---- followers --------------------------------------------------------------------------

  /**
   * Makes the follower set match the table's row (and the migration's new row). A follower
   * is kept at the level of its rank (a migration target: of the lower of its ranks, so it
   * holds what either row needs of it); one whose level changes is checked again at the new
   * level before it gets more writes.
   */
  syncFollowers(prim: PrimaryState, row: readonly NodeId[], backups: number): void {
    const ctx = this.ctx;
    const uniform = ctx.levels.uniform;
    const want = new Map<NodeId, Role>();
    const level = new Map<NodeId, number>();
    row.forEach((m, i) => {
      if (i > 0) (want.set(m, i <= backups ? "sync" : "async"), level.set(m, uniform ? 0 : i));
    });
    // Members the migration brings in, or moves up to a sync rank, must ack every write from
    // now on: once committed they may be promoted.
    if (prim.migration) {
      prim.migration.row.forEach((m, i) => {
        if (m === ctx.self) return;
        if (!want.has(m) || (i <= backups && want.get(m) !== "sync")) want.set(m, "target");
        if (!uniform) level.set(m, Math.min(level.get(m) ?? i, i));
      });
    }
    for (const id of [...prim.followers.keys()]) if (!want.has(id)) prim.followers.delete(id);
    const now = ctx.clock.now();
    for (const [id, role] of want) {
      const f = prim.followers.get(id);
      const lv = level.get(id) ?? 0;
      if (f) {
        // A replica that left the table drops its copy; as a migration target it starts over.
        if (role === "target" && f.role !== "target") {
          f.confirmed = false;
          f.stream = null;
        }
        f.role = role;
        if (f.level !== lv) {
          f.level = lv;
          f.stream = null;
          if (f.confirmed) {
            f.confirmed = false;
            if (!prim.catchUp) {
              f.lastCheckAt = now;
              ctx.sendChecks(new Map([[id, [ctx.followerCheck(prim, f)]]]));
            }
          }
        }
      } else {
        const nf: Follower = {
          id,
          role,
          snapshots: 0,
          acked: 0,
          confirmed: false,
          stream: null,
          level: lv,
          lastSentAt: now,
          lastProgressAt: now,
          lastCheckAt: -Infinity,
        };
        prim.followers.set(id, nf);
        if (prim.catchUp) continue; // checked once catch-up is done
        ctx.sendChecks(new Map([[id, [ctx.followerCheck(prim, nf)]]]));
        nf.lastCheckAt = now;
      }
    }
  }

  /** This member stops being primary of `prim.p` (or starts a new epoch of it). */
  demote(prim: PrimaryState): void {
    this.ctx.polls.release(prim.p);
    this.ctx.parked.release(prim.p);
    this.ctx.housekeeping.onStopServing(prim.p);
    this.ctx.counters.demotedPending += prim.waiters.length;
    this.failWaiters(prim);
    prim.followers.clear();
    this.snapshots.dropPartition(prim.p);
  }

  /** Ends every wait of `prim` before its commit (`moved`, or `merged`: see {@link WaitOutcome}). */
  failWaiters(prim: PrimaryState, outcome: "moved" | "merged" = "moved"): void {
    const ws = prim.waiters.splice(0);
    for (const w of ws) w.done(outcome);
  }

  /**
   * A follower acked every write up to `s` (or confirmed its copy at `s`), holding a copy at
   * `level`. An ack of a copy at another level than the follower is kept at (sent before its
   * rank changed) neither confirms nor advances it.
   */
  onAck(from: NodeId, p: number, e: number, s: number, level = 0): void {
    const ctx = this.ctx;
    const prim = ctx.primaries.get(p);
    if (!prim || prim.epoch !== e || prim.catchUp) return;
    const f = prim.followers.get(from);
    const now = ctx.clock.now();
    if (!f || level !== f.level || held(f, now)) return;
    f.lastProgressAt = now;
    if (!f.confirmed) {
      f.confirmed = true;
      f.stream = null;
      f.acked = s;
      // Writes made while the replica was unconfirmed were not shipped to it: send them now.
      const d = ctx.data.get(p)!;
      if (f.acked < d.seq) this.#resend(prim, f, d);
      this.reportSynced(prim, now, true);
    } else if (s > f.acked) f.acked = s;
    this.progress(prim);
  }

  #resend(prim: PrimaryState, f: Follower, d: PartitionData): void {
    const ctx = this.ctx;
    const ops = d.logFrom(f.acked + 1);
    f.lastSentAt = ctx.clock.now();
    if (ops === null) {
      f.confirmed = false;
      this.#fill(prim, f);
      return;
    }
    ctx.counters.logResends++;
    ctx.counters.logOpsResent += ops.length;
    this.#sendOps(prim, f, ops);
  }

  /** A follower's pull (it found a gap or a mismatch): the log if it covers the gap, else a snapshot. */
  onPull(from: NodeId, it: PullItem): void {
    const ctx = this.ctx;
    const prim = ctx.primaries.get(it.p);
    if (!prim || prim.epoch !== it.e || prim.catchUp) return;
    const f = prim.followers.get(from);
    if (!f || held(f, ctx.clock.now())) return;
    ctx.counters.pullsReceived++;
    if (prim.migration) ctx.counters.pullsReceivedDuringMigration++;
    if (this.snapshots.out.has(`${it.p}|${from}`)) ctx.counters.pullsReceivedDuringTransfer++;
    const d = ctx.data.get(it.p)!;
    // Per-map backup counts: a copy at another level than the follower is kept at gets a
    // snapshot of the maps of its level (the log and the digest say nothing of the others).
    if ((it.lv ?? 0) !== f.level) {
      f.confirmed = false;
      return this.#fill(prim, f);
    }
    if (it.l === prim.lineage && it.s <= d.seq) {
      // Same history, behind: the log may cover the gap.
      const ops = d.logFrom(it.s + 1);
      if (ops !== null) {
        f.confirmed = true;
        f.stream = null;
        f.acked = it.s;
        this.#resend(prim, f, d);
        this.progress(prim);
        return;
      }
    }
    f.confirmed = false;
    const dg = ctx.levels.digestAt(d, f.level);
    if (it.s === d.seq && it.d0 === dg[0] && it.d1 === dg[1]) {
      f.lastCheckAt = ctx.clock.now();
      ctx.sendChecks(new Map([[from, [ctx.followerCheck(prim, f)]]]));
      return;
    }
    this.#fill(prim, f);
  }

  /**
   * Tick of a primary that caught up: re-check unconfirmed followers, re-ship to those behind,
   * anti-entropy: in a `round` (every antiEntropyMs, for all partitions at once), or when a
   * follower's last check is that old.
   */
  tick(
    prim: PrimaryState,
    now: number,
    live: ReadonlySet<NodeId>,
    checks: Map<NodeId, CheckItem[]>,
    round = false,
  ): void {
    const ctx = this.ctx;
    const cfg = ctx.config;
    const d = ctx.data.get(prim.p)!;
    d.forgetEventReaders(now);
    for (const f of prim.followers.values()) {
      if (!live.has(f.id) || held(f, now)) continue;
      const st = f.stream;
      const quiet = now - f.lastProgressAt >= cfg.retransmitMs && now - f.lastSentAt >= cfg.retransmitMs;
      if (!f.confirmed && st && st.acked < d.seq && quiet) {
        // Streamed writes not acked: sent again (or the stream ends, when the log lost them).
        const ops = d.logFrom(st.acked + 1);
        if (ops === null) f.stream = null;
        else this.#sendOps(prim, f, ops, st.from);
      }
      if (this.snapshots.out.has(`${prim.p}|${f.id}`)) continue;
      if (!f.confirmed) {
        if (now - f.lastCheckAt >= cfg.retransmitMs) {
          f.lastCheckAt = now;
          push(checks, f.id, ctx.followerCheck(prim, f));
        }
      } else if (f.acked < d.seq) {
        if (now - f.lastProgressAt >= cfg.retransmitMs && now - f.lastSentAt >= cfg.retransmitMs) {
          this.#resend(prim, f, d);
        }
      } else if (round || now - f.lastCheckAt >= cfg.antiEntropyMs) {
        f.lastCheckAt = now;
        push(checks, f.id, ctx.followerCheck(prim, f));
      }
    }
    this.checkMigration(prim);
  }

  // ---- migration --------------------------------------------------------------------------

  onMigrationStart(p: number, epoch: number, row: readonly NodeId[], mid?: number): void {
    const ctx = this.ctx;
    const prim = ctx.primaries.get(p);
    if (!prim || prim.epoch !== epoch) return;
    const now = ctx.clock.now();
    const m = prim.migration;
    const backups = ctx.partitions.config.backupCount;
    if (m && sameRow(m.row, row) && (mid === undefined || m.mid === undefined || m.mid === mid)) {
      // A resend of the migration under way.
      m.deadline = now + ctx.config.migrationTimeoutMs;
      m.reportedAt = -Infinity;
      m.mid ??= mid;
      this.syncFollowers(prim, ctx.partitions.table.replicas[p], backups);
    } else {
      prim.migration = { row: [...row], deadline: now + ctx.config.migrationTimeoutMs, reportedAt: -Infinity, mid };
      prim.handoff = false;
      this.syncFollowers(prim, ctx.partitions.table.replicas[p], backups);
      // A new migration: its targets are checked again from scratch. A target that acked
      // under an earlier migration may have dropped its copy since that one ended; counting
      // its old acks would let the master commit a row naming a member without the data.
      const checks = new Map<NodeId, CheckItem[]>();
      for (const f of prim.followers.values()) {
        if (f.role !== "target") continue;
        // Its stream too: the copy may be gone with the earlier migration.
        f.stream = null;
        if (!f.confirmed) continue;
        f.confirmed = false;
        if (this.snapshots.out.has(`${p}|${f.id}`) || prim.catchUp) continue;
        f.lastCheckAt = now;
        push(checks, f.id, ctx.followerCheck(prim, f));
      }
      ctx.sendChecks(checks);
    }
    this.checkMigration(prim);
  }

  checkMigration(prim: PrimaryState): void {
    const ctx = this.ctx;
    const m = prim.migration;
    if (!m || prim.catchUp) return;
    const now = ctx.clock.now();
    if (now > m.deadline) {
      prim.migration = null;
      prim.handoff = false;
      this.syncFollowers(prim, ctx.partitions.table.replicas[prim.p], ctx.partitions.config.backupCount);
      return;
    }
    if (now - m.reportedAt < ctx.config.retransmitMs) return;
    const seq = ctx.data.get(prim.p)!.seq;
    const ready = m.row.every((id) => {
      if (id === ctx.self) return true;
      const f = prim.followers.get(id);
      return !!f && f.confirmed && f.acked >= seq;
    });
    if (!ready) return;
    if (m.row[0] !== ctx.self) {
      if (prim.fence) {
        // Still waiting out its predecessor's lease (PrimaryState.fence): nothing is handed on
        // before that wait is over. The next primary takes over sealed, so it waits for nothing
        // and serves at once, while the predecessor may still serve under its lease
        // (test/sim/imap_quorum_cut_test.ts, seeds 223, 229, 236 and 241).
        if (!ctx.fenceOver(prim.fence)) return;
        prim.fence = null;
      }
      // The primary moves: stop serving first, let what is pending commit, then report.
      prim.handoff = true;
      if (prim.waiters.length > 0) return;
    }
    m.reportedAt = now;
    if (m.row[0] !== ctx.self) {
      // Seal the handoff: nothing more is applied here before the commit (or the migration's end).
      ctx.sendChecks(
        new Map([[m.row[0], [{
          ...ctx.checkItem(prim, prim.followers.get(m.row[0])?.role === "target", prim.followers.get(m.row[0])?.level),
          hs: true,
        }]]]),
      );
    }
    ctx.partitions.reportMigrationReady(prim.p, prim.epoch, m.row, m.mid);
  }
}
