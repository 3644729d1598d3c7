/**
 * The selected ICE candidate pair a WebRTC link reports (`GET /cluster` links'
 * `candidateType` and `remoteCandidateType`): read from werift's
 * `RTCIceTransport.getSelectedCandidatePair()`, and "unknown" (counted) when that is not
 * available. Real werift peers, loopback; the NAT lab (test/nat/nat_paths_test.ts) checks
 * srflx and relay pairs.
 */
import { afterAll, describe, expect, test } from "bun:test";
import {
  candidateTypeOf,
  selectedPairOf,
  unknownCandidatePairs,
  type WebRtcPeer,
} from "../src/transport/webrtc_peer.ts";
import { openPeerPair } from "./support/webrtc_pair.ts";

const peers: WebRtcPeer[] = [];
afterAll(async () => {
  for (const p of peers) await p.close();
});

describe("candidateTypeOf", () => {
  test.each([
    ["candidate:1 1 udp 2130706431 10.0.1.2 40000 typ host", "host"],
    ["candidate:2 1 udp 1694498815 198.18.0.11 50000 typ srflx raddr 10.0.1.2 rport 40000", "srflx"],
    ["candidate:3 1 udp 16777215 198.18.0.1 49170 typ relay raddr 198.18.0.12 rport 1024", "relay"],
    ["candidate:4 1 udp 1845501695 198.18.0.12 1024 typ prflx raddr 0.0.0.0 rport 0", "prflx"],
  ])("%s → %s", (line, type) => {
    expect(candidateTypeOf({ candidate: line })).toBe(type as never);
  });

  test.each([
    [null],
    [undefined],
    ["typ host"],
    [{ candidate: 42 }],
    [{ candidate: "candidate:1 1 udp 1 10.0.0.1 1 typ hostile" }],
    [{ candidate: "candidate:1 1 udp 1 10.0.0.1 1" }],
  ])("not a candidate: %p", (c) => {
    expect(candidateTypeOf(c)).toBeUndefined();
  });
});

describe("WebRtcPeer.selectedPair", () => {
  test("two peers on loopback select a host ↔ host pair, and nothing is counted unknown", async () => {
    const before = unknownCandidatePairs();
    const [a, b] = await openPeerPair(peers);
    expect(a.selectedPair()).toEqual({ local: "host", remote: "host" });
    expect(b.selectedPair()).toEqual({ local: "host", remote: "host" });
    expect(unknownCandidatePairs()).toBe(before);
  }, 30_000);
});

describe("selectedPairOf", () => {
  const line = (type: string) => ({ candidate: `candidate:1 1 udp 1 198.18.0.11 5000 typ ${type}` });

  test("reads both ends of the pair", () => {
    const ice = { getSelectedCandidatePair: () => ({ local: line("relay"), remote: line("srflx") }) };
    expect(selectedPairOf(ice)).toEqual({ local: "relay", remote: "srflx" });
  });

  test("null while no pair is selected", () => {
    expect(selectedPairOf({ getSelectedCandidatePair: () => null })).toBeNull();
  });

  test.each([
    ["no ICE transport", undefined],
    ["no such method", {}],
    ["a method that throws", {
      getSelectedCandidatePair: () => {
        throw new Error("closed");
      },
    }],
    ["ends of another shape", {
      getSelectedCandidatePair: () => ({ local: { type: "host" }, remote: { type: "host" } }),
    }],
    ["one end missing", { getSelectedCandidatePair: () => ({ local: line("host") }) }],
  ])("undefined (not as expected): %s", (_, ice) => {
    expect(selectedPairOf(ice)).toBeUndefined();
  });
});
