/**
 * Each bounded queue, hit on purpose: pending remote calls on a member (invoker) and bytes
 * queued for one peer on a real WebRTC link. Past each limit the caller gets a clean OVERLOADED error or a refused send,
 * nothing grows further, and the member keeps working once the pressure is gone. (The
 * event-stream and signaling limits are hit in http_app_test.ts and signaling_abuse_test.ts.
 * The per-partition limit on a primary answers OVERLOADED, which callers retry, and has no
 * counter yet, so it is not observable from here.)
 */
import { afterEach, describe, expect, test } from "bun:test";
import { ShoalError } from "../src/core/errors.ts";
import { partitionOf } from "../src/partition/partition_of.ts";
import { Kind } from "../src/wire/kinds.ts";
import { Limits } from "../src/wire/limits.ts";
import { GridHarness, incompleteReplication } from "./support/grid_harness.ts";
import { WebRtcNodes } from "./support/webrtc_nodes.ts";
import "../src/transport/messages.ts";

const P = 7;

function keysOwnedBy(h: GridHarness, owner: string, n: number): string[] {
  const table = h.members.get(owner)!.grid.partitions.table;
  const out: string[] = [];
  for (let i = 0; out.length < n && i < 100_000; i++) {
    if (table.replicas[partitionOf(`k${i}`, P)][0] === owner) out.push(`k${i}`);
  }
  return out;
}

async function settle(h: GridHarness): Promise<void> {
  for (const id of ["a", "b"]) await h.add(id);
  expect(await h.runUntil(() => incompleteReplication(h, P) === null, 60_000)).toBe(true);
}

describe("bounded queues", () => {
  test("pending remote calls: past maxPendingCalls a call fails at once with OVERLOADED", async () => {
    const config = { partitionCount: P, invoke: { maxPendingCalls: 20, attemptTimeoutMs: 500, callTimeoutMs: 5_000 } };
    const h = new GridHarness({ seed: 3, config });
    await settle(h);
    const keys = keysOwnedBy(h, "b", 30);
    h.net.partition([["a"], ["b"]]);
    const a = h.members.get("a")!.grid;
    const map = a.getMap<string, number>("m");
    const outcomes = keys.map((k) => map.get(k).then(() => "ok", (e) => (e as ShoalError).code ?? String(e)));
    await h.run(1);
    expect(a.invoker.pendingCalls).toBe(20);
    h.net.heal();
    const codes = await h.until(Promise.all(outcomes), 30_000);
    expect(codes.filter((c) => c === "OVERLOADED").length).toBe(10);
    expect(codes.filter((c) => c !== "OVERLOADED").every((c) => c === "ok" || c === "TIMEOUT")).toBe(true);
    expect(a.invoker.pendingCalls).toBe(0);
    expect(await h.until(map.set(keys[0], 1).then(() => "ok"))).toBe("ok");
    h.stop();
  }, 60_000);
});

describe("bytes queued for one peer on a real WebRTC link", () => {
  const nodes = new WebRtcNodes();
  afterEach(() => nodes.close());

  test("past 16 MiB queued, send() refuses and counts; the link then drains and still carries messages", async () => {
    const make = (self: string) => nodes.node(self, { connectTimeoutMs: 15_000 });
    const a = await make("a");
    const b = await make("b");
    const got: number[] = [];
    b.setHandlers({
      message: (_f, m) => void got.push((m as unknown as { seq: number }).seq),
      linkUp() {},
      linkDown() {},
    });
    a.setHandlers({ message() {}, linkUp() {}, linkDown() {} });
    await a.connect("b");
    const data = new Uint8Array(256 * 1024);
    let accepted = 0, refused = 0;
    // 40 MiB in one go: far more than the per-peer bound.
    for (let i = 0; i < 160; i++) {
      if (a.send("b", { t: Kind.TestData, seq: i, data })) accepted++;
      else refused++;
    }
    expect(refused).toBeGreaterThan(0);
    expect(accepted * data.byteLength).toBeLessThanOrEqual(Limits.maxQueuedBytesPerPeer + data.byteLength);
    expect(a.queuedBytes("b")).toBeLessThanOrEqual(Limits.maxQueuedBytesPerPeer);
    expect(a.stats().droppedOverflow).toBeGreaterThanOrEqual(refused);
    // The accepted ones arrive, and the link keeps working.
    const start = Date.now();
    while (got.length < accepted && Date.now() - start < 90_000) await new Promise((r) => setTimeout(r, 50));
    expect(got.length).toBe(accepted);
    expect(a.send("b", { t: Kind.TestData, seq: 999, data: new Uint8Array(10) })).toBe(true);
    while (!got.includes(999) && Date.now() - start < 100_000) await new Promise((r) => setTimeout(r, 20));
    expect(got.includes(999)).toBe(true);
  }, 120_000);
});
