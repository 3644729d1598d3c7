/**
 * The invoker's attempt timeout follows the round trips it measured to each primary: a lost
 * request is retried after a few round trips (at least minAttemptTimeoutMs), not after the
 * fixed attemptTimeoutMs, and the retry (same call id) is applied once.
 */
import { describe, expect, test } from "bun:test";
import { partitionOf } from "../src/partition/partition_of.ts";
import { Kind } from "../src/wire/kinds.ts";
import type { Message } from "../src/wire/message.ts";
import { GridHarness } from "./support/grid_harness.ts";

const P = 13;

async function cluster() {
  const h = new GridHarness({
    delayMs: 3,
    config: { partitionCount: P, invoke: { attemptTimeoutMs: 2000, minAttemptTimeoutMs: 100, callTimeoutMs: 20_000 } },
  });
  for (let i = 0; i < 3; i++) await h.add(`n${i}`);
  await h.run(3000);
  return h;
}

/** A key whose primary is not `client`. */
function remoteKey(h: GridHarness, client: string): { key: string; primary: string } {
  const t = h.members.get(client)!.grid.partitions.table;
  for (let i = 0;; i++) {
    const row = t.replicas[partitionOf(`k${i}`, P)];
    if (row[0] !== client) return { key: `k${i}`, primary: row[0] };
  }
}

describe("invoker attempt timeout from measured round trips", () => {
  test("before any answer the fixed bound applies; after answers, a few round trips within the bounds", async () => {
    const h = await cluster();
    const client = h.members.get("n0")!;
    const { key, primary } = remoteKey(h, "n0");
    expect(client.grid.invoker.attemptTimeoutFor(primary)).toBe(2000);
    const map = client.grid.getMap<string, number>("m");
    for (let i = 0; i < 20; i++) await h.until(map.set(key, i));
    const t = client.grid.invoker.attemptTimeoutFor(primary);
    // 3 ms each way: a put's request → answer takes about 6 ms; 2 × (SRTT + 4 RTTVAR) is
    // under the 100 ms floor.
    expect(t).toBe(100);
    h.stop();
  });

  test("a lost request is retried after the derived timeout, and the write applies once", async () => {
    const h = await cluster();
    const client = h.members.get("n0")!;
    const { key, primary } = remoteKey(h, "n0");
    const map = client.grid.getMap<string, number>("m");
    for (let i = 0; i < 20; i++) await h.until(map.set(key, i));
    // The primary loses the next request it gets from n0.
    const target = h.members.get(primary)!;
    let dropped = 0;
    target.router.dispatch = ((orig) => (from: string, msg: Message) => {
      if (msg.t === Kind.InvokeRequest && from === "n0" && dropped === 0) return void dropped++;
      orig(from, msg);
    })(target.router.dispatch.bind(target.router));
    const retriesBefore = client.grid.invoker.stats.retries;
    const start = h.clock.now();
    await h.until(map.set(key, 100));
    const took = h.clock.now() - start;
    expect(dropped).toBe(1);
    expect(client.grid.invoker.stats.retries - retriesBefore).toBe(1);
    // Retried once the 100 ms attempt timeout passed, far from the fixed 2 s.
    expect(took).toBeGreaterThanOrEqual(100);
    expect(took).toBeLessThan(200);
    expect(await h.until(map.get(key))).toBe(100);
    h.stop();
  });

  test("a member that is removed is forgotten: its next attempt waits the fixed bound again", async () => {
    const h = await cluster();
    const client = h.members.get("n0")!;
    const { key, primary } = remoteKey(h, "n0");
    const map = client.grid.getMap<string, number>("m");
    for (let i = 0; i < 5; i++) await h.until(map.set(key, i));
    expect(client.grid.invoker.attemptTimeoutFor(primary)).toBeLessThan(2000);
    h.crash(primary, 100);
    await h.run(3000);
    expect(client.grid.invoker.attemptTimeoutFor(primary)).toBe(2000);
    h.stop();
  });
});
