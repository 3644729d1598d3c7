/**
 * A relay that cannot pass a SignalRelay on answers with a relayed UNREACHABLE SignalReject
 * whose reason `relay <self> has no link to <to>` reaches 278 characters with 128-character
 * member ids, over SignalReject's 200: the sender dropped it as invalid and its connect() waited
 * out its timeout instead of failing fast (found by an internal review). Reasons are now
 * clipped to their field's limit.
 */
import { expect, test } from "bun:test";
import { realClock } from "../src/core/clock.ts";
import { silentLogger } from "../src/core/log.ts";
import { roomId, rotatingKey } from "../src/wire/envelope.ts";
import { Kind } from "../src/wire/kinds.ts";
import { type Message, validateMessage } from "../src/wire/message.ts";
import "../src/signaling/messages.ts";
import { signHello } from "../src/signaling/challenges.ts";
import { emptyStats } from "../src/transport/transport.ts";
import { LinkSignaling, type LinkTable } from "../src/transport/webrtc_signaling.ts";
import type { Link } from "../src/transport/webrtc_types.ts";

test("the UNREACHABLE reject a relay sends back is a valid SignalReject, whatever the ids' lengths", () => {
  const relayId = "r".repeat(100); // valid member ids: 1–128 characters
  const senderId = "s".repeat(128);
  const targetId = "t".repeat(128);
  const keysOf = (self: string) => ({ room: roomId("c"), ...rotatingKey("c", "secret", undefined, "signal"), self });

  const sent: Message[] = [];
  const backLink = { peer: senderId, state: "open" } as unknown as Link;
  const host = {
    self: relayId,
    keys: keysOf(relayId),
    clock: realClock,
    log: silentLogger,
    stats: emptyStats(),
    signaling: undefined,
    relinks: false,
    maxLinks: 256,
    connectTimeoutMs: 10_000,
    closed: () => false,
    binding: () => undefined,
    get: (peer: string) => (peer === senderId ? backLink : undefined),
    all: () => [backLink],
    size: () => 1,
    enqueue: (_l: Link, m: Message) => (sent.push(m), true),
  } as unknown as LinkTable;
  const relay = new LinkSignaling(host);

  // The sender's hello for the target, relayed through `relay`, which has no link to the target.
  const hello = signHello(keysOf(senderId), targetId);
  relay.onRelay(senderId, { t: Kind.SignalRelay, from: senderId, to: targetId, d: hello });

  expect(host.stats.droppedNoRoute).toBe(1);
  expect(sent.length).toBe(1);
  const reply = sent[0] as Message & { d: unknown };
  expect(reply.t).toBe(Kind.SignalRelay);
  const inner = validateMessage(reply.d);
  expect(inner.ok ? "valid" : inner.reason).toBe("valid");
});
