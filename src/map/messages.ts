/** Map-layer message kinds (100–139): replication to backups, anti-entropy, snapshots. */
import { z } from "zod";
import { Kind } from "../wire/kinds.ts";
import { Limits } from "../wire/limits.ts";
import { defineMessage, w } from "../wire/message.ts";
import { stampSchema } from "./hlc.ts";
import { MAX_EXCLUDED_MAPS } from "./entry_events.ts";
import type { SnapshotEntry } from "./partition_data.ts";

const P = w.uint().max(100_000);
/** Records one logged write may change: a primary refuses a bigger write, and backups would drop it. */
export const MAX_WRITE_EFFECTS = 1000;
const effect = z.object({
  m: w.str(256),
  k: w.bytes().optional(),
  v: w.bytes().nullable().optional(),
  clear: z.boolean().optional(),
  destroy: z.boolean().optional(),
  /** The write's stamp (hlc.ts): milliseconds with a logical fraction. */
  at: stampSchema(),
  ttl: w.uint().optional(),
  mi: w.uint().optional(),
  why: w.uint().max(3).optional(),
  touch: z.boolean().optional(),
  floor: z.boolean().optional(),
});
const entry = z.object({
  seq: w.uint(),
  c: w.str(256).optional(),
  /** The watermark of the call's client (invoke/call_id.ts). */
  w: w.uint().optional(),
  r: w.any(),
  e: w.list(effect, MAX_WRITE_EFFECTS),
  /** The caller, when the members in `ak` answer it themselves (InvokeBackupAnswer). */
  o: w.id().optional(),
  ak: w.list(w.id(), 7).optional(),
  /** A split-brain merge's write: call ids the merged side may have applied (write_log.ts). */
  u: w.list(w.str(256), 1000).optional(),
});

/** Lineage id: names one primary's history (see map_service.ts). */
const L = w.uint();

/**
 * Primary → backup: writes in sequence order, under the primary's ownership epoch `e`, continuing its history `l`.
 * `sf` (a fill stream, backup.ts): to a replica whose copy is still being filled by a snapshot, every write from
 * sequence `sf` on, held aside and applied on top of the snapshot; `lv` the level the writes were filtered at.
 */
export const MapBackupOpsMsg = defineMessage(Kind.MapBackupOps, "MapBackupOps", {
  p: P,
  e: w.uint(),
  l: L,
  ops: w.list(entry, 1024),
  sf: w.uint().min(1).optional(),
  lv: z.number().int().min(0).max(7).optional(),
});
/**
 * Backup → primary: cumulative acks (the replica applied every write up to `s` under epoch
 * `e`), of a copy at level `lv` (per-map backup counts; absent = 0, every map). With `sf`: a
 * fill stream's ack, the replica holds aside every write from `sf` to `s` (backup.ts).
 */
export const MapBackupAckMsg = defineMessage(Kind.MapBackupAck, "MapBackupAck", {
  items: w.list(
    z.object({
      p: P,
      e: w.uint(),
      s: w.uint(),
      lv: z.number().int().min(0).max(7).optional(),
      sf: w.uint().min(1).optional(),
    }),
    10_000,
  ),
});
/**
 * Primary → replica: my lineage, sequence and digest; confirm (ack) if yours match, else pull.
 * `tg` marks a migration target. `hs` (handoff seal, to the member about to become primary):
 * I serve nothing more and my history ends at `s`. `q`: a history query from a member that just became primary
 * and serves nothing yet: answer with a report (a MapSyncPull item with `q`), change nothing.
 */
