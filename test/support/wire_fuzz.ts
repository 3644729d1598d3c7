/**
 * The wire fuzzer behind test/wire_fuzz_test.ts (10^5 frames per CI run) and
 * scripts/fuzz_wire.ts (10^6 and more): generated frames (random bytes, mutated and
 * truncated valid frames, odd CBOR, valid frames of random well-typed messages) go through
 * a data-grid member's real receive path (frame codec → validation → dispatch to its
 * layers) from a linked process that is not a member, and signed descriptions, hellos and
 * challenges mutated at random go through the envelope checks. Nothing may throw out of
 * them, the member's state (partition table, replicas and their digests, map contents)
 * may not change, and the heap stays bounded.
 */
import { Random } from "../../src/core/random.ts";
import { ChallengeBook, checkHelloOrChallenge, signHello } from "../../src/signaling/challenges.ts";
import { checkDescription, type DescriptionKeys, signAnswer, signOffer } from "../../src/signaling/descriptions.ts";
import type { MemoryTransport } from "../../src/transport/memory.ts";
import { encodeFrame, encodeValue } from "../../src/wire/codec.ts";
import { deriveKey, ReplayGuard, roomId } from "../../src/wire/envelope.ts";
import { type Message, registeredKinds } from "../../src/wire/message.ts";
import { randomMessage } from "./arbitrary_message.ts";
import { GridHarness, incompleteReplication } from "./grid_harness.ts";
import "../../src/cluster/messages.ts";
import "../../src/jobs/messages.ts";
import "../../src/signaling/messages.ts";

export interface FuzzResult {
  frames: number;
  /** Messages that decoded, validated and reached the member's layers. */
  dispatched: number;
  /** Frames or messages the codec dropped. */
  dropped: number;
  envelopeChecks: number;
  /** Descriptions, hellos or challenges accepted (must be 0: every one was mutated or unsigned). */
  envelopeAccepted: number;
  /** Errors that escaped the receive path or the checks (must be empty). */
  escapes: string[];
  /** What differs in the member's state afterwards (must be null). */
  stateChange: string | null;
  heapGrowthBytes: number;
}

const FP = "sha-256 F9:84:9F:A6:CB:AD:9C:1E:49:36:84:1F:D6:81:15:29:59:A8:C4:C9:30:A7:E2:0D:6F:11:41:FA:00:A7:0C:5B";
const SDP = `v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=fingerprint:${FP}\r\n`;

function mutate(bytes: Uint8Array, rng: Random): Uint8Array {
  const b = bytes.slice();
  switch (rng.int(4)) {
    case 0: // flip a few bytes
      for (let i = 0, n = 1 + rng.int(4); i < n && b.length > 0; i++) b[rng.int(b.length)] ^= 1 + rng.int(255);
      return b;
    case 1: // truncate
      return b.slice(0, rng.int(b.length + 1));
    case 2: { // splice random bytes in
      const at = rng.int(b.length + 1);
      const junk = Uint8Array.from({ length: 1 + rng.int(16) }, () => rng.int(256));
      const out = new Uint8Array(b.length + junk.length);
      out.set(b.slice(0, at));
      out.set(junk, at);
      out.set(b.slice(at), at + junk.length);
      return out;
    }
    default: // duplicate a slice
      return Uint8Array.from([...b, ...b.slice(rng.int(b.length + 1))]);
  }
}

function junkValue(rng: Random, depth = 0): unknown {
  const r = rng.int(depth > 2 ? 5 : 8);
  return [
    () => null,
    () => rng.int(1e6) - 5e5,
    () => "s".repeat(rng.int(20)),
    () => rng.next() < 0.5,
    () => Uint8Array.from({ length: rng.int(10) }, () => rng.int(256)),
    () => Array.from({ length: rng.int(4) }, () => junkValue(rng, depth + 1)),
    () => ({ t: rng.int(260), x: junkValue(rng, depth + 1) }),
    () => [1, Array.from({ length: rng.int(4) }, () => junkValue(rng, depth + 1))],
  ][r]();
}

/** The member's state that no input from a non-member may change. */
function stateOf(h: GridHarness, id: string): string {
  const g = h.members.get(id)!.grid;
  const reps = g.maps.debugReplicas().map((r) => [r.p, r.primary, r.lineage, r.seq, r.digest[0], r.digest[1]]);
  return JSON.stringify({ table: g.partitions.table.version, replicas: g.partitions.table.replicas, reps });
}

/**
 * Runs the fuzzer.
 * @param frames how many generated frames to deliver
 * @param seed the seed (a failing run is replayed with the same one)
 */
