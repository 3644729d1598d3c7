/** Transport-layer message kinds (1–19). */
import { z } from "zod";
import { Kind } from "../wire/kinds.ts";
import { Limits } from "../wire/limits.ts";
import { defineMessage, w } from "../wire/message.ts";
import { MAX_CHUNKS } from "./chunks.ts";

/** Forward: a message relayed through a member that reaches both ends. `m` is validated again on arrival. */
export const ForwardMsg = defineMessage(Kind.Forward, "Forward", {
  from: w.id(),
  to: w.id(),
  ttl: w.uint().max(4),
  m: w.any(),
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

/** LinkClose: the sender is closing this link on purpose (werift does not tell the peer). */
export const LinkCloseMsg = defineMessage(Kind.LinkClose, "LinkClose", { reason: w.str(200) });
