/**
 * The patched werift packet path (src/transport/packet_path.ts) against a standard WebRTC
 * stack: a {@link WebRtcPeer} of this process and an RTCPeerConnection in headless Debian
 * Chromium (playwright-core) on loopback, one negotiated data channel (id 0). Chromium echoes
 * every message; the frames must come back whole and in order, so Chromium's DTLS checked
 * each record this process encrypted, its SCTP stack took the DATA packets and SACKs built
 * here, and werift took Chromium's.
 */
import { afterAll, expect, test } from "bun:test";
import type { Browser } from "playwright-core";
import { packetPathFigures } from "../src/transport/packet_path.ts";
import { sackBundlingFigures } from "../src/transport/sack_bundling.ts";
import { WebRtcPeer } from "../src/transport/webrtc_peer.ts";
import { chromiumPath, hasChromium, launchChromium } from "./support/chromium.ts";
import { sendBulkFrames } from "./support/webrtc_pair.ts";

if (!hasChromium) {
  console.warn(`SKIPPED browser interop test: ${chromiumPath} is missing (apt-get install -y chromium)`);
}

let browser: Browser | undefined;
let peer: WebRtcPeer | undefined;
afterAll(async () => {
  await peer?.close();
  await browser?.close();
});

test.skipIf(!hasChromium)(
  "a werift peer with every patch and Chromium exchange 2.4 MB whole and in order",
  async () => {
    // Host candidates as addresses (not mDNS names werift cannot resolve), loopback included.
    browser = await launchChromium([
      "--disable-features=WebRtcHideLocalIpsWithMdns",
      "--allow-loopback-in-peer-connection",
    ]);
    const page = await browser.newPage();
    await page.setContent("<html><body>interop</body></html>");

    const before = packetPathFigures();
    peer = new WebRtcPeer({ iceServers: [], iceAdditionalHostAddresses: ["127.0.0.1"] });
    const opened = new Promise<void>((r) => (peer!.events.open = r));
    const offer = await peer.createOffer();
    // The page answers, echoes every binary message and waits for ICE gathering (no trickle).
    const answer = await page.evaluate(async (sdp: string) => {
      const pc = new RTCPeerConnection({ iceServers: [] });
      const dc = pc.createDataChannel("shoal", { negotiated: true, id: 0, ordered: true });
      dc.binaryType = "arraybuffer";
      dc.onmessage = (e) => dc.send(e.data);
      (globalThis as unknown as { keep: unknown }).keep = { pc, dc };
      await pc.setRemoteDescription({ type: "offer", sdp });
      await pc.setLocalDescription(await pc.createAnswer());
      await new Promise<void>((r) => {
        if (pc.iceGatheringState === "complete") return r();
        pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && r();
      });
      return pc.localDescription!.sdp;
    }, offer);
    await peer.acceptAnswer(answer);
    await opened;
    const tuned = packetPathFigures(), bundledBefore = sackBundlingFigures().bundled;
    expect(tuned.dataTuned - before.dataTuned).toBe(1);
    expect(tuned.recordsTuned - before.recordsTuned).toBe(1);
    expect(tuned.tsnTuned - before.tsnTuned).toBe(1);

    const frames = 200, frameBytes = 12_000;
    const echoed = await sendBulkFrames(peer, peer, frames, frameBytes);
    expect(echoed).toEqual(Array.from({ length: frames }, (_, i) => i % 251));
    const after = packetPathFigures();
    // 200 frames of 12,000 bytes are 2,000 DATA packets each way: built here in one buffer, or
    // (sack_bundling.ts) behind a pending SACK; lone SACKs were built here too.
    const bundled = sackBundlingFigures().bundled - bundledBefore;
    expect(after.dataPackets - tuned.dataPackets + bundled).toBeGreaterThanOrEqual(frames * 10);
    expect(after.records - tuned.records).toBeGreaterThanOrEqual(frames * 10);
    expect(after.sackPackets - tuned.sackPackets).toBeGreaterThan(0);
  },
  90_000,
);
