/**
 * Fill streams, the replica's side: a replica whose copy is being filled by a snapshot
 * (a backup created in place, a migration target) receives and acknowledges every new write
 * from the start, as Hazelcast's backup replicas do, instead of holding every write of the
 * partition back until the snapshot is in.
 *
 * - The primary streams every write from `from` on, where `from - 1` is the highest
 *   sequence it had committed when the stream began: the writes at or below it were
 *   acknowledged before this replica was needed for them, so it may lack them (the table
 *   lists it as filling, not as a replica in sync). Every snapshot the primary sends it
 *   afterwards is at or above `from - 1`.
 * - The replica holds the streamed writes aside, in order, and acks them (`sf`): the primary
 *   counts it as holding every write from `from` to the ack, so writes commit while the
 *   snapshot streams in.
 * - When the snapshot is complete it is installed and the writes held aside above it are
 *   applied on top; the copy is then an ordinary replica in sync.
 * - Should the replica become primary before (the old primary died while it was filling),
 *   it keeps what it acknowledged: the chunks of the snapshot that arrived, then the writes
 *   held aside. What the missing chunks held is lost, and counted so (`dataLoss`).
 * - A stream is accepted only on a copy that holds no history or the stream's own, so the
 *   writes held aside always apply on top of what the copy becomes.
 */
import type { NodeId } from "../transport/transport.ts";
import type { MapContext } from "./map_context.ts";
import type { MapBackupOps } from "./messages.ts";
import { type LogEntry, logEntryBytes, type PartitionData, type SnapshotData } from "./partition_data.ts";

/** Writes one stream holds aside at most; past it the replica stops acking (the writes wait for the snapshot). */
export const FILL_STREAM_MAX_OPS = 8192;
/** Bytes (about) all the streams of one member hold aside at most. */
export const FILL_STREAM_MAX_BYTES = 64 * 1024 * 1024;

export interface FillStream {
  /** The primary, its epoch and lineage. */
  from: NodeId;
  e: number;
  l: number;
  /** The first sequence streamed; `ops` holds every write from it to `last`, in order. */
  first: number;
  last: number;
  ops: LogEntry[];
  bytes: number;
  /** The level the primary filtered the writes at (replication_levels.ts). */
  lv: number;
}

export class FillStreams {
  readonly #streams = new Map<number, FillStream>();
  /** Approximate bytes held aside over all streams. */
  #bytes = 0;
  /**
   * Partitions whose copy took in a stream with snapshot chunks missing (see `retire`): if it
   * becomes primary before a snapshot replaces it, those older entries are lost.
   */
  readonly #incomplete = new Set<number>();

  constructor(readonly ctx: MapContext) {}

  get size(): number {
    return this.#streams.size;
  }

  get(p: number): FillStream | undefined {
    return this.#streams.get(p);
  }

  drop(p: number): void {
    const st = this.#streams.get(p);
    if (!st) return;
    this.#bytes -= st.bytes;
    this.#streams.delete(p);
  }

  /**
   * Streamed writes `msg` (with `sf`) from the primary `from`, for copy `d` (undefined: none
   * yet). Holds aside those that continue the stream, and returns the ack to send (null when
   * the copy cannot take a stream).
   */
  onOps(from: NodeId, msg: MapBackupOps & { sf: number }, d: PartitionData | undefined): FillStream | null {
    const ctx = this.ctx;
    if (d && d.historyLineage !== -1 && d.historyLineage !== msg.l) return null;
    let st = this.#streams.get(msg.p);
    const lv = msg.lv ?? 0;
    if (!st || st.e !== msg.e || st.l !== msg.l || st.first !== msg.sf || st.from !== from || st.lv !== lv) {
      this.drop(msg.p);
      st = { from, e: msg.e, l: msg.l, first: msg.sf, last: msg.sf - 1, ops: [], bytes: 0, lv };
      this.#streams.set(msg.p, st);
    }
    for (const op of msg.ops) {
      if (op.seq <= st.last) continue;
      if (op.seq !== st.last + 1) break; // a gap: the primary resends from the ack
      const n = logEntryBytes(op);
      if (st.ops.length >= FILL_STREAM_MAX_OPS || this.#bytes + n > FILL_STREAM_MAX_BYTES) {
        ctx.counters.fillStreamOverflows++;
        break;
      }
      st.ops.push(op);
      st.last = op.seq;
      st.bytes += n;
      this.#bytes += n;
      ctx.counters.fillStreamOps++;
    }
    return st;
  }

