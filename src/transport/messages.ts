/** Transport-layer message kinds (1–19). */
import { z } from "zod";
import { Kind } from "../wire/kinds.ts";
import { Limits } from "../wire/limits.ts";
import { defineMessage, type Message, w } from "../wire/message.ts";
import type { MessageSchema } from "./router.ts";

/**
 * Payload bytes per chunk: a Chunk message with this much data (about 35 bytes of CBOR
 * around it) still fits a 12,000-byte frame, i.e. ten of werift's 1,200-byte SCTP chunks.
 */
export const CHUNK_BYTES = 11_900;
/** Most chunks one message can have. */
export const MAX_CHUNKS = Math.ceil(Limits.maxMessageBytes / CHUNK_BYTES) + 1;

/** Forward: a message relayed through a member that reaches both ends. `m` is validated again on arrival. */
export const ForwardMsg = defineMessage(Kind.Forward, "Forward", {
  from: w.id(),
  to: w.id(),
  ttl: w.uint().max(4),
  m: w.any(),
  /** The origin's Forward counter (origin.ts); with `mac`, absent when the origin could not tag it. */
  n: w.uint().optional(),
  /**
   * HMAC-SHA256, truncated to 16 bytes, over (from, to, n, the bytes of `m`) under the key the
   * origin and `to` derive from their listed keys (origin.ts); checked by `to`.
   */
  mac: w.bytes(16).optional(),
});

/** Test and bench payloads (200–219). */
export const TestEchoMsg = defineMessage(Kind.TestEcho, "TestEcho", { seq: w.uint(), reply: z.boolean() });
export const TestDataMsg = defineMessage(Kind.TestData, "TestData", { seq: w.uint(), data: w.bytes() });

/** Chunk: one piece of a message too large for a frame (see chunks.ts). */
export const ChunkMsg = defineMessage(Kind.Chunk, "Chunk", {
  id: w.uint(),
  i: w.uint(),
  n: w.uint().min(2).max(MAX_CHUNKS),
  data: w.bytes(Limits.maxFrameBytes),
});

/** Longest reason a LinkClose carries. */
export const MAX_CLOSE_REASON = 200;
/** LinkClose: the sender is closing this link on purpose (werift does not tell the peer). */
export const LinkCloseMsg = defineMessage(Kind.LinkClose, "LinkClose", { reason: w.str(MAX_CLOSE_REASON) });

export type Forward = z.infer<typeof ForwardMsg>;
/**
 * A chunk as it travels (see chunks.ts). `data` is widened to any Uint8Array: zod's
 * `instanceof` infers the ArrayBuffer-backed kind, while the codec hands out slices of
 * ArrayBufferLike buffers.
 */
export type ChunkMessage = Omit<z.infer<typeof ChunkMsg>, "data"> & { data: Uint8Array };

/**
 * Whether a message is of `schema`'s kind, narrowing it to that schema's type. Only for
 * messages the transport validated on arrival (every decoded message was checked against
 * the schema of its kind) or built by this member.
 */
export function isKind<S extends MessageSchema>(schema: S, m: Message): m is z.infer<S> & Message {
  let t = kinds.get(schema);
  // zod's `shape` and `value` are getters: read once per schema, not once per message.
  if (t === undefined) kinds.set(schema, t = schema.shape.t.value as number);
  return m.t === t;
}

const kinds = new WeakMap<MessageSchema, number>();

/**
 * The one rule both transports apply to a Forward's inner message (PROTOCOL.md, "Forward"):
 * it must be a valid message, and neither another Forward nor a Chunk (chunks belong to one
 * link and are reassembled there, never relayed).
 */
export function forwardableInner(inner: Message): boolean {
  return inner.t !== Kind.Forward && inner.t !== Kind.Chunk;
}
