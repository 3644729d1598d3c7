/**
 * When the WebRTC transport cuts frames (webrtc_frames.ts): on an idle connection (everything
 * sent was acknowledged) the messages of one synchronous run leave together in one frame as
 * soon as that run ends, without waiting for the rest of the event-loop turn; while DATA is
 * unacknowledged, or when the link's last frame cut at the end of a turn held several messages
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
