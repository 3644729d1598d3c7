/**
 * Snapshot transfers: a whole copy of a partition cut into chunks, sent with a window of
 * chunks in flight, acknowledged chunk by chunk, resent on a timeout paced by the measured
 * chunk round trip (and at once when a later chunk is acknowledged first), and reassembled
 * aside on the receiving replica until every chunk is in. A primary sends them to replicas
 * that cannot catch up from its log; a replica sends its copy to a new primary that asked
 * for it during catch-up (`up`).
 */
import type { PartitionTable } from "../partition/partition_table.ts";
import type { NodeId } from "../transport/transport.ts";
import { Kind } from "../wire/kinds.ts";
import type { Message } from "../wire/message.ts";
import { held, type MapContext, type PrimaryState } from "./map_context.ts";
import type { MapSnapshotAck, MapSnapshotChunk, MapSnapshotPacked } from "./messages.ts";
import { EVENT_READERS_MS, type PartitionData, type SnapshotData } from "./partition_data.ts";
import { deflatePacked, EntryPacker, unpackEntries } from "./snapshot_codec.ts";

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
export const SNAPSHOT_STALE_RETRANSMITS = 4;

export interface SnapshotOut {
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
  /** The sequence the snapshot is at. */
  seq: number;
  /** The level of the copy sent (replication_levels.ts). */
  level: number;
}

interface SnapshotIn {
  sid: number;
  from: NodeId;
  epoch: number;
  lineage: number;
  n: number;
  s: number;
  d: [number, number];
  /** What each chunk carried, by index. */
  got: Map<number, Pick<SnapshotData, "entries" | "dedupe" | "cw" | "ev" | "ef" | "ex" | "el">>;
  /** Last time a chunk of this transfer arrived (new or resent). */
  lastChunkAt: number;
  /** The partition's idle floor (expiry.ts). */
  fl?: number;
  /** When (this member's clock) the sender began to serve the copy with history missing. */
  lostAt?: number;
  /** The copy's level (replication_levels.ts). */
  lv?: number;
}

/** How long after a copy began to serve with history missing its snapshots still say so (PartitionData `historyLostAt`). */
const LOST_HISTORY_KEPT_MS = 10 * 60_000;
/** Transfers waiting for a free session at most (see SnapshotTransfers.#startWaiting). */
const MAX_SNAPSHOTS_WAITING = 4096;
/** Packed chunks smaller than this are sent as they are (compressing them saves too little). */
const DEFLATE_MIN_BYTES = 1024;
/**
 * While compression does not pay (the recent chunks kept over 7/8 of their bytes), one chunk
 * in this many is still tried, so a member whose data becomes compressible notices.
 */
const DEFLATE_PROBE_EVERY = 16;

/** The transfers one member sends (keyed `p|to`) and receives (keyed by partition). */
export class SnapshotTransfers {
  readonly out = new Map<string, SnapshotOut>();
  readonly in = new Map<number, SnapshotIn>();
  /**
   * Smoothed round trip of snapshot chunks to each member (chunk sent once → its ack), which
   * paces chunk resends. Entries of members that left are dropped on the tick.
   */
  #chunkRtt = new Map<NodeId, { srttMs: number; varMs: number }>();
  #sid = 1;
  /** Transfers (`p|member`) refused while every session was taken, oldest first. */
  #waiting = new Set<string>();
  /** Share of its bytes compression kept for the chunks it was tried on, smoothed (1: none saved). */
  #deflateKept = 0.5;
  /** Chunks sent uncompressed without a try since the last one (see DEFLATE_PROBE_EVERY). */
  #deflateSkipped = 0;

  constructor(readonly ctx: MapContext) {}

