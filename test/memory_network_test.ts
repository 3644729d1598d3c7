/**
 * MemoryNetwork's crash model: a crashed node's peers see its links go down after
 * `crashLinkDownAfterMs` (never, by default, as with kill -9 and no SCTP abort), and a node
 * revived under the same id keeps the links it makes afterwards.
 */
import { describe, expect, test } from "bun:test";
import { VirtualClock } from "../src/core/clock.ts";
import { Random } from "../src/core/random.ts";
import { MemoryNetwork, type MemoryTransport } from "../src/transport/memory.ts";

function network(crashLinkDownAfterMs: number | null) {
  const clock = new VirtualClock();
  const net = new MemoryNetwork({ clock, rng: new Random(3), crashLinkDownAfterMs });
  const downs: string[] = [];
  const attach = (id: string): MemoryTransport => {
    const t = net.attach(id);
    t.setHandlers({
      message() {},
      linkUp() {},
      linkDown: (peer, reason) => void downs.push(`${id}: ${peer} ${reason}`),
    });
    return t;
  };
  const linked = async (p: Promise<void>) => {
    let done = false;
    void p.then(() => void (done = true));
    for (let i = 0; i < 1000 && !done; i++) await clock.runForAsync(10);
    expect(done).toBe(true);
  };
  return { clock, net, downs, attach, linked };
}

describe("MemoryNetwork.crash", () => {
  test("the peers of a crashed node see its links go down after crashLinkDownAfterMs", async () => {
    const { clock, net, downs, attach, linked } = network(500);
    const [a, b, c] = ["a", "b", "c"].map(attach);
    await linked(a.connect("b"));
    await linked(a.connect("c"));
    net.crash("a");
    await clock.runForAsync(490);
    expect(downs).toEqual([]);
    expect(b.isLinked("a")).toBe(true);
    await clock.runForAsync(20);
    expect(downs.sort()).toEqual(["b: a peer crashed", "c: a peer crashed"]);
    expect(b.isLinked("a") || c.isLinked("a")).toBe(false);
  });

  test("a node revived before that time keeps its new links", async () => {
    const { clock, net, downs, attach, linked } = network(500);
    attach("a");
    const b = attach("b");
    await linked(b.connect("a"));
    net.crash("a");
    const revived = attach("a");
    await linked(revived.connect("b"));
    await clock.runForAsync(600);
    expect(b.isLinked("a")).toBe(true);
    expect(b.endpointOf("a")).toBe(revived);
    expect(downs).toEqual(["b: a peer reconnected"]);
  });

  test("by default (null) the peers never see the links go down", async () => {
    const { clock, net, downs, attach, linked } = network(null);
    attach("a");
    const b = attach("b");
    await linked(b.connect("a"));
    net.crash("a");
    await clock.runForAsync(60_000);
    expect(downs).toEqual([]);
    expect(b.isLinked("a")).toBe(true);
  });
});
