/** Transport-layer message kinds (1–19). */
import { z } from "zod";
import { Kind } from "../wire/kinds.ts";
import { defineMessage, w } from "../wire/message.ts";

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
