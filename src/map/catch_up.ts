/**
 * Catch-up, the new primary's history check. A member that just became primary of a
 * partition serves nothing (answers MIGRATING) and checks no follower until it knows that no
 * other replica of its row holds a history ahead of its own, or it pulled that copy. It asks
 * the live replicas of its row which history each holds (a MapSyncCheck item with `q`), and
 * pulls the most advanced copy of its own history (of any history, when its copy holds none)
 * as a snapshot with `up`. With no copy to take after the partition had a primary, the loss
 * is counted and logged (`map.partition.data_lost`) instead of served silently.
 *
 * Both sides live here: the new primary's queries and decision, and the replica's answer
 * (a history report, or its copy).
 */
import type { NodeId } from "../transport/transport.ts";
import { Kind } from "../wire/kinds.ts";
import { type CatchUpState, type HistoryReport, type MapContext, type PrimaryState, push } from "./map_context.ts";
import type { CheckItem, MapSnapshotChunk, PullItem } from "./messages.ts";
import { SNAPSHOT_STALE_RETRANSMITS, type SnapshotTransfers } from "./snapshot_transfer.ts";

export class CatchUp {
  constructor(
    readonly ctx: MapContext,
    readonly snapshots: SnapshotTransfers,
    /** Called when a primary finished catching up and checked its followers (commits what waits). */
    readonly onDone: (prim: PrimaryState) => void,
  ) {}

  // ---- new primary ----------------------------------------------------------------------

  /**
   * Asks the other live replicas of `row` which history they hold (a MapSyncCheck item with
   * `q`); with none to ask, decides at once. Until it is done the primary serves nothing and
   * checks no follower, so no replica is made to follow (or replaced by) a copy that may lack
   * acknowledged writes another replica holds.
   */
  start(prim: PrimaryState, row: readonly NodeId[], hadPrimary: boolean, queries: Map<NodeId, CheckItem[]>): void {
    const ctx = this.ctx;
    const d = ctx.data.get(prim.p)!;
    const now = ctx.clock.now();
    const live = new Set(ctx.view.members().map((m) => m.id));
    const waiting = new Set(row.filter((id) => id !== ctx.self && live.has(id)));
    prim.catchUp = {
      mine: { l: d.historyLineage, e: d.historyEpoch, s: d.seq, lv: d.level },
      hadPrimary,
      waiting,
      answers: new Map(),
      deadline: now + ctx.config.catchUpTimeoutMs,
      sentAt: now,
      source: null,
      sourceAt: now,
    };
    if (waiting.size === 0) return this.#decide(prim);
    for (const id of waiting) push(queries, id, { ...ctx.checkItem(prim, false), q: true });
  }