  /**
   * Copy `d` of `p` now follows lineage `l` (a snapshot installed, or a check matched): applies the writes held
   * aside above it. A stream of another history is dropped; one that does not reach back to
   * the snapshot (it cannot happen: the primary starts every snapshot at or above the
   * stream's start) is kept until the copy has caught up past it, and counted.
   */
  applyHeld(p: number, d: PartitionData, l: number): void {
    // The copy is the primary's now: whatever it lacked before is in.
    this.#incomplete.delete(p);
    const st = this.#streams.get(p);
    if (!st) return;
    if (st.l !== l) return this.drop(p);
    if (st.first > d.seq + 1) {
      this.ctx.counters.fillStreamGaps++;
      this.ctx.log.error("map.fill_stream.gap", { p, first: st.first, seq: d.seq });
      return;
    }
    for (const op of st.ops) if (op.seq === d.seq + 1) d.applyEntry(op);
    this.drop(p);
  }

  /** Copy `d` of `p` applied writes normally up to its sequence: a stream it caught up past is done. */
  caughtUp(p: number, d: PartitionData): void {
    const st = this.#streams.get(p);
    if (st && st.l === d.lineage && d.seq >= st.last) this.drop(p);
  }

  /**
   * This member becomes primary of `p` while a stream was filling its copy `d`: it keeps
   * every write it acknowledged. `partial`: the chunks of the stream's snapshot that arrived
   * (with `complete` when all did). @returns whether older entries were lost (chunks missing)
   */
  materialize(p: number, d: PartitionData, partial: (SnapshotData & { complete: boolean }) | null): boolean {
    const st = this.#streams.get(p);
    if (!st) return false;
    this.drop(p);
    if (d.historyLineage !== -1 && d.historyLineage !== st.l) return false;
    let lost = false;
    if (!(d.historyLineage === st.l && d.seq >= st.first - 1)) {
      // The chunks that arrived, taken as the state before the stream's first write: an entry
      // they hold a later value of is written again by the stream (in order), one no
      // streamed write touched has the same value at both points.
      const use = partial && partial.seq >= st.first - 1;
      const base = use
        ? { ...partial, seq: st.first - 1 }
        : { seq: st.first - 1, digest: [0, 0] as [number, number], entries: [], dedupe: [], complete: false };
      // Nothing was written before the stream began: nothing can be missing.
      lost = !base.complete && base.seq > 0;
      d.install(base, -1, base.level ?? st.lv);
    }
    for (const op of st.ops) if (op.seq === d.seq + 1) d.applyEntry(op);
    d.historyLineage = st.l;
    d.historyEpoch = st.e;
    this.ctx.counters.fillStreamsMaterialized++;
    return lost;
  }

  /** Whether the stream of `p` holds the write of call `c` (tests only). */
  holdsCall(p: number, c: string): boolean {
    return this.#streams.get(p)?.ops.some((e) => e.c === c) ?? false;
  }

  /** Whether copy `p` is such a copy (and forgets it). */
  takeIncomplete(p: number): boolean {
    return this.#incomplete.delete(p);
  }

  /**
   * The stream of `p` ends while this member keeps its copy `d` under the same primary at a
   * new epoch (a split-brain merge gives every partition one): the writes it acknowledged
   * must stay, so the stream is taken into the copy (as when it becomes primary). The new
   * epoch's streams are then refused (another history), and writes wait for its snapshot.
   */
  retire(p: number, d: PartitionData, partial: (SnapshotData & { complete: boolean }) | null): void {
    if (this.materialize(p, d, partial)) this.#incomplete.add(p);
  }

  /** The streams that ended: of an epoch the table moved past (`epochOf`), or of copies this member no longer holds. */
  ended(epochOf: (p: number) => number, holds: (p: number) => boolean): Array<[number, FillStream]> {
    for (const p of this.#incomplete) if (!holds(p)) this.#incomplete.delete(p);
    return [...this.#streams].filter(([p, st]) => st.e !== epochOf(p) || !holds(p));
  }
}