export const MapSyncCheckMsg = defineMessage(Kind.MapSyncCheck, "MapSyncCheck", {
  items: w.list(
    z.object({
      p: P,
      e: w.uint(),
      l: L,
      s: w.uint(),
      d0: w.uint(),
      d1: w.uint(),
      tg: z.boolean(),
      q: z.boolean().optional(),
      hs: z.boolean().optional(),
      /** Per-map backup counts: the level the digest is of (replication_levels.ts); absent = 0. */
      lv: z.number().int().min(0).max(7).optional(),
    }),
    10_000,
  ),
});
/**
 * Replica → primary: I hold `s` of lineage `l` with this digest; send what I miss (log or
 * snapshot). With `q`: a report answering a history query, `hl`/`he` = the lineage whose
 * history the copy holds and the epoch that drew it (-1: none), `n` = its entries.
 * Primary → replica with `up`: send me your copy (answered with MapSnapshotChunk `up`).
 */
export const MapSyncPullMsg = defineMessage(Kind.MapSyncPull, "MapSyncPull", {
  items: w.list(
    z.object({
      p: P,
      e: w.uint(),
      s: w.uint(),
      l: w.int(),
      d0: w.uint(),
      d1: w.uint(),
      q: z.boolean().optional(),
      hl: w.int().optional(),
      he: w.int().optional(),
      n: w.uint().optional(),
      up: z.boolean().optional(),
      /** With `q`: the level of the copy (replication_levels.ts); absent = 0. */
      lv: z.number().int().min(0).max(7).optional(),
    }),
    10_000,
  ),
});
const MAX_INT = Number.MAX_SAFE_INTEGER;
const isUint = (x: unknown) => typeof x === "number" && Number.isInteger(x) && x >= 0 && x <= MAX_INT;
/** As `stampSchema()`: a finite number in [0, 2^53 − 1]. */
const isStamp = (x: unknown) => typeof x === "number" && x >= 0 && x <= MAX_INT;
const isBytes = (x: unknown) => x instanceof Uint8Array && x.byteLength <= Limits.maxBytesLength;

/**
 * Whether `e` is a snapshot entry: `[map (≤ 256 chars), key bytes, value bytes, version (uint),
 * createdAt, updatedAt]` (stamps), or the same followed by `[ttlMs (uint), maxIdleMs (uint),
 * lastAccessAt (stamp)]`. Exactly the union of those two zod tuples, checked by hand: a
 * snapshot carries one entry per record, and zod's union of tuples cost about 17 µs per entry
 * under Bun (most of the CPU a new backup spent receiving a loaded partition).
 */
export function isSnapshotEntry(e: unknown): e is SnapshotEntry {
  if (!Array.isArray(e) || (e.length !== 6 && e.length !== 9)) return false;
  if (typeof e[0] !== "string" || e[0].length > 256 || !isBytes(e[1]) || !isBytes(e[2])) return false;
  if (!isUint(e[3]) || !isStamp(e[4]) || !isStamp(e[5])) return false;
  return e.length === 6 || (isUint(e[6]) && isUint(e[7]) && isStamp(e[8]));
}
const snapshotEntry = z.custom<SnapshotEntry>(isSnapshotEntry, "invalid snapshot entry");