  /**
   * Whether a replica's copy is ahead of this primary's: the same history further on, or any
   * history when this copy holds none (a fresh copy). Copies of another lineage are not
   * taken whatever their epoch: an epoch orders appointments, not content (two reigns during
   * a split appoint primaries whose histories diverge), and every replica that had to ack a
   * write follows the lineage it acked, so within one reign the seqs of one lineage decide.
   * With per-map backup counts, a copy as far on that holds more maps (a lower level) is
   * ahead too.
   */
  #ahead(a: HistoryReport, mine: CatchUpState["mine"]): boolean {
    if (a.hl === -1) return false;
    if (mine.l === -1) return a.s > 0 || a.n > 0;
    return a.hl === mine.l && (a.s > mine.s || (a.s === mine.s && a.lv < mine.lv));
  }

  /** With every answer in (or the time up): pull the most advanced copy ahead of ours, or serve. */
  #decide(prim: PrimaryState): void {
    const c = prim.catchUp!;
    let best: [NodeId, HistoryReport] | null = null;
    for (const [id, a] of c.answers) {
      if (!this.#ahead(a, c.mine)) continue;
      const b = best?.[1];
      if (!b || a.he > b.he || (a.he === b.he && (a.s > b.s || (a.s === b.s && a.lv < b.lv)))) best = [id, a];
    }
    if (!best) return this.#finish(prim, null);
    c.source = best[0];
    this.#requestCopy(prim, c);
  }

  #requestCopy(prim: PrimaryState, c: CatchUpState): void {
    c.sourceAt = this.ctx.clock.now();
    this.ctx.transport.send(c.source!, {
      t: Kind.MapSyncPull,
      items: [{ p: prim.p, e: prim.epoch, s: 0, l: -1, d0: 0, d1: 0, up: true }],
    });
  }

  #finish(prim: PrimaryState, pulledFrom: NodeId | null): void {
    const ctx = this.ctx;
    const c = prim.catchUp!;
    prim.catchUp = null;
    const d = ctx.data.get(prim.p)!;
    d.follow(prim.lineage, prim.epoch);
    // A backup at a level above 0 holds no entries, and no events, of the maps with fewer
    // backups (replication_levels.ts): their writes up to here that only the old primary held
    // are lost with it, and so are their events. A listener of such a map behind here gets a
    // gap (it went on silently past them; found by an internal review).
    // (A mark this copy took from a snapshot stays covered: one mark over both, a gap too many at worst.)
    if (d.level > 0) {
      const had = d.eventsLost;
      d.eventsLost = { level: Math.max(d.level, had?.level ?? 0), until: Math.max(d.seq, had?.until ?? 0) };
    }
    d.level = 0;
    prim.readBarrier = Math.max(prim.readBarrier, d.seq);
    if (pulledFrom !== null) {
      ctx.counters.catchUpPulls++;
      ctx.log.info("map.primary.caught_up", {
        p: prim.p,
        epoch: prim.epoch,
        from: pulledFrom,
        seq: d.seq,
        entries: d.entryCount,
        before: c.mine.s,
      });
    } else if (c.mine.l === -1 && c.hadPrimary && ![...c.answers.values()].some((a) => a.hl !== -1)) {
      ctx.counters.dataLoss++;
      d.historyLostAt = ctx.clock.now();
      ctx.log.error("map.partition.data_lost", {
        p: prim.p,
        epoch: prim.epoch,
        asked: [...c.answers.keys()],
        silent: [...c.waiting],
      });
    }
    if (c.waiting.size > 0) {
      ctx.counters.catchUpTimeouts++;
      ctx.log.warn("map.primary.catch_up_incomplete", { p: prim.p, epoch: prim.epoch, silent: [...c.waiting] });
    }
    const now = ctx.clock.now();
    const checks = new Map<NodeId, CheckItem[]>();
    for (const f of prim.followers.values()) {
      f.lastCheckAt = now;
      push(checks, f.id, ctx.followerCheck(prim, f));
    }
    ctx.sendChecks(checks);
    ctx.housekeeping.onServing(d, Math.floor(now));
    this.onDone(prim);
  }

  /** Tick of a primary still catching up: re-ask the silent, re-request the copy, or decide. */
  tick(prim: PrimaryState, now: number, live: ReadonlySet<NodeId>, queries: Map<NodeId, CheckItem[]>): void {
    const c = prim.catchUp!;
    for (const id of [...c.waiting]) if (!live.has(id)) c.waiting.delete(id);
    if (c.source !== null) {
      if (!live.has(c.source)) {
        // The source died: take the next best copy (the answers of the others still hold).
        c.answers.delete(c.source);
        c.source = null;
        this.snapshots.in.delete(prim.p);
        return this.#decide(prim);
      }
      if (now - c.sourceAt >= SNAPSHOT_STALE_RETRANSMITS * this.ctx.config.retransmitMs) this.#requestCopy(prim, c);
      return;
    }
    if (c.waiting.size === 0 || now >= c.deadline) return this.#decide(prim);
    if (now - c.sentAt >= this.ctx.config.retransmitMs) {
      c.sentAt = now;
      for (const id of c.waiting) push(queries, id, { ...this.ctx.checkItem(prim, false), q: true });
    }
  }

  /** A replica's answer to a history query (or, from the source, to a copy request it cannot serve). */
  onHistoryReport(from: NodeId, it: PullItem): void {
    const prim = this.ctx.primaries.get(it.p);
    if (!prim || prim.epoch !== it.e || !prim.catchUp) return;
    const c = prim.catchUp;
    if (!c.waiting.has(from) && c.source !== from) return;
    c.waiting.delete(from);
    c.answers.set(from, { hl: it.hl ?? -1, he: it.he ?? -1, s: it.s, n: it.n ?? 0, lv: it.lv ?? 0 });
    if (c.source === from) {
      c.source = null;
      this.snapshots.in.delete(prim.p);
    }
    if (c.source === null && c.waiting.size === 0) this.#decide(prim);
  }

  /** A chunk of a replica's copy this new primary asked for; installed (replacing its own) when complete. */
  onCopyChunk(from: NodeId, c: MapSnapshotChunk): void {
    const ctx = this.ctx;
    const prim = ctx.primaries.get(c.p);
    if (!prim || prim.epoch !== c.e || !prim.catchUp || prim.catchUp.source !== from) return;
    prim.catchUp.sourceAt = ctx.clock.now();
    const snap = this.snapshots.assemble(from, c);
    if (!snap) return;
    const d = ctx.newData(c.p);
    d.install(snap, prim.lineage);
    // This member's own mark of a loss stays (the copy pulled may carry none).
    d.historyLostAt = Math.max(d.historyLostAt, ctx.data.get(c.p)?.historyLostAt ?? -Infinity);
    if (d.digest[0] !== snap.digest[0] || d.digest[1] !== snap.digest[1]) {
      ctx.log.error("map.snapshot.digest_mismatch", { p: c.p, from, catchUp: true });
      prim.catchUp.answers.delete(from);
      prim.catchUp.source = null;
      return this.#decide(prim);
    }
    // Per-map backup counts: the source holds only the maps of its level. Those it does not
    // hold, this copy keeps (their writes after this copy's sequence were never acknowledged:
    // this replica had to ack them, or they had no sync backup at all).
    const srcKeep = ctx.levels.keep(snap.level ?? 0);
    const old = ctx.data.get(c.p);
    if (srcKeep && old) d.adoptMaps(old, (m) => !srcKeep(m));
    ctx.data.set(c.p, d);
    this.#finish(prim, from);
  }

  // ---- replica --------------------------------------------------------------------------

  /**
   * Whether `from` may be the new primary of `p` at epoch `e` as far as this member's table
   * tells (a newer epoch here means it is not).
   */
  maybeNewPrimary(from: NodeId, p: number, e: number): boolean {
    const ctx = this.ctx;
    const t = ctx.partitions.table;
    if (p >= t.partitionCount || from === ctx.self) return false;
    if (e < t.epochs[p]) {
      ctx.counters.staleEpochRejected++;
      return false;
    }
    if (e > t.epochs[p]) {
      ctx.partitions.requestTable();
      return true;
    }
    return t.replicas[p][0] === from;
  }

  /** This member's answer to a history query: the history its copy of `p` holds. */
  historyReport(p: number, e: number): PullItem {
    const d = this.ctx.data.get(p);
    if (!d) return { p, e, s: 0, l: -1, d0: 0, d1: 0, q: true, hl: -1, he: -1, n: 0 };
    const r: PullItem = {
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
    if (d.level > 0) r.lv = d.level;
    return r;
  }

  /** A new primary asks for this member's copy: send it (a snapshot with `up`), or say there is none. */
  onCopyRequest(from: NodeId, it: PullItem): void {
    const ctx = this.ctx;
    if (!this.maybeNewPrimary(from, it.p, it.e)) return;
    const d = ctx.data.get(it.p);
    if (!d || d.historyLineage === -1 || ctx.primaries.has(it.p)) {
      ctx.transport.send(from, { t: Kind.MapSyncPull, items: [{ ...this.historyReport(it.p, it.e), hl: -1 }] });
      return;
    }
    const key = `${it.p}|${from}`;
    const out = this.snapshots.out;
    const cur = out.get(key);
    if (cur && cur.up && cur.epoch === it.e) return this.snapshots.pump(cur);
    if (out.size >= ctx.config.maxSnapshotSessions) return; // the new primary asks again
    out.set(key, this.snapshots.create(it.p, from, it.e, d.historyLineage, d, true));
    this.snapshots.pump(out.get(key)!);
  }
}