  /**
   * Primary side: starts a transfer of its copy to follower `to` (unless one of this history
   * runs, at sequence `minSeq` or above: a fill stream starting past a transfer's base needs
   * a newer snapshot, fill_stream.ts).
   */
  start(prim: PrimaryState, to: NodeId, minSeq = 0): void {
    const ctx = this.ctx;
    const key = `${prim.p}|${to}`;
    const cur = this.out.get(key);
    const f = prim.followers.get(to);
    const level = f?.level ?? 0;
    if (
      cur && cur.epoch === prim.epoch && cur.lineage === prim.lineage && cur.level === level && cur.seq >= minSeq
    ) return;
    if (cur) this.out.delete(key);
    if (this.out.size >= ctx.config.maxSnapshotSessions) {
      // Started as soon as a session ends (and the replica pulls again anyway).
      if (this.#waiting.size < MAX_SNAPSHOTS_WAITING) this.#waiting.add(key);
      return;
    }
    this.#waiting.delete(key);
    const s = this.create(prim.p, to, prim.epoch, prim.lineage, ctx.data.get(prim.p)!, false, level);
    this.out.set(key, s);
    ctx.counters.snapshotsSent++;
    if (f && f.snapshots++ > 0) ctx.counters.snapshotsRestarted++;
    this.pump(s);
  }

  /**
   * A transfer of `d`'s current content to `to`, cut into chunks of about snapshotChunkBytes:
   * to a follower, of the maps a copy at `level` holds; to a new primary (`up`), all of this
   * copy, at its own level.
   */
  create(
    p: number,
    to: NodeId,
    epoch: number,
    lineage: number,
    d: PartitionData,
    up: boolean,
    level = 0,
  ): SnapshotOut {
    const lv = up ? d.level : level;
    const keep = up ? undefined : this.ctx.levels.keep(level);
    // The last events go along for the maps a listener read here lately (to a new primary, all):
    // a listener behind the snapshot's point resumes from the copy without a gap.
    const now = this.ctx.clock.now();
    const read = d.eventReaders.size === 0
      ? () => false
      : (m: string) => now - (d.eventReaders.get(m) ?? -Infinity) <= EVENT_READERS_MS;
    const snap = d.snapshotMeta(keep, up ? undefined : read);
    // A retry in doubt outlives no call timeout: a loss older than LOST_HISTORY_KEPT_MS is not passed on.
    const lostAgo = snap.historyLostAt !== undefined && now - snap.historyLostAt < LOST_HISTORY_KEPT_MS
      ? Math.floor(now - snap.historyLostAt)
      : undefined;
    // The entries are packed straight from the records, chunk by chunk (snapshot_codec.ts).
    const packer = new EntryPacker(this.ctx.config.snapshotChunkBytes);
    d.snapshotInto(packer, keep);
    packer.cut();
    const chunks: Message[] = [];
    const sizes: number[] = [];
    const sid = this.#sid++;
    // What the last chunk carries besides its entries: the dedupe records (each with its call's
    // result, often a previous value as bytes), the clients' watermarks and the events.
    let lastExtraBytes = 0;
    for (const [callId, , result] of snap.dedupe) {
      lastExtraBytes += callId.length + 16 + (result instanceof Uint8Array ? result.byteLength : 8);
    }
    for (const [client] of snap.cw ?? []) lastExtraBytes += client.length + 16;
    for (const e of snap.ev ?? []) {
      lastExtraBytes += 32 + e[3].length + e[4].byteLength + (e[5]?.byteLength ?? 0) + (e[6]?.byteLength ?? 0);
    }
    for (const m of snap.ex ?? []) lastExtraBytes += m.length + 2;
    for (let i = 0; i < packer.chunks.length; i++) {
      const last = i === packer.chunks.length - 1;
      const data = this.#compress(packer.chunks[i]);
      const c: Message = {
        t: Kind.MapSnapshotPacked,
        p,
        e: epoch,
        l: lineage,
        sid,
        i,
        n: packer.chunks.length,
        s: snap.seq,
        d0: snap.digest[0],
        d1: snap.digest[1],
        data,
        dedupe: last ? snap.dedupe : [],
      };
      if (up) c.up = true;
      if (last && snap.cw) c.cw = snap.cw;
      if (last && snap.ev) (c.ev = snap.ev, c.ef = snap.ef);
      if (last && snap.ex) c.ex = snap.ex;
      if (last && snap.el) c.el = snap.el;
      if (snap.idleFloor) c.fl = snap.idleFloor;
      if (lostAgo !== undefined) c.hl = lostAgo;
      if (lv > 0) c.lv = lv;
      chunks.push(c);
      sizes.push(data.byteLength + 64 + (last ? lastExtraBytes : 0));
    }
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
      progressAt: this.ctx.clock.now(),
      resentAt: -Infinity,
      backoff: 0,
      up,
      seq: snap.seq,
      level: lv,
    };
  }

  /**
   * A packed chunk (snapshot_codec.ts), compressed when that pays: the bytes of a transfer
   * cost CPU per packet on both ends of the link, far more than level-1 DEFLATE costs. Data
   * that does not compress (already compressed or random values) is detected from the chunks
   * tried and then tried once every DEFLATE_PROBE_EVERY chunks only.
   */
  #compress(packed: Uint8Array): Uint8Array {
    if (packed.byteLength < DEFLATE_MIN_BYTES) return packed;
    if (this.#deflateKept > 0.875 && ++this.#deflateSkipped < DEFLATE_PROBE_EVERY) return packed;
    this.#deflateSkipped = 0;
    const z = deflatePacked(packed);
    this.#deflateKept = 0.75 * this.#deflateKept + 0.25 * (z ? z.byteLength / packed.byteLength : 1);
    if (!z) return packed;
    this.ctx.counters.snapshotChunksDeflated++;
    return z;
  }

