/**
 * The receiving side of a live WebRTC link under attack: generated malformed, truncated,
 * mutated and oversized frames (fast-check) and crafted chunk abuse are injected as raw
 * data-channel messages; each is dropped and counted and the link keeps carrying good
 * messages. Also: frame building, chunk reassembly limits, and the guard that keeps an
 * error event on werift's UDP sockets from killing the process.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fc from "fast-check";
import { SignalingClient } from "../src/signaling/client.ts";
import { createSignalingServer, type SignalingServer } from "../src/signaling/server.ts";
import { CHUNK_BYTES, MAX_CHUNKS, Reassembler, splitIntoChunks } from "../src/transport/chunks.ts";
import { frameOf, FrameQueue } from "../src/transport/frame_queue.ts";
import type { NodeId } from "../src/transport/transport.ts";
import { WebRtcTransport } from "../src/transport/webrtc.ts";
import { guardedUdpErrors } from "../src/transport/webrtc_peer.ts";
import { decodeFrame, encodeFrame, encodeValue } from "../src/wire/codec.ts";
import { Kind } from "../src/wire/kinds.ts";
import { Limits } from "../src/wire/limits.ts";
import type { Message } from "../src/wire/message.ts";
import "../src/transport/messages.ts";
import { until } from "./support/until.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const msgArb: fc.Arbitrary<Message> = fc.oneof(
  fc.record({ t: fc.constant(Kind.TestEcho), seq: fc.nat(), reply: fc.boolean() }),
  fc.record({ t: fc.constant(Kind.TestData), seq: fc.nat(), data: fc.uint8Array({ maxLength: 300 }) }),
);

describe("frames and chunks", () => {
  test("frameOf writes exactly what encodeFrame writes", () => {
    fc.assert(
      fc.property(fc.array(msgArb, { minLength: 1, maxLength: 300 }), (msgs) => {
        const built = frameOf(msgs.map((m) => encodeValue(m)));
        expect(Buffer.from(built).equals(Buffer.from(encodeFrame(msgs)))).toBe(true);
        expect(decodeFrame(built).msgs).toEqual(msgs);
      }),
      { numRuns: 200 },
    );
  });

  test("frameOf: every length of the message list's header, and frames that stay as built", () => {
    const built: [Uint8Array, Uint8Array][] = [];
    for (const n of [1, 23, 24, 255, 256, 4096]) {
      const msgs: Message[] = Array.from({ length: n }, (_, i) => ({ t: Kind.TestEcho, seq: i, reply: i % 2 === 0 }));
      const frame = frameOf(msgs.map((m) => encodeValue(m)));
      const expected = encodeFrame(msgs);
      expect(Buffer.from(frame).equals(Buffer.from(expected))).toBe(true);
      built.push([frame, expected]);
    }
    // Frames come from the runtime's buffer pool: building more must not change earlier ones.
    for (let i = 0; i < 5_000; i++) {
      frameOf([encodeValue({ t: Kind.TestData, seq: i, data: new Uint8Array(200).fill(i) })]);
    }
    for (const [frame, expected] of built) expect(Buffer.from(frame).equals(Buffer.from(expected))).toBe(true);
  });

  test("the frame queue cuts frames near the target size and keeps order", () => {
    const q = new FrameQueue(1_000_000);
    for (let i = 0; i < 2_000; i++) q.push(encodeValue({ t: Kind.TestEcho, seq: i, reply: false }));
    const seqs: number[] = [];
    let frame;
    while ((frame = q.takeFrame(12 * 1024))) {
      expect(frame.byteLength).toBeLessThanOrEqual(12 * 1024 + 8);
      for (const m of decodeFrame(frame).msgs) seqs.push(m.seq as number);
    }
    expect(seqs).toEqual([...Array(2_000).keys()]);
    expect(q.bytes).toBe(0);
    expect(q.fits(1_000_001)).toBe(false);
  });

  test("reassembly accepts in-order chunks and refuses gaps, strays, floods and oversize", () => {
    const bytes = new Uint8Array(CHUNK_BYTES * 3 + 5).map((_, i) => i & 0xff);
    const r = new Reassembler(2, CHUNK_BYTES * 10);
    const chunks = splitIntoChunks(7, bytes);
    expect(chunks.length).toBe(4);
    let out;
    for (const c of chunks) out = r.add(c);
    expect(Buffer.from((out as { done: Uint8Array }).done).equals(Buffer.from(bytes))).toBe(true);
    expect(r.add({ id: 1, i: 1, n: 3, data: new Uint8Array(1) })).toEqual({ invalid: "chunk of an unknown message" });
    expect(r.add({ id: 1, i: 0, n: 3, data: new Uint8Array(1) })).toEqual({ pending: true });
    expect(r.add({ id: 1, i: 2, n: 3, data: new Uint8Array(1) })).toEqual({ invalid: "chunk out of order" });
    expect(r.pending).toBe(0);
    r.add({ id: 2, i: 0, n: 3, data: new Uint8Array(1) });
    r.add({ id: 3, i: 0, n: 3, data: new Uint8Array(1) });
    expect(r.add({ id: 4, i: 0, n: 3, data: new Uint8Array(1) })).toEqual({
      invalid: "too many messages being reassembled",
    });
    expect(r.add({ id: 9, i: 0, n: MAX_CHUNKS + 1, data: new Uint8Array(1) })).toEqual({
      invalid: "chunk index or count out of range",
    });
    const small = new Reassembler(2, 100);
    small.add({ id: 1, i: 0, n: 3, data: new Uint8Array(60) });
    expect(small.add({ id: 1, i: 1, n: 3, data: new Uint8Array(60) })).toEqual({
      invalid: "reassembled message exceeds the size limit",
    });
  });
});

describe("a live WebRTC link under malformed traffic", () => {
  let server: SignalingServer;
  let a: WebRtcTransport, b: WebRtcTransport;
  const clients: SignalingClient[] = [];
  const got: Array<{ from: NodeId; msg: Message }> = [];
  let seq = 1_000_000;

  beforeAll(async () => {
    server = await createSignalingServer({ port: 0 });
    const mk = async (self: string) => {
      const sc = new SignalingClient({ url: server.url, cluster: "fuzz", self });
      await sc.start();
      clients.push(sc);
      return new WebRtcTransport({ self, cluster: "fuzz", secret: "k", signaling: sc });
    };
    a = await mk("a");
    b = await mk("b");
    b.setHandlers({ message: (from, msg) => got.push({ from, msg }), linkUp() {}, linkDown() {} });
    await a.connect("b");
  });

  afterAll(async () => {
    await a.close();
    await b.close();
    for (const c of clients) c.close();
    await server.close();
  });

  /** Sends a good message and waits for it: proves the link still works. */
  async function stillWorks() {
    const s = seq++;
    expect(a.send("b", { t: Kind.TestEcho, seq: s, reply: false })).toBe(true);
    await until(() => got.some((g) => g.msg.seq === s), 20_000, `good message ${s}`, 5);
    expect(a.isLinked("b")).toBe(true);
    expect(b.isLinked("a")).toBe(true);
  }

  test("a message changed after send() arrives as it was when sent", async () => {
    const m = { t: Kind.TestEcho, seq: 77_000, reply: false };
    expect(a.send("b", m)).toBe(true);
    m.seq = 77_001;
    expect(a.send("b", m)).toBe(true);
    await until(() => got.some((g) => g.msg.seq === 77_001), 20_000, "both messages", 5);
    expect(got.filter((g) => g.msg.seq === 77_000 || g.msg.seq === 77_001).map((g) => g.msg.seq)).toEqual([
      77_000,
      77_001,
    ]);
  });

  test("generated junk, truncated and mutated frames are dropped and counted", async () => {
    const good = encodeFrame([{ t: Kind.TestData, seq: 1, data: new Uint8Array(64).fill(9) }, {
      t: Kind.TestEcho,
      seq: 2,
      reply: true,
    }]);
    const sample = fc.oneof(
      fc.uint8Array({ minLength: 1, maxLength: 4096 }).map((b) => ({ what: "junk", bytes: b })),
      fc.integer({ min: 1, max: good.length - 1 }).map((cut) => ({ what: "truncated", bytes: good.slice(0, cut) })),
      fc.tuple(fc.nat(good.length - 1), fc.integer({ min: 1, max: 255 })).map(([i, x]) => ({
        what: "mutated",
        bytes: good.map((v, j) => (j === i ? v ^ x : v)),
      })),
      fc.anything({ maxDepth: 3 }).map((v) => ({ what: "cbor", bytes: encodeValue([1, [v]]) })),
      fc.integer({ min: 129, max: 4000 }).map((n) => ({
        what: "oversized field",
        bytes: encodeValue([1, [{ t: Kind.Forward, from: "x".repeat(n), to: "b", ttl: 1, m: {} }]]),
      })),
    );
    const samples = fc.sample(sample, { numRuns: 300, seed: 42 });
    const before = b.stats();
    const receivedBefore = got.length;
    let mustDrop = 0;
    let maybeDeliver = 0;
    for (const s of samples) {
      const local = decodeFrame(s.bytes);
      if (!local.ok || local.dropped > 0) mustDrop++;
      maybeDeliver += local.msgs.length;
      expect(a.sendRawFrame("b", s.bytes)).toBe(true);
    }
    await stillWorks();
    const after = b.stats();
    expect(after.framesReceived - before.framesReceived).toBe(samples.length + 1);
    expect(after.droppedInvalid - before.droppedInvalid).toBeGreaterThanOrEqual(mustDrop);
    expect(mustDrop).toBeGreaterThan(200);
    // Only messages that validate reach the handler.
    expect(got.length - receivedBefore - 1).toBeLessThanOrEqual(maybeDeliver);
  });

  test("chunk abuse: strays, gaps, floods, garbage inside and an oversized message", async () => {
    const chunk = (id: number, i: number, n: number, data: Uint8Array) =>
      frameOf([encodeValue({ t: Kind.Chunk, id, i, n, data })]);
    const before = b.stats().droppedInvalid;
    let expected = 0;
    a.sendRawFrame("b", chunk(9_001, 1, 3, new Uint8Array(10))); // stray: no chunk 0
    expected++;
    a.sendRawFrame("b", chunk(9_002, 0, 3, new Uint8Array(10)));
    a.sendRawFrame("b", chunk(9_002, 2, 3, new Uint8Array(10))); // gap
    expected++;
    for (let id = 0; id < Limits.maxPartialMessagesPerPeer + 3; id++) {
      a.sendRawFrame("b", chunk(10_000 + id, 0, 5, new Uint8Array(4)));
    }
    expected += 3; // the flood beyond the limit
    for (let id = 0; id < Limits.maxPartialMessagesPerPeer; id++) {
      a.sendRawFrame("b", chunk(10_000 + id, 3, 5, new Uint8Array(4)));
    }
    expected += Limits.maxPartialMessagesPerPeer; // out of order: frees the partials again
    // A complete chunked message whose content is garbage.
    a.sendRawFrame("b", chunk(9_003, 0, 2, new Uint8Array(100).fill(0xff)));
    a.sendRawFrame("b", chunk(9_003, 1, 2, new Uint8Array(100).fill(0xff)));
    expected++;
    await stillWorks();
    expect(b.stats().droppedInvalid - before).toBe(expected);

    // A message that grows past Limits.maxMessageBytes during reassembly is dropped.
    const piece = new Uint8Array(60 * 1024);
    const n = Math.ceil(Limits.maxMessageBytes / piece.byteLength) + 2;
    const before2 = b.stats().droppedInvalid;
    for (let i = 0; i < n; i++) {
      while ((a.peerOf("b")?.bufferedAmount ?? 0) > 256 * 1024) await sleep(1);
      a.sendRawFrame("b", chunk(9_004, i, n, piece));
    }
    await stillWorks();
    // One drop when the limit is crossed, then every later chunk is a stray.
    const limitAt = Math.floor(Limits.maxMessageBytes / piece.byteLength) + 1;
    expect(b.stats().droppedInvalid - before2).toBe(n - limitAt + 1);
  }, 60_000);

  test("a Forward wrapping a Forward or a Chunk is refused; one for a stranger is not delivered", async () => {
    const before = b.stats();
    const inner = { t: Kind.TestEcho, seq: 5, reply: false };
    const forwardToB = (m: unknown) =>
      a.sendRawFrame("b", frameOf([encodeValue({ t: Kind.Forward, from: "a", to: "b", ttl: 1, m })]));
    forwardToB({ t: Kind.Forward, from: "a", to: "b", ttl: 1, m: inner });
    forwardToB({ t: Kind.Chunk, id: 1, i: 0, n: 2, data: new Uint8Array(1) });
    a.sendRawFrame("b", frameOf([encodeValue({ t: Kind.Forward, from: "a", to: "stranger", ttl: 1, m: inner })]));
    await stillWorks();
    const after = b.stats();
    expect(after.droppedInvalid - before.droppedInvalid).toBe(2);
    expect(after.droppedNoRoute - before.droppedNoRoute).toBe(1);
    expect(got.some((g) => g.msg.seq === 5)).toBe(false);
  });

  test("an error event on werift's UDP sockets (as Bun raises for ICMP errors) is absorbed", async () => {
    const sockets = a.peerOf("b")!.udpSockets() as Array<
      { emit(ev: string, e: Error): boolean; listenerCount(ev: string): number }
    >;
    expect(sockets.length).toBeGreaterThan(0);
    const unguarded = sockets.filter((s) => s.listenerCount("error") === 0);
    expect(unguarded.length).toBeGreaterThan(0); // werift itself listens for none
    const before = guardedUdpErrors();
    for (const s of unguarded) {
      expect(() => s.emit("error", Object.assign(new Error("recv ECONNREFUSED"), { code: "ECONNREFUSED" }))).not
        .toThrow();
    }
    expect(guardedUdpErrors() - before).toBe(unguarded.length);
    await stillWorks();
  });
});