export async function runWireFuzz(frames: number, seed: number): Promise<FuzzResult> {
  const rng = new Random(seed);
  const h = new GridHarness({ seed, config: { partitionCount: 13 } });
  await h.add("a");
  await h.add("b");
  await h.runUntil(() => incompleteReplication(h, 13) === null, 60_000);
  const map = h.members.get("a")!.grid.getMap<string, number>("fuzzed");
  for (let i = 0; i < 50; i++) void map.set(`k${i}`, i);
  await h.run(2_000);
  // The fuzzing process: linked to "a", not a member.
  const x = h.net.attach("x") as MemoryTransport;
  x.setHandlers({ message() {}, linkUp() {}, linkDown() {} });
  void x.connect("a");
  await h.run(10);
  const a = h.members.get("a")!;
  const before = stateOf(h, "a");
  const kinds = registeredKinds().map((k) => k.kind);
  const hints = { ids: ["a", "b", "x", "fuzzed", "k1"] };
  const keys: DescriptionKeys = { room: roomId("c"), key: deriveKey("c", "s", "signal"), self: "b" };
  const theirs: DescriptionKeys = { ...keys, self: "a" };
  const guard = new ReplayGuard(60_000, 10_000);
  const book = new ChallengeBook();
  const result: FuzzResult = {
    frames: 0,
    dispatched: 0,
    dropped: 0,
    envelopeChecks: 0,
    envelopeAccepted: 0,
    escapes: [],
    stateChange: null,
    heapGrowthBytes: 0,
  };
  const escape = (where: string, err: unknown) => {
    if (result.escapes.length < 20) {
      result.escapes.push(`${where}: ${String((err as Error)?.stack ?? err).slice(0, 300)}`);
    }
  };
  // A pool of well-typed messages of every kind (generating one costs about a millisecond).
  const pool: Message[] = [];
  for (let i = 0; pool.length < 3_000 && i < 20_000; i++) {
    const m = randomMessage(kinds[i % kinds.length], rng, hints);
    if (m) pool.push(m);
  }
  const randomValid = () => Array.from({ length: 1 + rng.int(3) }, () => pool[rng.int(pool.length)]);
  const heap0 = process.memoryUsage().heapUsed;
  const stats0 = a.transport.stats();
  for (let i = 0; i < frames; i++) {
    let bytes: Uint8Array;
    const r = rng.next();
    try {
      if (r < 0.3) bytes = Uint8Array.from({ length: rng.int(300) }, () => rng.int(256));
      else if (r < 0.7) bytes = mutate(encodeFrame(randomValid()), rng);
      else if (r < 0.85) bytes = encodeValue([1, Array.from({ length: rng.int(4) }, () => junkValue(rng))]);
      else bytes = encodeFrame(randomValid());
    } catch (err) {
      escape("generator", err);
      continue;
    }
    try {
      a.transport.receive("x", bytes, bytes.byteLength);
    } catch (err) {
      escape("receive", err);
    }
    result.frames++;
    if (i % 10 === 0) {
      // Envelopes: a correctly signed offer, answer or hello, then mutated; never accepted, never a throw.
      result.envelopeChecks++;
      try {
        const ch = book.issue("a", 1000);
        const pick = rng.int(3);
        const d = pick === 0
          ? signOffer(theirs, "b", SDP, 1000, { ch, arrivedMs: 1000 })
          : pick === 1
          ? signAnswer(theirs, "b", SDP, "0".repeat(32), 1000)
          : signHello(theirs, "b");
        // (The SDP itself is not signed, only its fingerprints, which werift's DTLS handshake checks.)
        const fields = Object.keys(d).filter((k) => k !== "t" && k !== "sdp");
        const field = fields[rng.int(fields.length)];
        const v = (d as Record<string, unknown>)[field];
        const changed = {
          ...d,
          [field]: typeof v === "string"
            ? (v.length > 0 ? v.slice(0, -1) + (v.endsWith("0") ? "1" : "0") : "x")
            : typeof v === "number"
            ? v + 1
            : ["sha-256 00"],
        };
        const verdict = pick === 2
          ? checkHelloOrChallenge(changed as never, keys)
          : checkDescription(changed as never, keys, guard, 1000 + i, book);
        if (!("code" in verdict)) result.envelopeAccepted++;
      } catch (err) {
        escape("envelope", err);
      }
    }
    if (i % 1000 === 999) await h.run(5);
  }
  await h.run(1_000);
  const stats1 = a.transport.stats();
  result.dispatched = stats1.messagesReceived - stats0.messagesReceived;
  result.dropped = stats1.droppedInvalid - stats0.droppedInvalid;
  for (const err of h.handlerErrors) escape("handler", err);
  const after = stateOf(h, "a");
  result.stateChange = after === before ? null : `before ${before.slice(0, 300)}\nafter  ${after.slice(0, 300)}`;
  (globalThis as { Bun?: { gc(full: boolean): void } }).Bun?.gc(true);
  result.heapGrowthBytes = process.memoryUsage().heapUsed - heap0;
  h.stop();
  return result;
}
