/**
 * The retransmission tuning Shoal gives werift's SCTP associations: a lone message whose
 * packet is lost on the wire is sent again by a probe after about two round trips, not after
 * werift's minimum RTO of 1 s (3 s before the first RTT sample). Real werift peers in one
 * process, loopback; the loss is a real one: the DTLS packet never reaches the UDP socket.
 */
import { afterAll, expect, test } from "bun:test";
import { retransmissionFigures, type WebRtcPeer } from "../src/transport/webrtc_peer.ts";
import { openPeerPair } from "./support/webrtc_pair.ts";
import { retransmitTuning } from "../src/transport/retransmit.ts";

/** werift's own RTO.Min: without the tuning, no retransmission comes sooner. */
const weriftMinRtoMs = 1_000;
/** DTLS record content type of application data (every SCTP packet after the handshake). */
const dtlsApplicationData = 23;

const peers: WebRtcPeer[] = [];
afterAll(async () => {
  for (const p of peers) await p.close();
});

const pair = () => openPeerPair(peers);

/**
 * Takes the next `n` SCTP packets (DTLS application data) that `peer` sends off the wire and
 * hands each to `take` with a function that sends it after all.
 */
function takeNextPackets(peer: WebRtcPeer, n: number, take: (send: () => void) => void): () => number {
  let taken = 0;
  for (const s of peer.udpSockets()) {
    const socket = s as { send: (data: Uint8Array, ...rest: unknown[]) => unknown };
    const send = socket.send.bind(socket);
    socket.send = (data: Uint8Array, ...rest: unknown[]) => {
      if (taken < n && data[0] === dtlsApplicationData) {
        taken++;
        take(() => void send(data, ...rest));
        return;
      }
      return send(data, ...rest);
    };
  }
  return () => taken;
}

/** Drops the next `n` SCTP packets that `peer` sends. */
function dropNextPackets(peer: WebRtcPeer, n: number): { dropped: () => number } {
  return { dropped: takeNextPackets(peer, n, () => {}) };
}

/** Holds the next SCTP packet `peer` sends for `ms` before it goes out (a late SACK). */
function delayNextPacket(peer: WebRtcPeer, ms: number): { delayed: () => number } {
  return { delayed: takeNextPackets(peer, 1, (send) => setTimeout(send, ms)) };
}

/** Sends `payload` from a and resolves with the next message a receives (b echoes). */
function echoOf(a: WebRtcPeer, payload: Uint8Array): Promise<Uint8Array> {
  return new Promise<Uint8Array>((r) => {
    a.events.message = r;
    a.send(payload);
  });
}

/** Echo round trips, so both sides have RTT samples before the loss. */
async function warmUp(a: WebRtcPeer, b: WebRtcPeer): Promise<void> {
  b.events.message = (m) => b.send(m);
  for (let i = 0; i < 20; i++) await echoOf(a, Uint8Array.of(i));
  b.events.message = () => {};
  await new Promise((r) => setTimeout(r, 50));
}

/** A new pair with RTT samples on both sides, and the retransmission figures before the test's loss. */
async function warmPair() {
  const [a, b] = await pair();
  await warmUp(a, b);
  return { a, b, before: retransmissionFigures() };
}

/** Sends one small message from a to b and returns the ms until b has it. */
async function timeOneMessage(a: WebRtcPeer, b: WebRtcPeer, payload: Uint8Array): Promise<number> {
  const start = performance.now();
  const got = await new Promise<Uint8Array>((r) => {
    b.events.message = r;
    a.send(payload);
  });
  expect([...got]).toEqual([...payload]);
  return performance.now() - start;
}

test("associations get the retransmission tuning", async () => {
  const before = retransmissionFigures();
  await pair();
  const after = retransmissionFigures();
  expect(after.tuned - before.tuned).toBe(2);
  expect(after.untuned - before.untuned).toBe(0);
}, 60_000);

test("a lone message whose packet is lost arrives after a probe, long before werift's 1 s RTO", async () => {
  const { a, b, before } = await warmPair();
  const loss = dropNextPackets(a, 1);
  const ms = await timeOneMessage(a, b, Uint8Array.of(7, 7, 7));
  const after = retransmissionFigures();
  console.log(`lone message, packet lost once: delivered after ${ms.toFixed(1)} ms`);
  expect(loss.dropped()).toBe(1);
  expect(after.probes - before.probes).toBeGreaterThanOrEqual(1);
  expect(after.probeChunks - before.probeChunks).toBeGreaterThanOrEqual(1);
  expect(ms).toBeLessThan(weriftMinRtoMs);
}, 60_000);