/** The fields a snapshot chunk carries besides its entries (kinds 104 and 106). */
const chunkFields = {
  p: P,
  e: w.uint(),
  l: L,
  sid: w.uint(),
  i: w.uint(),
  n: w.uint().min(1).max(100_000),
  s: w.uint(),
  d0: w.uint(),
  d1: w.uint(),
  // [call id, seq, result] or, for a write that changed a map, [call id, seq, result, map]; a
  // call that came with a split-brain merge (dedupe_records.ts `x`): [call id, seq, null, "", 1].
  dedupe: w.list(
    z.union([
      z.tuple([w.str(256), w.uint(), w.any()]),
      z.tuple([w.str(256), w.uint(), w.any(), w.str(256)]),
      z.tuple([w.str(256), w.uint(), w.any(), w.str(256), z.literal(1)]),
    ]),
    100_000,
  ),
  /** [client, watermark]: the clients' watermarks the copy knows (dedupe_records.ts), on the last chunk. */
  cw: w.list(z.tuple([w.str(256), w.uint()]), 100_000).optional(),
  up: z.boolean().optional(),
  /** The level of the copy (replication_levels.ts), on chunk 0; absent = 0. */
  lv: z.number().int().min(0).max(7).optional(),
  /** The partition's idle floor (expiry.ts), on chunk 0. */
  fl: stampSchema().optional(),
  /**
   * How long ago (ms, when the snapshot was built) this copy or one it was made from began to serve
   * with history missing (PartitionData `historyLostAt`), within the last 10 minutes.
   */
  hl: w.uint().optional(),
  /**
   * The copy's last entry events, on the last chunk (entry_events.ts EventRing): [seq, index,
   * type (0–6: added, updated, removed, expired, evicted, merged, cleared; 6 since 8 December), map, key, value or null, old
   * value or null], oldest first; `ef`: every event of writes after seq `ef` is among them.
   */
  ev: w.list(
    z.tuple([
      w.uint(),
      w.uint(),
      z.number().int().min(0).max(6),
      w.str(256),
      w.bytes(),
      w.bytes().nullable(),
      w.bytes().nullable(),
    ]),
    100_000,
  ).optional(),
  ef: w.uint().optional(),
  /**
   * Maps whose events up to the snapshot's seq are not in `ev` (the sender left them out: it
   * sends a follower only the maps listened to on it lately); their readers behind it get a gap.
   * Added 7 December; a member that predates it ignores it.
   */
  ex: w.list(w.str(256), MAX_EXCLUDED_MAPS).optional(),
  /**
   * `[level, seq]`: the events of the maps below `level` up to `seq` are not held (the copy became
   * primary holding only the maps of `level` and up); their readers behind `seq` get a gap. Added
   * 8 December; a member that predates it ignores it.
   */
  el: z.tuple([w.uint().max(7), w.uint()]).optional(),
};

/**
 * Primary → replica: one chunk of a partition snapshot, its entries as CBOR tuples. With
 * `up`: replica → new primary, a chunk of the replica's copy the new primary asked for (`e`
 * = the new primary's epoch). No longer sent (MapSnapshotPacked replaced it); still accepted.
 */
export const MapSnapshotChunkMsg = defineMessage(Kind.MapSnapshotChunk, "MapSnapshotChunk", {
  ...chunkFields,
  // [map, key, value, version, createdAt, updatedAt]; version 0 = a tombstone (partition_data.ts). An entry
  // with an expiry adds [ttlMs, maxIdleMs, lastAccessAt].
  entries: w.list(snapshotEntry, 100_000),
});
/**
 * MapSnapshotChunk with its entries packed into one byte string (snapshot_codec.ts): what
 * snapshot transfers send. The receiver unpacks `data` (bounds-checked, exactly the entries
 * kind 104 accepts) before anything else sees the chunk; a chunk that fails is dropped,
 * counted (`snapshotChunksInvalid`) and not acknowledged.
 */
export const MapSnapshotPackedMsg = defineMessage(Kind.MapSnapshotPacked, "MapSnapshotPacked", {
  ...chunkFields,
  data: w.bytes(Limits.maxMessageBytes),
});
/** Replica → primary: chunk `i` of snapshot `sid` arrived. */
export const MapSnapshotAckMsg = defineMessage(Kind.MapSnapshotAck, "MapSnapshotAck", {
  p: P,
  sid: w.uint(),
  i: w.uint(),
});

export type MapBackupOps = z.infer<typeof MapBackupOpsMsg>;
export type MapBackupAck = z.infer<typeof MapBackupAckMsg>;
/** One partition's item of a MapSyncCheck. */
export type CheckItem = z.infer<typeof MapSyncCheckMsg>["items"][number];
/** One partition's item of a MapSyncPull. */
export type PullItem = z.infer<typeof MapSyncPullMsg>["items"][number];
export type MapSnapshotChunk = z.infer<typeof MapSnapshotChunkMsg>;
export type MapSnapshotPacked = z.infer<typeof MapSnapshotPackedMsg>;
export type MapSnapshotAck = z.infer<typeof MapSnapshotAckMsg>;
