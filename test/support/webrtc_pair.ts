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