test("a lone message lost twice (the original and the first probe) still arrives before 1 s", async () => {
  const { a, b, before } = await warmPair();
  const loss = dropNextPackets(a, 2);
  const ms = await timeOneMessage(a, b, Uint8Array.of(9, 9));
  const after = retransmissionFigures();
  console.log(
    `lone message, lost twice: delivered after ${ms.toFixed(1)} ms ` +
      `(${after.probes - before.probes} probes, ${after.rtoExpiries - before.rtoExpiries} RTO expiries)`,
  );
  expect(loss.dropped()).toBe(2);
  // The second probe or the tuned RTO sent it the third time.
  expect(after.probes - before.probes + after.rtoExpiries - before.rtoExpiries).toBeGreaterThanOrEqual(2);
  expect(ms).toBeLessThan(weriftMinRtoMs);
}, 60_000);

test("a lost SACK is repaired by the probe: the peer acknowledges the duplicate at once", async () => {
  const { a, b, before } = await warmPair();
  // b's next packet is the (delayed) SACK of a's message.
  const loss = dropNextPackets(b, 1);
  await timeOneMessage(a, b, Uint8Array.of(5));
  await new Promise((r) => setTimeout(r, 300));
  const after = retransmissionFigures();
  expect(loss.dropped()).toBe(1);
  expect(after.probes - before.probes).toBeGreaterThanOrEqual(1);
  // The channel still works both ways, in order.
  b.events.message = (m) => b.send(m);
  for (let i = 0; i < 5; i++) expect([...(await echoOf(a, Uint8Array.of(i, 42)))]).toEqual([i, 42]);
}, 60_000);

test("a probe sent only because the SACK was late is reported as a duplicate and counted as spurious", async () => {
  const { a, b, before } = await warmPair();
  // b's SACK of the next message leaves 150 ms late: a probes, b sees the chunk twice.
  const late = delayNextPacket(b, 150);
  await timeOneMessage(a, b, Uint8Array.of(3, 1));
  await new Promise((r) => setTimeout(r, 400));
  const after = retransmissionFigures();
  expect(late.delayed()).toBe(1);
  expect(after.probes - before.probes).toBeGreaterThanOrEqual(1);
  expect(after.spuriousProbes - before.spuriousProbes).toBeGreaterThanOrEqual(1);
}, 60_000);

test("after a run of duplicate reports, a lost packet is still probed well before the RTO", async () => {
  const { a, b, before } = await warmPair();
  // Six probes in a row reported as duplicates (each SACK leaves 150 ms late): uncapped, the
  // probe wait would double six times, to 64× (the RTO floor, 400 ms, on loopback).
  for (let i = 0; i < 6; i++) {
    const late = delayNextPacket(b, 150);
    await timeOneMessage(a, b, Uint8Array.of(9, i));
    await new Promise((r) => setTimeout(r, 250));
    expect(late.delayed()).toBe(1);
  }
  const mid = retransmissionFigures();
  expect(mid.spuriousProbes - before.spuriousProbes).toBeGreaterThanOrEqual(4);
  const loss = dropNextPackets(a, 1);
  const ms = await timeOneMessage(a, b, Uint8Array.of(9, 9));
  console.log(
    `lone message lost after ${mid.spuriousProbes - before.spuriousProbes} spurious probes: ${ms.toFixed(1)} ms`,
  );
  expect(loss.dropped()).toBe(1);
  expect(retransmissionFigures().probes - mid.probes).toBeGreaterThanOrEqual(1);
  // At most maxSlowdown (4×) a wait of a few ms: far below the RTO floor even on a loaded machine.
  expect(ms).toBeLessThan(retransmitTuning.rtoMinMs / 2);
}, 60_000);

test("request/response traffic wakes no probe timer: it stops once everything is acknowledged", async () => {
  const { a, b } = await warmPair();
  b.events.message = (m) => b.send(m);
  const before = retransmissionFigures();
  // Round trips for at least 200 ms: with a timer left running while DATA comes and goes, it
  // would expire every max(4 ms, 2·SRTT + 2 ms), nearly always only to find the last SACK recent.
  const start = performance.now();
  let trips = 0;
  while (performance.now() - start < 200 || trips < 100) {
    expect([...(await echoOf(a, Uint8Array.of(trips & 255, 1)))]).toEqual([trips & 255, 1]);
    trips++;
  }
  b.events.message = () => {};
  await new Promise((r) => setTimeout(r, 50));
  const after = retransmissionFigures();
  const expiries = after.probeTimerExpiries - before.probeTimerExpiries, probes = after.probes - before.probes;
  console.log(
    `${trips} round trips in ${
      (performance.now() - start).toFixed(0)
    } ms: ${expiries} probe timer expiries, ${probes} probes`,
  );
  // A round trip slower than the probe wait (a stall of this loaded process) probes, as it should;
  // an expiry that finds nothing to send is a wasted wake-up.
  expect(expiries - probes).toBeLessThanOrEqual(2);
}, 60_000);
