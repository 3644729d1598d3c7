/**
 * The SACK policy Shoal gives werift's SCTP associations (RFC 9260 §6.2: acknowledge at
 * least every second DATA packet, every fourth in a bulk transfer of full packets, a lone
 * packet after a short delay, gaps and duplicates at once). Real werift peers in one process, loopback.
 */
import { afterAll, expect, test } from "bun:test";
import { sackBundlingFigures } from "../src/transport/sack_bundling.ts";
import { bulkPacketsPerSack, sackPolicyFigures, type WebRtcPeer } from "../src/transport/webrtc_peer.ts";
import { openPeerPair, sendBulkFrames } from "./support/webrtc_pair.ts";

const peers: WebRtcPeer[] = [];
afterAll(async () => {
  for (const p of peers) await p.close();
});

const pair = () => openPeerPair(peers);

test("a bulk transfer arrives whole and in order with about one SACK per four DATA packets", async () => {
  const before = sackPolicyFigures();
  const [a, b] = await pair();
  const tuned = sackPolicyFigures();
  expect(tuned.tuned - before.tuned).toBe(2);
  expect(tuned.untuned - before.untuned).toBe(0);
  expect(sackBundlingFigures().untuned).toBe(0);

  const frames = 400, frameBytes = 12_000;
  // Each frame is filled with its index (mod 251), so order and content are checked.
  const received = await sendBulkFrames(a, b, frames, frameBytes);
  expect(received).toEqual(Array.from({ length: frames }, (_, i) => i % 251));

  const after = sackPolicyFigures();
  const data = after.dataPackets - tuned.dataPackets, sacks = after.sacks - tuned.sacks;
  console.log(`SACK policy: ${sacks} SACKs for ${data} DATA packets`);
  // 400 frames of 12,000 bytes are 4,000 DATA packets of 1,200 bytes.
  expect(data).toBeGreaterThanOrEqual(frames * 10 - 10);
  expect(sacks).toBeGreaterThan(0);
  // werift's own policy sends a SACK per DATA packet and RFC 9260's rule one per two; full
  // packets in a row get one per bulkPacketsPerSack (plus delayed ones at the end of bursts).
  expect(bulkPacketsPerSack).toBe(4);
  expect(sacks).toBeLessThan(Math.floor(data / 2));
}, 60_000);

test("a lone message is still acknowledged: request/response keeps flowing", async () => {
  const [a, b] = await pair();
  await new Promise((r) => setTimeout(r, 50));
  const before = sackPolicyFigures();
  b.events.message = (m) => b.send(m);
  for (let i = 0; i < 50; i++) {
    const echoed = await new Promise<Uint8Array>((r) => {
      a.events.message = r;
      a.send(Uint8Array.of(i, 1, 2, 3));
    });
    expect([...echoed]).toEqual([i, 1, 2, 3]);
  }
  // Each request and each echo is a lone packet: acknowledged with the next one or after
  // the short delay, so never fewer than one SACK per two DATA packets.
  await new Promise((r) => setTimeout(r, 100));
  const after = sackPolicyFigures();
  const data = after.dataPackets - before.dataPackets, sacks = after.sacks - before.sacks;
  console.log(`request/response: ${sacks} SACKs for ${data} DATA packets`);
  expect(data).toBeGreaterThanOrEqual(100);
  expect(sacks).toBeGreaterThanOrEqual(Math.floor(data / 2));
}, 60_000);

/** DTLS record content type of application data (every SCTP packet after the handshake). */
const dtlsApplicationData = 23;

/** Counts the SCTP packets (DTLS application data) `peer` sends. */
function countPackets(peer: WebRtcPeer): () => number {
  let n = 0;
  for (const s of peer.udpSockets()) {
    const socket = s as { send: (data: Uint8Array, ...rest: unknown[]) => unknown };
    const send = socket.send.bind(socket);
    socket.send = (data: Uint8Array, ...rest: unknown[]) => {
      if (data[0] === dtlsApplicationData) n++;
      return send(data, ...rest);
    };
  }
  return () => n;
}

test("a reply carries the SACK for its request: one packet per message each way, content and order kept", async () => {
  const [a, b] = await pair();
  await new Promise((r) => setTimeout(r, 50));
  const before = sackBundlingFigures(), sacksBefore = sackPolicyFigures().sacks;
  const sentByA = countPackets(a), sentByB = countPackets(b);
  // b answers each request in the same turn, as a member replies to a frame of calls.
  b.events.message = (m) => b.send(m.map((x) => 255 - x));
  const rounds = 100;
  for (let i = 0; i < rounds; i++) {
    const req = Uint8Array.from({ length: 200 }, (_, k) => (i + k) % 256);
    const reply = await new Promise<Uint8Array>((r) => {
      a.events.message = r;
      a.send(req);
    });
    expect([...reply]).toEqual([...req].map((x) => 255 - x));
  }
  await new Promise((r) => setTimeout(r, 100));
  const after = sackBundlingFigures();
  const bundled = after.bundled - before.bundled, sacks = sackPolicyFigures().sacks - sacksBefore;
  console.log(
    `request/response with bundling: a sent ${sentByA()} packets, b ${sentByB()}, for ${rounds} round trips; ` +
      `${bundled} of ${sacks} SACKs bundled with DATA`,
  );
  expect(after.tuned - before.tuned).toBe(0); // both were tuned when the pair opened
  // Every reply, and every request after the first, carries the SACK for the message before it.
  expect(bundled).toBeGreaterThanOrEqual(Math.floor(rounds * 1.5));
  // werift alone sends a SACK packet for every DATA packet: 2 packets per message. (A few lone
  // SACKs and probes remain: a late turn on a loaded machine lets the delayed-SACK timer fire.)
  expect(sentByB()).toBeLessThanOrEqual(Math.ceil(rounds * 1.5));
  expect(sentByA()).toBeLessThanOrEqual(Math.ceil(rounds * 1.5));
}, 60_000);
