/** Two werift peers in this process, connected over loopback, for the transport's tests. */
import { WebRtcPeer } from "../../src/transport/webrtc_peer.ts";

/**
 * Connects two new peers (offer → answer, no ICE servers) and resolves once both channels
 * are open. Both are pushed to `peers`, so the test can close them at the end.
 */
export async function openPeerPair(peers: WebRtcPeer[]): Promise<[WebRtcPeer, WebRtcPeer]> {
  const a = new WebRtcPeer({ iceServers: [] }), b = new WebRtcPeer({ iceServers: [] });
  peers.push(a, b);
  const opened = Promise.all([
    new Promise<void>((r) => (a.events.open = r)),
    new Promise<void>((r) => (b.events.open = r)),
  ]);
  await a.acceptAnswer(await b.acceptOffer(await a.createOffer()));
  await opened;
  return [a, b];
}

/**
 * Sends `frames` frames of `frameBytes` bytes from `from`, frame i filled with i % 251, with at
 * most 64 KiB buffered in the channel, and resolves once `to` received them all: the fill byte
 * of each frame in the order they arrived (`to` may be `from` itself when the other end echoes).
 * A frame that arrives changed makes `to`'s message handler throw.
 */
export async function sendBulkFrames(
  from: WebRtcPeer,
  to: WebRtcPeer,
  frames: number,
  frameBytes: number,
): Promise<number[]> {
  const received: number[] = [];
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  to.events.message = (m) => {
    const first = m[0];
    if (m.byteLength !== frameBytes || m.some((x) => x !== first)) throw new Error("frame changed in transit");
    received.push(first);
    if (received.length === frames) done();
  };
  let low: (() => void) | undefined;
  from.events.bufferedLow = () => low?.();
  for (let i = 0; i < frames; i++) {
    while (from.bufferedAmount >= 64 * 1024) await new Promise<void>((r) => (low = r));
    from.send(new Uint8Array(frameBytes).fill(i % 251));
  }
  await finished;
  return received;
}
