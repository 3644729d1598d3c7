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
});

/** Primary → caller. `s` is "ok" or an error code (see ShoalErrorCode); `r` the result. */
export const InvokeResponseMsg = defineMessage(Kind.InvokeResponse, "InvokeResponse", {
  c: w.str(256),
  a: w.uint(),
  s: w.str(32),
  r: w.any(),
  msg: w.str(512).optional(),
  /**
   * A write answered before its backups acked: the caller counts it acknowledged once each
   * of these members sent InvokeBackupAck for the call.
   */
  bk: w.list(w.id(), 7).optional(),
});

/** Backup → caller: this member applied the writes of these calls, shipped by primary `pr` (see `bk` above). */
export const InvokeBackupAckMsg = defineMessage(Kind.InvokeBackupAck, "InvokeBackupAck", {
  pr: w.id(),
  cs: w.list(w.str(256), 4096),
});

/** A request as the serving side sees it: call id `c`, attempt `a`, epoch `e` in the caller's table. */
export type InvokeRequest = Omit<z.infer<typeof InvokeRequestMsg>, "t">;
export type InvokeResponse = z.infer<typeof InvokeResponseMsg>;
