/**
 * When the WebRTC transport cuts frames (webrtc_frames.ts): on a quiet connection (at most one
 * DATA chunk unacknowledged, nothing buffered) the messages of one synchronous run leave together
 * in one frame as soon as that run ends, without waiting for the rest of the event-loop turn;
 * while more is unacknowledged or buffered, or when the link's last frame cut at the end of a turn held several messages
 * (traffic in bursts), messages wait for the turn's I/O callbacks and share a frame. Real
 * werift peers in this process, loopback.
 */
import { afterEach, expect, test } from "bun:test";
import { Kind } from "../src/wire/kinds.ts";
import type { Message } from "../src/wire/message.ts";
import "../src/transport/messages.ts";
import { until } from "./support/until.ts";
import { WebRtcNodes } from "./support/webrtc_nodes.ts";

const nodes = new WebRtcNodes();
afterEach(() => nodes.close());

const echo = (seq: number): Message => ({ t: Kind.TestEcho, seq, reply: false });

test(
  "a sparse, idle link sends a run's messages in one frame at the end of the run; otherwise at the end of the turn",
  async () => {
    const a = await nodes.node("a"), b = await nodes.node("b");
    const got: number[] = [];
    b.setHandlers({ message: (_from, m) => got.push(m.seq as number), linkUp() {}, linkDown() {} });
    await a.connect("b");
    // Everything sent so far acknowledged (the delayed SACK leaves after 2 ms).
    await until(() => a.peerOf("b")?.idle || undefined, 10_000, "an idle link");
    const frames0 = a.stats().framesSent;

    const seen: Record<string, number> = {};
    expect(a.send("b", echo(1))).toBe(true);
    expect(a.send("b", echo(2))).toBe(true);
    expect(a.stats().framesSent).toBe(frames0); // not during the run
    setImmediate(() => (seen.immediate = a.stats().framesSent));
    await Promise.resolve();
    seen.microtask = a.stats().framesSent;
    // Its frame is unacknowledged now: the link is busy, and the next messages wait for the turn.
    expect(a.peerOf("b")?.idle).toBe(false);
    expect(a.send("b", echo(3))).toBe(true);
    expect(a.send("b", echo(4))).toBe(true);
    await Promise.resolve();
    await Promise.resolve();
    seen.busyMicrotask = a.stats().framesSent;
    await new Promise((r) => setImmediate(r));
    seen.turn = a.stats().framesSent;

    expect(seen.microtask).toBe(frames0 + 1); // messages 1 and 2, before the turn ended
    expect(seen.busyMicrotask).toBe(frames0 + 1); // 3 and 4 wait
    expect(seen.immediate).toBe(frames0 + 1);
    expect(seen.turn).toBe(frames0 + 2); // 3 and 4 together
    await until(() => got.length >= 4 || undefined, 10_000, "the four messages");

    // That frame held two messages: traffic came in a burst, so even on an idle connection the
    // next message waits for the end of its turn, until a turn's frame holds a single message.
    await until(() => a.peerOf("b")?.idle || undefined, 10_000, "an idle link again");
    expect(a.send("b", echo(5))).toBe(true);
    await Promise.resolve();
    expect(a.stats().framesSent).toBe(frames0 + 2);
    await new Promise((r) => setImmediate(r));
    expect(a.stats().framesSent).toBe(frames0 + 3);
    await until(() => a.peerOf("b")?.idle || undefined, 10_000, "an idle link again");
    expect(a.send("b", echo(6))).toBe(true);
    await Promise.resolve();
    expect(a.stats().framesSent).toBe(frames0 + 4);

    await until(() => got.length >= 6 || undefined, 10_000, "the six messages");
    expect(got).toEqual([1, 2, 3, 4, 5, 6]);
  },
  60_000,
);

test(
  "a message leaves at once while only the last one's SACK is pending (one-way traffic), not while two are",
  async () => {
    const a = await nodes.node("a"), b = await nodes.node("b");
    const seen: Record<string, number | boolean> = {};
    const got: number[] = [];
    const link = () => a.peerOf("b")!;
    b.setHandlers({
      message: (_from, m) => {
        got.push(m.seq as number);
        if (m.seq !== 1) return;
        // b delays the SACK of a lone packet (delayedSackMs) and sends no DATA that could carry
        // it: message 1 is unacknowledged at a while b handles it, as a backup's last ack to a
        // caller is when it sends the next.
        seen.idle = link().idle;
        seen.quiet = link().quiet;
        const frames0 = a.stats().framesSent;
        expect(a.send("b", echo(2))).toBe(true);
        void Promise.resolve().then(() => {
          seen.early = a.stats().framesSent - frames0; // message 2 left at once
          // Now 1 and 2 are in flight: a burst, so message 3 waits for the end of the turn.
          void Promise.resolve().then(async () => {
            // werift counts a frame as buffered until its send completed (a few microtasks).
            while (link().bufferedAmount > 0) await Promise.resolve();
            seen.quietWithTwo = link().quiet;
            const frames1 = a.stats().framesSent;
            expect(a.send("b", echo(3))).toBe(true);
            await Promise.resolve();
            await Promise.resolve();
            seen.burstMicrotask = a.stats().framesSent - frames1;
            await new Promise((r) => setImmediate(r));
            seen.burstTurn = a.stats().framesSent - frames1;
          });
        });
      },
      linkUp() {},
      linkDown() {},
    });
    await a.connect("b");
    await until(() => link().idle || undefined, 10_000, "an idle link");
    expect(a.send("b", echo(1))).toBe(true);
    await until(() => got.length >= 3 || undefined, 10_000, "the three messages");
    expect(got).toEqual([1, 2, 3]);
    expect(seen).toEqual({
      idle: false,
      quiet: true,
      early: 1,
      quietWithTwo: false,
      burstMicrotask: 0,
      burstTurn: 1,
    });
  },
  60_000,
);