  /** Drops an unfinished transfer (counted in snapshotsAbandoned). */
  drop(key: string): void {
    if (this.out.delete(key)) this.ctx.counters.snapshotsAbandoned++;
    this.#startWaiting();
  }

  /**
   * Starts transfers that found every session taken, while sessions are free: otherwise each
   * waited for its replica's next pull (a retransmit interval), and filling many new backups
   * at once (a cluster forming) ran at maxSnapshotSessions per interval.
   */
  #startWaiting(): void {
    const ctx = this.ctx;
    for (const key of this.#waiting) {
      if (this.out.size >= ctx.config.maxSnapshotSessions) return;
      this.#waiting.delete(key);
      const bar = key.indexOf("|");
      const prim = ctx.primaries.get(Number(key.slice(0, bar)));
      const to = key.slice(bar + 1);
      const f = prim?.followers.get(to);
      if (!prim || !f || f.confirmed || prim.catchUp || this.out.has(key) || held(f, ctx.clock.now())) continue;
      this.start(prim, to);
    }
  }

  /** Drops the transfers of `p` (its primary was demoted). */
  dropPartition(p: number): void {
    for (const [key, s] of this.out) if (s.p === p) this.drop(key);
  }

  /** A new table: transfers whose epoch it overtook are dropped. */
  onTable(t: PartitionTable): void {
    for (const [key, s] of this.out) {
      if (s.up ? t.epochs[s.p] > s.epoch : this.ctx.primaries.get(s.p)?.epoch !== s.epoch) this.drop(key);
    }
  }

  /** Sends the chunks of the window (the first `snapshotWindow` unacknowledged ones) not sent yet. */
  pump(s: SnapshotOut): void {
    let inFlight = 0;
    for (let i = 0; i < s.chunks.length && inFlight < this.ctx.config.snapshotWindow; i++) {
      if (s.acked[i]) continue;
      inFlight++;
      if (s.tries[i] === 0) this.#sendChunk(s, i);
    }
  }

  #sendChunk(s: SnapshotOut, i: number): void {
    const counters = this.ctx.counters;
    const now = this.ctx.clock.now();
    if (s.tries[i] === 0) {
      counters.snapshotChunksSent++;
      counters.snapshotChunkBytesSent += s.bytes[i];
      s.firstOrder[i] = s.sends;
    } else {
      counters.snapshotChunksResent++;
      counters.snapshotChunkBytesResent += s.bytes[i];
    }
    s.lastOrder[i] = s.sends++;
    s.sentAt[i] = now;
    s.tries[i]++;
    this.ctx.transport.send(s.to, s.chunks[i]);
  }

  /**
   * How long a transfer to `to` may go without any acknowledged chunk before its oldest
   * unacknowledged chunk is resent: twice the smoothed chunk round trip plus four times its
   * variation, at least retransmitMs (3 × retransmitMs before any measurement).
   */
  #chunkRtoMs(to: NodeId): number {
    const r = this.#chunkRtt.get(to);
    if (!r) return 3 * this.ctx.config.retransmitMs;
    return Math.max(this.ctx.config.retransmitMs, 2 * r.srttMs + 4 * r.varMs);
  }

  /** A MapSnapshotAck from `from`. */
  onAck(from: NodeId, msg: MapSnapshotAck): void {
    const key = `${msg.p}|${from}`;
    const s = this.out.get(key);
    if (!s || s.sid !== msg.sid || msg.i >= s.chunks.length || s.acked[msg.i]) return;
    this.#onChunkAck(s, msg.i);
    if (s.remaining === 0) {
      this.out.delete(key);
      this.#startWaiting();
    }
  }

  /**
   * Chunk `i` of `s` was acknowledged. Links are reliable and ordered, so a chunk sent before
   * `i` was first sent and still unacknowledged was lost (or its ack was): it is resent at
   * once. Nothing else is resent while acks come in: on a slow link the chunks are queued,
   * and copies of them would only lengthen the queue.
   */
  #onChunkAck(s: SnapshotOut, i: number): void {
    const now = this.ctx.clock.now();
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
        this.ctx.counters.snapshotFastResends++;
        this.#sendChunk(s, k);
      }
    }
    this.pump(s);
  }

  /**
   * Tick: transfers to replicas that left the follower set, died or stopped answering are
   * dropped (the replica pulls again if it still needs one), so they cannot hold the session
   * limit; the others resend on their timeout.
   */
  tick(now: number, live: ReadonlySet<NodeId>): void {
    const ctx = this.ctx;
    for (const [key, s] of this.out) {
      const prim = ctx.primaries.get(s.p);
      const giveUpMs = Math.max(
        SNAPSHOT_GIVE_UP_RETRANSMITS * ctx.config.retransmitMs,
        SNAPSHOT_GIVE_UP_RTOS * this.#chunkRtoMs(s.to),
      );
      const stale = !live.has(s.to) || now - s.progressAt > giveUpMs ||
        (s.up
          ? ctx.partitions.table.epochs[s.p] > s.epoch
          : !prim || prim.epoch !== s.epoch || !prim.followers.has(s.to));
      if (stale) this.drop(key);
      else this.#tickTransfer(s, now);
    }
    for (const id of this.#chunkRtt.keys()) if (!live.has(id)) this.#chunkRtt.delete(id);
  }

  /** A transfer without any acknowledged chunk for an rto (doubling per try) resends its oldest unacknowledged chunk. */
  #tickTransfer(s: SnapshotOut, now: number): void {
    const since = Math.max(s.progressAt, s.resentAt);
    if (now - since < this.#chunkRtoMs(s.to) * 2 ** s.backoff) return this.pump(s);
    for (let k = 0; k < s.chunks.length; k++) {
      if (s.acked[k]) continue;
      if (s.tries[k] === 0) break;
      this.#sendChunk(s, k);
      s.resentAt = now;
      s.backoff = Math.min(2, s.backoff + 1);
      break;
    }
    this.pump(s);
  }

  /**
   * Whether a snapshot of `p` under epoch `e` is on its way, so pulling would only start a
   * second transfer. A transfer whose chunks stopped coming (the primary gave up on it, or
   * lost its state) no longer counts: the replica pulls again, keeping the chunks it holds
   * in case the same transfer resumes. Without this a dropped transfer left the replica
   * silent, unconfirmed and blocking every write and migration of the partition, for as
   * long as the epoch lasted.
   */
  arriving(p: number, e: number): boolean {
    const a = this.in.get(p);
    return !!a && a.epoch === e &&
      this.ctx.clock.now() - a.lastChunkAt < SNAPSHOT_STALE_RETRANSMITS * this.ctx.config.retransmitMs;
  }

  /**
   * A received packed chunk as the chunk it stands for, or null when its entries are
   * malformed (dropped, counted in snapshotChunksInvalid, not acknowledged: a sender that
   * means well sends it again).
   */
  unpack(from: NodeId, msg: MapSnapshotPacked): MapSnapshotChunk | null {
    const entries = unpackEntries(msg.data);
    if (typeof entries === "string") {
      this.ctx.counters.snapshotChunksInvalid++;
      this.ctx.log.debug("map.snapshot.invalid_chunk", { p: msg.p, from, reason: entries });
      return null;
    }
    const { data: _, ...rest } = msg;
    return { ...rest, t: Kind.MapSnapshotChunk, entries };
  }

  /**
   * What arrived so far of the snapshot of `p` under lineage `l` (`complete` when every chunk
   * did): a filling copy that becomes primary keeps it (fill_stream.ts). Null when none.
   */
  partial(p: number, l: number): (SnapshotData & { complete: boolean }) | null {
    const a = this.in.get(p);
    if (!a || a.lineage !== l) return null;
    return { ...this.#collect(a), complete: a.got.size === a.n };
  }

  /** The snapshot the chunks of `a` that arrived make up, in chunk order. */
  #collect(a: SnapshotIn): SnapshotData {
    const snap: SnapshotData = { seq: a.s, digest: a.d, entries: [], dedupe: [] };
    if (a.fl) snap.idleFloor = a.fl;
    if (a.lostAt !== undefined) snap.historyLostAt = a.lostAt;
    if (a.lv) snap.level = a.lv;
    for (let i = 0; i < a.n; i++) {
      const part = a.got.get(i);
      if (!part) continue;
      for (const e of part.entries) snap.entries.push(e);
      for (const e of part.dedupe) snap.dedupe.push(e);
      if (part.cw) (snap.cw ??= []).push(...part.cw);
      if (part.ev && part.ef !== undefined) (snap.ev = part.ev, snap.ef = part.ef);
      if (part.ex) snap.ex = part.ex;
      if (part.el) snap.el = part.el;
    }
    return snap;
  }

  /** Collects a chunk (and acks it); returns the whole snapshot once every chunk is in. */
  assemble(from: NodeId, c: MapSnapshotChunk): SnapshotData | null {
    let a = this.in.get(c.p);
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
        fl: c.fl,
        lostAt: c.hl === undefined ? undefined : this.ctx.clock.now() - c.hl,
        lv: c.lv,
      };
      this.in.set(c.p, a);
    }
    a.lastChunkAt = this.ctx.clock.now();
    if (c.i >= a.n) return null;
    a.got.set(c.i, { entries: c.entries, dedupe: c.dedupe, cw: c.cw, ev: c.ev, ef: c.ef, ex: c.ex, el: c.el });
    this.ctx.transport.send(from, { t: Kind.MapSnapshotAck, p: c.p, sid: c.sid, i: c.i });
    if (a.got.size < a.n) return null;
    this.in.delete(c.p);
    return this.#collect(a);
  }
}
