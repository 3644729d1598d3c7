/**
 * The replica's side of a partition (backup or migration target): it applies the primary's
 * writes in order under the lineage it follows, acks them cumulatively (and to the callers
 * answers them to the callers themselves under directBackupAcks), confirms or pulls on the primary's checks, installs
 * snapshots, and keeps a migration target's copy while the primary touches it.
 */
import { isNewer } from "../partition/partition_table.ts";
import type { NodeId } from "../transport/transport.ts";
import type { InvokeBackupAnswer } from "../invoke/messages.ts";
import { Kind } from "../wire/kinds.ts";
import type { CatchUp } from "./catch_up.ts";
import { FillStreams } from "./fill_stream.ts";
import type { MapContext } from "./map_context.ts";
import type { CheckItem, MapBackupOps, MapSnapshotChunk, PullItem } from "./messages.ts";
import type { PartitionData } from "./partition_data.ts";
import type { SnapshotTransfers } from "./snapshot_transfer.ts";

/** An ack of copy `d` of `p` under epoch `e`: its sequence and, when above 0, its level. */
function ackItem(p: number, e: number, d: PartitionData): { p: number; e: number; s: number; lv?: number } {
  return d.level > 0 ? { p, e, s: d.seq, lv: d.level } : { p, e, s: d.seq };
}

/** A pull for what copy `d` of `p` misses under epoch `e`: where it is, and its level when above 0. */
export function pullItem(p: number, e: number, d: PartitionData): PullItem {
  const it: PullItem = { p, e, s: d.seq, l: d.lineage, d0: d.digest[0], d1: d.digest[1] };
  if (d.level > 0) it.lv = d.level;
  return it;
}

/** The answers this member sends one caller: call ids, results, and each call's other ackers when any has some. */
interface CallerAnswers {
  cs: string[];
  rs: unknown[];
  ob?: NodeId[][];
}

/** Adds call `c`'s result `r` and its other ackers (none: an empty list) to `a`. */
function addAnswer(a: CallerAnswers, c: string, r: unknown, others: readonly NodeId[]): void {
  if (others.length > 0) a.ob ??= a.cs.map(() => []);
  a.ob?.push(others as NodeId[]);
  a.cs.push(c);
  a.rs.push(r);
}

const NONE: readonly NodeId[] = [];
/** Calls per InvokeBackupAnswer and items per MapBackupAck at most (their schemas' limits). */
const MAX_ANSWERS = 4096, MAX_ACK_ITEMS = 10_000;

/**
 * What applied ops make this member send: answers by caller and primary, acks by primary and
 * partition. `deferred`: gathered until the end of the received frame being delivered.
 */
interface Replies {
  answers: Map<NodeId, Map<NodeId, CallerAnswers>>;
  acks: Map<NodeId, Map<number, { p: number; e: number; s: number; lv?: number }>>;
  deferred: boolean;
}

export class BackupRole {
  #pullAt = new Map<number, number>();
  /** Writes held aside while a snapshot fills this member's copy (fill_stream.ts). */
  readonly fills: FillStreams;
  /** Replies being gathered (sent by #flush). */
  #out: Replies | null = null;

  constructor(readonly ctx: MapContext, readonly snapshots: SnapshotTransfers, readonly catchUp: CatchUp) {
    this.fills = new FillStreams(ctx);
  }

