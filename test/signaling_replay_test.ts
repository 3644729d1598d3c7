/**
 * Replay protection without synchronised clocks, on real WebRTC transports: members whose
 * clocks are 10 minutes apart (either way) link and measure the offset; an offer a relay
 * recorded and plays again later is refused by its challenge and leaves the live link
 * alone; and during a secret rotation a member with `previousSecret` links with members
 * that know only the old secret or only the new one.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { type Clock, realClock } from "../src/core/clock.ts";
import type { SignalRelay } from "../src/signaling/messages.ts";
import type { WebRtcTransportOptions } from "../src/transport/webrtc.ts";
import { Kind } from "../src/wire/kinds.ts";
import { WebRtcNodes } from "./support/webrtc_nodes.ts";

const skewed = (skewMs: number): Clock => ({ now: () => realClock.now() + skewMs, setTimer: realClock.setTimer });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const nodes = new WebRtcNodes();
afterEach(() => nodes.close());
const node = (self: string, extra: Partial<WebRtcTransportOptions> = {}) => nodes.node(self, extra);

describe("clocks 10 minutes apart", () => {
  for (const skew of [600_000, -600_000]) {
    test(`a member ${skew > 0 ? "+" : "−"}10 min links either way and both measure the offset`, async () => {
      const a = await node("a");
      const b = await node("b", { clock: skewed(skew) });
      await a.connect("b");
      expect(a.isLinked("b")).toBe(true);
      // a offered: it measured b through the hello/challenge round trip, b measured a from the offer.
      expect(Math.abs(a.clockOffsets().b.offsetMs - skew)).toBeLessThan(1_000);
      expect(Math.abs(b.clockOffsets().a.offsetMs + skew)).toBeLessThan(1_000);
      expect(a.signalingCounters().refused + b.signalingCounters().refused).toBe(0);
      // And the other way round on a fresh pair.
      const c = await node("c", { clock: skewed(skew) });
      await c.connect("a");
      expect(Math.abs(c.clockOffsets().a.offsetMs + skew)).toBeLessThan(1_000);
      expect(Math.abs(a.clockOffsets().c.offsetMs - skew)).toBeLessThan(1_000);
    }, 60_000);
  }
});

describe("replays", () => {
  test(
    "an offer recorded by a relay and played again is refused by its challenge; the live link stays up",
    async () => {
      const recorded: SignalRelay[] = [];
      const a = await node("a");
      const r = await node("r", {
        relayHook: (m) => {
          if ((m.d as { t: number }).t === Kind.SignalOffer) recorded.push(structuredClone(m));
          return m;
        },
      });
      const b = await node("b");
      await a.connect("r");
      await b.connect("r");
      await a.connect("b", { via: "r" });
      expect(recorded.length).toBe(1);
      expect(b.isLinked("a")).toBe(true);
      const downs: string[] = [];
      b.setHandlers({ message() {}, linkUp() {}, linkDown: (peer, reason) => downs.push(`${peer}: ${reason}`) });
      // The relay plays the offer again, at once and later: b refuses it each time.
      const before = b.signalingCounters().refused;
      for (let i = 0; i < 3; i++) {
        (r as unknown as { send(to: string, m: unknown): boolean }).send("b", { ...recorded[0], t: Kind.SignalRelay });
        await sleep(300);
      }
      expect(b.signalingCounters().refused).toBe(before + 3);
      expect(b.signalingCounters().lastRefusal).toContain("challenge");
      expect(b.isLinked("a")).toBe(true);
      expect(downs).toEqual([]);
    },
    60_000,
  );
});

describe("secret rotation", () => {
  test(
    "a member with the new secret and the previous one links with old-only and new-only members, both ways",
    async () => {
      const rotated = await node("m", { secret: "new", previousSecret: "old" });
      await node("o", { secret: "old" });
      const newOnly = await node("n", { secret: "new" });
      await rotated.connect("o"); // refused under "new", retried under "old"
      await newOnly.connect("m");
      const oldOnly2 = await node("p", { secret: "old" });
      await oldOnly2.connect("m"); // answered under "old"
      expect(rotated.links().sort()).toEqual(["n", "o", "p"]);
      // Members with different secrets and no rotation still do not link.
      const err = await newOnly.connect("o").catch((e) => e);
      expect(err.code).toBe("AUTH_FAILED");
    },
    60_000,
  );
});
