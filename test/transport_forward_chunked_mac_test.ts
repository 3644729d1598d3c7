/**
 * A relayed message (a Forward with an origin MAC) larger than 16 KiB travels in chunks; the
 * receiver reassembled it into a plain `Uint8Array`, so the untagged byte strings inside `m`
 * (map keys and values) decoded as plain `Uint8Array`s, and the MAC, checked over
 * `encodeValue(f.m)`, was computed over bytes with tag 64: "bad_signature", and a valid message
 * from a listed member was dropped as forged, on every retry (found by an internal review).
 * Frames are now always read from a Buffer view (codec.ts), chunked or not.
 */
import { expect, test } from "bun:test";
import { silentLogger } from "../src/core/log.ts";
import { Reassembler } from "../src/transport/chunks.ts";
import { FrameQueue } from "../src/transport/frame_queue.ts";
import "../src/invoke/messages.ts";
import { admitForward, forwardOf, OriginGuard, OriginSigner } from "../src/transport/origin.ts";
import type { IdBinding, NodeId } from "../src/transport/transport.ts";
import { type FrameHost, LinkFrames } from "../src/transport/webrtc_frames.ts";
import type { Link } from "../src/transport/webrtc_types.ts";
import { encodeValue } from "../src/wire/codec.ts";
import type { Message } from "../src/wire/message.ts";

function fakeLink(peer: NodeId, sent: Uint8Array[]): Link {
  return {
    peer,
    state: "open",
    rtc: {
      send: (b: Uint8Array) => void sent.push(b),
      bufferedAmount: 0,
      quiet: false,
      closed: false,
    } as unknown as Link["rtc"],
    nonce: "",
    key: new Uint8Array(32),
    pending: null,
    path: { kind: "server" },
    progressAt: 0,
    queue: new FrameQueue(),
    reasm: new Reassembler(),
    timer: null,
    waiters: [],
    flushScheduled: false,
    sparse: false,
    waitingLow: false,
    nextChunkId: 0,
    next: null,
  };
}

/** Origin "a" → relay "r" → destination "c", over LinkFrames as the WebRTC transport runs them. */
async function relayOnce(inner: Message) {
  const signerA = new OriginSigner(new Uint8Array(32).fill(1));
  const signerC = new OriginSigner(new Uint8Array(32).fill(3));
  const received: Message[] = [];

  // c: the destination, which checks the origin MAC.
  const guardC = new OriginGuard(signerC);
  const bindingC: IdBinding = {
    fingerprintOf: () => undefined,
    refused: () => {},
    originKeyOf: (id) => (id === "a" ? signerA.publicKey : null),
  };
  const toC: Uint8Array[] = [];
  const linkRC = fakeLink("c", toC); // r's link to c
  const linkCR = fakeLink("r", []); // c's link to r
  // deno-lint-ignore prefer-const
  let framesC: LinkFrames;
  const hostC: FrameHost = {
    self: "c",
    log: silentLogger,
    handlers: () => ({ message: (_f, m) => void received.push(m), linkUp() {}, linkDown() {} }),
    link: (p) => (p === "r" ? linkCR : undefined),
    drop() {},
    onRelay() {},
    onPayload() {},
    admitForward: (f, m) => admitForward(guardC, f, m, bindingC, framesC.stats),
  };
  framesC = new LinkFrames(hostC, {});

  // r: the relay, which passes the Forward on to c.
  const hostR: FrameHost = {
    ...hostC,
    self: "r",
    link: (p) => (p === "c" ? linkRC : undefined),
    admitForward: () => true,
  };
  const framesR = new LinkFrames(hostR, {});
  const linkRA = fakeLink("a", []);

  // a tags the Forward for c (as MemoryTransport/WebRtcTransport.send do through a route).
  const fwd = forwardOf(signerA, "a", "c", signerC.publicKey, inner);
  // a → r: a's LinkFrames queue it; r receives the frames.
  const toR: Uint8Array[] = [];
  const linkAR = fakeLink("r", toR);
  const framesA = new LinkFrames({ ...hostC, self: "a", link: (p) => (p === "r" ? linkAR : undefined) }, {});
  framesA.enqueue(linkAR, fwd);
  await new Promise((r) => setImmediate(r));
  for (const f of toR) framesR.onFrame(linkRA, f);
  await new Promise((r) => setImmediate(r));
  for (const f of toC) framesC.onFrame(linkCR, f);
  return { received, stats: framesC.stats, framesToC: toC.length };
}

function putRequest(valueBytes: number): Message {
  return {
    t: 140,
    c: "client-1/7",
    a: 1,
    p: 12,
    e: 3,
    op: 1,
    // As the map layer builds an op body: key and value are encodeValue's output (Buffers).
    b: { m: "users", k: encodeValue("user:1"), v: encodeValue(new Uint8Array(valueBytes).fill(0x5a)) },
  };
}

test("a small relayed message with byte strings is delivered (control)", async () => {
  const r = await relayOnce(putRequest(1_000));
  expect(r.framesToC).toBe(1);
  expect(r.stats.droppedForged).toBe(0);
  expect(r.received.length).toBe(1);
});

test("a relayed message large enough to be chunked is delivered, not dropped as forged", async () => {
  const r = await relayOnce(putRequest(40_000));
  expect(r.framesToC).toBeGreaterThan(1); // it did travel in chunks
  expect(r.stats.droppedInvalid).toBe(0);
  expect(r.stats.droppedForged).toBe(0);
  expect(r.received.length).toBe(1);
});