  /** Whether `from` is the primary of `p` at epoch `e` in this member's table. */
  #fromPrimary(from: NodeId, p: number, e: number): boolean {
    const ctx = this.ctx;
    const t = ctx.partitions.table;
    if (p >= t.partitionCount) return false;
    if (e > t.epochs[p]) {
      ctx.partitions.requestTable();
      return false;
    }
    if (e < t.epochs[p]) {
      ctx.counters.staleEpochRejected++;
      return false;
    }
    if (t.replicas[p][0] === from && from !== ctx.self) return true;
    ctx.counters.notFromPrimary++;
    return false;
  }

  onBackupOps(from: NodeId, msg: MapBackupOps): void {
    const ctx = this.ctx;
    if (!this.#fromPrimary(from, msg.p, msg.e)) return;
    const d = ctx.data.get(msg.p);
    if (!d || d.lineage !== msg.l) {
      if (msg.sf !== undefined) return this.#onStream(from, msg as MapBackupOps & { sf: number }, d);
      // The primary counts this member as a replica (perhaps a migration target it lost):
      // ask for what is missing; the primary answers with the log or a snapshot.
      if (!ctx.partitions.table.replicas[msg.p].includes(ctx.self)) this.touch(msg.p);
      this.#pull(from, msg.p, msg.e, true);
      return;
    }
    if (ctx.touched.has(msg.p)) this.touch(msg.p);
    // What these ops make this member send: gathered until the end of the received frame being
    // delivered (one answer per caller and one ack per primary for all its ops), else sent below.
    const out = this.#replies();
    for (const op of msg.ops) {
      if (op.seq <= d.seq) continue;
      if (op.seq !== d.seq + 1) {
        this.#pull(from, msg.p, msg.e, true);
        break;
      }
      d.applyEntry(op);
      ctx.counters.backupsApplied++;
      if (op.o !== undefined && op.c !== undefined && op.ak?.includes(ctx.self)) {
        const others = op.ak.length > 1 ? op.ak.filter((id) => id !== ctx.self) : NONE;
        const byPrimary = out.answers.get(op.o) ?? out.answers.set(op.o, new Map()).get(op.o)!;
        const a = byPrimary.get(from) ?? byPrimary.set(from, { cs: [], rs: [] }).get(from)!;
        addAnswer(a, op.c, op.r ?? null, others);
      }
    }
    if (this.fills.size > 0) this.fills.caughtUp(msg.p, d);
    const acks = out.acks.get(from) ?? out.acks.set(from, new Map()).get(from)!;
    acks.delete(msg.p); // the newest ack of a partition last (the primary reads them in order)
    acks.set(msg.p, ackItem(msg.p, msg.e, d));
    if (!out.deferred) this.#flush();
  }

  /** The replies being gathered, new ones (deferred to the frame's end when one is being delivered) if none. */
  #replies(): Replies {
    if (this.#out) return this.#out;
    const out: Replies = { answers: new Map(), acks: new Map(), deferred: false };
    this.#out = out;
    out.deferred = this.ctx.afterFrame(() => this.#flush());
    return out;
  }

  /**
   * Sends `a` to its caller (answering at once when the caller is this member), in messages
   * of at most 4,096 calls.
   */
  #answer(caller: NodeId, primary: NodeId, a: CallerAnswers): void {
    const ctx = this.ctx;
    const whole = a.cs.length <= MAX_ANSWERS;
    for (let i = 0; i < a.cs.length; i += MAX_ANSWERS) {
      const cs = whole ? a.cs : a.cs.slice(i, i + MAX_ANSWERS), rs = whole ? a.rs : a.rs.slice(i, i + MAX_ANSWERS);
      const ob = whole ? a.ob : a.ob?.slice(i, i + MAX_ANSWERS);
      if (caller === ctx.self) ctx.invoker.onBackupAnswers(ctx.self, primary, cs, rs, ob);
      else {
        const m: InvokeBackupAnswer = { t: Kind.InvokeBackupAnswer, pr: primary, cs, rs };
        if (ob) m.ob = ob;
        ctx.transport.send(caller, m);
      }
    }
  }

  /**
   * The gathered replies: answers, then acks. Answers go first: they are on
   * their calls' paths, the acks are not, and each frame leaves in the order its link got its
   * first message (webrtc_frames.ts).
   */
  #flush(): void {
    const out = this.#out;
    this.#out = null;
    if (!out) return;
    for (const [caller, byPrimary] of out.answers) {
      for (const [primary, a] of byPrimary) this.#answer(caller, primary, a);
    }
    for (const [primary, acks] of out.acks) {
      const items = [...acks.values()];
      for (let i = 0; i < items.length; i += MAX_ACK_ITEMS) {
        const part = items.length <= MAX_ACK_ITEMS ? items : items.slice(i, i + MAX_ACK_ITEMS);
        this.ctx.transport.send(primary, { t: Kind.MapBackupAck, items: part });
      }
    }
  }

  /**
   * Writes of a fill stream, to a copy not (yet) following the primary: held aside and acked
   * as such. A copy that cannot take them (another history) sends no ack, and the primary's
   * writes wait for its snapshot.
   */
  #onStream(from: NodeId, msg: MapBackupOps & { sf: number }, d: PartitionData | undefined): void {
    const ctx = this.ctx;
    const inRow = ctx.partitions.table.replicas[msg.p].includes(ctx.self);
    if (!inRow && !this.isTarget(msg.p)) return;
    if (!inRow) this.touch(msg.p);
    const st = this.fills.onOps(from, msg, d);
    if (!st) return;
    const it: { p: number; e: number; s: number; sf: number; lv?: number } = {
      p: msg.p,
      e: msg.e,
      s: st.last,
      sf: st.first,
    };
    if (st.lv > 0) it.lv = st.lv;
    ctx.transport.send(from, { t: Kind.MapBackupAck, items: [it] });
  }

  #pull(to: NodeId, p: number, e: number, throttle: boolean): void {
    const ctx = this.ctx;
    const now = ctx.clock.now();
    if (throttle && now - (this.#pullAt.get(p) ?? -Infinity) < ctx.config.retransmitMs / 2) return;
    if (this.snapshots.arriving(p, e)) return;
    this.#pullAt.set(p, now);
    ctx.counters.pulls++;
    const d = ctx.data.get(p);
    ctx.transport.send(to, {
      t: Kind.MapSyncPull,
      items: [d ? pullItem(p, e, d) : { p, e, s: 0, l: -1, d0: 0, d1: 0 }],
    });
  }

  /** The primary's checks (and new primaries' history queries): confirm what matches, pull the rest. */
  onChecks(from: NodeId, items: CheckItem[]): void {
    const ctx = this.ctx;
    const acks: Array<{ p: number; e: number; s: number }> = [];
    const pulls: PullItem[] = [];
    let reports = 0;
    for (const it of items) {
      if (it.q) {
        // A new primary asks which history this copy holds: answering changes nothing here.
        if (this.catchUp.maybeNewPrimary(from, it.p, it.e)) {
          pulls.push(this.catchUp.historyReport(it.p, it.e));
          reports++;
        }
        continue;
      }
      if (!this.#fromPrimary(from, it.p, it.e)) continue;
      const inRow = ctx.partitions.table.replicas[it.p].includes(ctx.self);
      if (!inRow && !it.tg) continue;
      if (!inRow) this.touch(it.p);
      const d = ctx.ensureData(it.p);
      const lv = it.lv ?? 0;
      if (lv > d.level) {
        // Per-map backup counts: this replica moved up a rank. Holding fewer maps now, it drops
        // the others (their dedupe records too) and goes on with the same history.
        const keep = ctx.levels.keep(lv);
        if (keep) d.dropMaps(keep);
        d.level = lv;
      }
      // Moved down a rank, it must hold more maps: only a snapshot at its new level brings
      // them with their dedupe records (equal digests are not enough). It pulls with its own
      // level, and the primary answers a pull at another level with that snapshot.
      if (lv < d.level) d.lineage = -1;
      else if (d.seq === it.s && d.digest[0] === it.d0 && d.digest[1] === it.d1) {
        d.follow(it.l, it.e);
        this.fills.applyHeld(it.p, d, it.l);
        if (it.hs) ctx.sealed.set(it.p, { l: it.l, s: it.s });
        acks.push(ackItem(it.p, it.e, d));
        continue;
      }
      // Same history but behind: pull the missing writes. Anything else: diverged, needs a snapshot.
      if (!(d.lineage === it.l && d.seq < it.s)) d.lineage = -1;
      if (this.snapshots.arriving(it.p, it.e)) continue;
      pulls.push(pullItem(it.p, it.e, d));
    }
    if (acks.length) ctx.transport.send(from, { t: Kind.MapBackupAck, items: acks });
    if (pulls.length) {
      ctx.counters.pulls += pulls.length - reports;
      ctx.transport.send(from, { t: Kind.MapSyncPull, items: pulls });
    }
  }

  /** A chunk of a snapshot from the primary; installed when complete. */
  onChunk(from: NodeId, c: MapSnapshotChunk): void {
    const ctx = this.ctx;
    if (!this.#fromPrimary(from, c.p, c.e)) return;
    const inRow = ctx.partitions.table.replicas[c.p].includes(ctx.self);
    if (!inRow && !this.isTarget(c.p)) return;
    if (!inRow) this.touch(c.p);
    const cur = ctx.data.get(c.p);
    if (cur && cur.lineage === c.l && cur.seq >= c.s) {
      // Already at or past this snapshot on the same history (a retransmitted chunk of a
      // transfer that completed): acknowledge it, never go back.
      ctx.transport.send(from, { t: Kind.MapSnapshotAck, p: c.p, sid: c.sid, i: c.i });
      return;
    }
    const snap = this.snapshots.assemble(from, c);
    if (!snap) return;
    const d = ctx.ensureData(c.p);
    d.install(snap, c.l, snap.level ?? 0);
    if (d.digest[0] !== snap.digest[0] || d.digest[1] !== snap.digest[1]) {
      ctx.log.error("map.snapshot.digest_mismatch", { p: c.p, from });
      d.lineage = -1;
      d.historyLineage = -1;
      return;
    }
    d.follow(c.l, c.e);
    // Writes streamed while the snapshot came in go on top of it (fill_stream.ts).
    this.fills.applyHeld(c.p, d, c.l);
    ctx.counters.snapshotsInstalled++;
    ctx.log.debug("map.snapshot.installed", { p: c.p, epoch: c.e, seq: d.seq, entries: d.entryCount, from });
    ctx.transport.send(from, { t: Kind.MapBackupAck, items: [ackItem(c.p, c.e, d)] });
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
  isTarget(p: number): boolean {
    const ctx = this.ctx;
    const t = ctx.partitions.table;
    if (t.migrations.get(p)?.includes(ctx.self)) return true;
    const at = ctx.touched.get(p);
    if (at === undefined) return false;
    if (ctx.clock.now() - at.at < ctx.config.migrationTimeoutMs) return true;
    if (isNewer(t, at) || ctx.partitions.masterActive) return false;
    ctx.partitions.requestTable();
    return true;
  }

  /** The primary touched this member's copy of `p`, which the table does not name here. */
  touch(p: number): void {
    const t = this.ctx.partitions.table;
    this.ctx.touched.set(p, { at: this.ctx.clock.now(), term: t.term, version: t.version });
  }

  /**
   * Ends the fill streams of epochs the table moved past, or of copies this member no longer
   * holds. One whose primary stays primary at a new epoch, with this copy still in its row,
   * is taken into the copy: it holds writes that were acknowledged.
   */
  pruneFills(): void {
    const ctx = this.ctx;
    const t = ctx.partitions.table;
    const holds = (p: number) => t.replicas[p].includes(ctx.self) || ctx.touched.has(p);
    for (const [p, st] of this.fills.ended((p) => t.epochs[p], holds)) {
      if (holds(p) && t.replicas[p][0] === st.from && st.from !== ctx.self) {
        this.fills.retire(p, ctx.ensureData(p), this.snapshots.partial(p, st.l));
      } else this.fills.drop(p);
    }
  }

  /** Tick: drops migration-target copies nobody committed. */
  tick(): void {
    const ctx = this.ctx;
    const t = ctx.partitions.table;
    this.pruneFills();
    for (const p of [...ctx.touched.keys()]) {
      if (t.replicas[p].includes(ctx.self)) ctx.touched.delete(p);
      else if (!this.isTarget(p)) {
        ctx.touched.delete(p);
        ctx.data.delete(p);
        this.snapshots.in.delete(p);
        ctx.sealed.delete(p);
      }
    }
  }
}
