/** Invocation-layer message kinds (140–159): a call to a partition's primary and its answer. */
import type { z } from "zod";
import { Kind } from "../wire/kinds.ts";
import { defineMessage, w } from "../wire/message.ts";

/**
 * Caller → primary. `c` is the call id (the same on every retry), `a` the attempt, `e` the
 * ownership epoch the caller's table shows (fencing), `b` the op body, validated by the
 * service that owns op `op`. `w`: the caller's watermark, every call of its client
 * numbered below it is answered (invoke/call_id.ts).
 */
export const InvokeRequestMsg = defineMessage(Kind.InvokeRequest, "InvokeRequest", {
  c: w.str(256),
  a: w.uint(),
  p: w.uint().max(100_000),
  e: w.uint(),
  op: w.uint().max(65_535),
  b: w.any(),
  w: w.uint().optional(),
  /**
   * Only on an attempt after one that may have run (sent, and not refused with WRONG_TARGET,
   * STALE_EPOCH, OVERLOADED or QUORUM, which a primary answers only before running a request):
   * ms since the call began. A primary that lost history refuses such a retry it
   * holds no record of when the call began before the loss (map/primary.ts). Absent from members
   * that predate it.
   */
  g: w.uint().optional(),
});

/** Primary → caller. `s` is "ok" or an error code (see ShoalErrorCode); `r` the result. */
export const InvokeResponseMsg = defineMessage(Kind.InvokeResponse, "InvokeResponse", {
  c: w.str(256),
  a: w.uint(),
  s: w.str(32),
  r: w.any(),
  msg: w.str(512).optional(),
  /**
   * Sent only by members older than InvokeBackupAnswer: a write answered before these
   * backups acked it. Such an answer does not count; the caller asks again (same call id)
   * after `backupAckWaitMs`, and is answered once the primary saw their acks.
   */
  bk: w.list(w.id(), 7).optional(),
});

/**
 * Backup → caller, sent only by members older than InvokeBackupAnswer (each paired with an
 * answer naming it in `bk`): this member applied the writes of these calls, shipped by
 * primary `pr`. No longer handled (counted as unhandled).
 */
export const InvokeBackupAckMsg = defineMessage(Kind.InvokeBackupAck, "InvokeBackupAck", {
  pr: w.id(),
  cs: w.list(w.str(256), 4096),
});

/**
 * Backup → caller, in place of the primary's answer: this member applied the writes of these
 * calls, shipped by primary `pr` with each caller and the members that ack it (map/backup.ts).
 * `rs[i]` is call `cs[i]`'s result, as the primary logged it; `ob[i]` the other members that
 * ack that call (absent: none). The caller counts a write acknowledged once every one of its
 * ackers sent this for it. Lists of unequal length are dropped and counted.
 */
export const InvokeBackupAnswerMsg = defineMessage(Kind.InvokeBackupAnswer, "InvokeBackupAnswer", {
  pr: w.id(),
  cs: w.list(w.str(256), 4096),
  rs: w.list(w.any(), 4096),
  ob: w.list(w.list(w.id(), 7), 4096).optional(),
});

/** A request as the serving side sees it: call id `c`, attempt `a`, epoch `e` in the caller's table. */
export type InvokeRequest = Omit<z.infer<typeof InvokeRequestMsg>, "t">;
export type InvokeResponse = z.infer<typeof InvokeResponseMsg>;
export type InvokeBackupAnswer = z.infer<typeof InvokeBackupAnswerMsg>;
