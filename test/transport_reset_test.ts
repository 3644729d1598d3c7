/**
 * `WebRtcTransport.reset`: a link wedged below the transport (both ends hold it open, nothing
 * crosses it either way, ICE consent still fresh) is closed at once at one end, without the
 * goodbye that could not cross it, and made again: the peer takes the new offer for the link
 * it still holds open (it drops the old one and answers). Real werift peers in this process,
 * loopback; the wedge replaces each association's outgoing packet path with one that drops.
 */
import { afterEach, expect, test } from "bun:test";
import type { NodeId } from "../src/transport/transport.ts";
import type { WebRtcTransport } from "../src/transport/webrtc.ts";
import { Kind } from "../src/wire/kinds.ts";
import type { Message } from "../src/wire/message.ts";
import "../src/transport/messages.ts";
import { until } from "./support/until.ts";
import { WebRtcNodes } from "./support/webrtc_nodes.ts";

const nodes = new WebRtcNodes();
afterEach(() => nodes.close());

const echo = (seq: number): Message => ({ t: Kind.TestEcho, seq, reply: false });

/** Makes the association of `t`'s link to `peer` drop every packet it sends (DATA and SACK). */
function wedge(t: WebRtcTransport, peer: NodeId): void {
  // deno-lint-ignore no-explicit-any
  const sctp = (t.peerOf(peer)?.sctpTransportForTests() as any)?.sctp;
  expect(typeof sctp?.transport?.send).toBe("function");
  sctp.transport.send = () => Promise.resolve();
}

test("a wedged link is reset at one end and made again; the peer takes the new offer", async () => {
  const a = await nodes.node("a"), b = await nodes.node("b");
  const got = { a: [] as number[], b: [] as number[] };
  const downs: string[] = [];
  a.setHandlers({
    message: (_f, m) => got.a.push(m.seq as number),
    linkUp() {},
    linkDown: (_p, r) => downs.push(`a:${r}`),
  });
  b.setHandlers({
    message: (_f, m) => got.b.push(m.seq as number),
    linkUp() {},
    linkDown: (_p, r) => downs.push(`b:${r}`),
  });
  await a.connect("b");
  a.send("b", echo(1));
  await until(() => got.b.includes(1) || undefined, 10_000, "the first message");

  wedge(a, "b");
  wedge(b, "a");
  a.send("b", echo(2));
  b.send("a", echo(3));
  await new Promise((r) => setTimeout(r, 500));
  expect(got.b).toEqual([1]);
  expect(got.a).toEqual([]);
  expect(a.isLinked("b") && b.isLinked("a")).toBe(true); // both ends still hold it open

  a.reset("b");
  expect(a.isLinked("b")).toBe(false);
  await a.connect("b");
  await until(() => b.isLinked("a") || undefined, 10_000, "b linked again");
  a.send("b", echo(4));
  b.send("a", echo(5));
  await until(() => (got.b.includes(4) && got.a.includes(5)) || undefined, 10_000, "messages over the new link");
  expect(downs).toContain("a:reset");
  expect(downs).toContain("b:peer reconnected");
}, 60_000);
