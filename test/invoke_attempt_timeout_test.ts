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

/** A started cluster, its client n0, a key whose primary is another member, and map "m" on n0. */
async function remoteMap() {
  const h = await cluster();
  const client = h.members.get("n0")!;
  const { key, primary } = remoteKey(h, "n0");
  return { h, client, key, primary, map: client.grid.getMap<string, number>("m") };
}

/** `rounds` puts of `key` from the client, so it has measured round trips to the primary. */
async function warm(h: GridHarness, map: { set(k: string, v: number): Promise<unknown> }, key: string, rounds: number) {
  for (let i = 0; i < rounds; i++) await h.until(map.set(key, i));
}

describe("invoker attempt timeout from measured round trips", () => {
  test("before any answer the fixed bound applies; after answers, a few round trips within the bounds", async () => {
    const { h, client, key, primary, map } = await remoteMap();
    expect(client.grid.invoker.attemptTimeoutFor(primary)).toBe(2000);
    await warm(h, map, key, 20);
    const t = client.grid.invoker.attemptTimeoutFor(primary);
    // 3 ms each way: a put's request → answer takes about 6 ms; 2 × (SRTT + 4 RTTVAR) is
    // under the 100 ms floor.
    expect(t).toBe(100);
    h.stop();
  });

  test("a lost request is retried after the derived timeout, and the write applies once", async () => {
    const { h, client, key, primary, map } = await remoteMap();
    await warm(h, map, key, 20);
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
    const { h, client, key, primary, map } = await remoteMap();
    await warm(h, map, key, 5);
    expect(client.grid.invoker.attemptTimeoutFor(primary)).toBeLessThan(2000);
    h.crash(primary, 100);
    await h.run(3000);
    expect(client.grid.invoker.attemptTimeoutFor(primary)).toBe(2000);
    h.stop();
  });
});

describe("retries that may have run carry the call's age", () => {
  /** Records the InvokeRequests `primary` receives from n0 (`g` of each), dropping the first `drop`. */
  function watch(h: GridHarness, primary: string, opts: { drop?: number; refuse?: number; status?: string } = {}) {
    const seen: Array<{ a: number; g?: number }> = [];
    const target = h.members.get(primary)!;
    const orig = target.router.dispatch.bind(target.router);
    let dropped = 0, refused = 0;
    target.router.dispatch = (from: string, msg: Message) => {
      if (msg.t === Kind.InvokeRequest && from === "n0") {
        seen.push({ a: msg.a as number, g: msg.g as number | undefined });
        if (dropped < (opts.drop ?? 0)) return void dropped++;
        if (refused < (opts.refuse ?? 0)) {
          refused++;
          // Refused without running it.
          return void h.members.get(primary)!.transport.send(from, {
            t: Kind.InvokeResponse,
            c: msg.c,
            a: msg.a,
            s: opts.status ?? "OVERLOADED",
            r: null,
          });
        }
      }
      orig(from, msg);
    };
    return seen;
  }

  test("after an attempt that got no answer, the next carries the call's age", async () => {
    const { h, key, primary, map } = await remoteMap();
    await warm(h, map, key, 5);
    const seen = watch(h, primary, { drop: 1 });
    const start = h.clock.now();
    await h.until(map.set(key, 7));
    expect(seen.length).toBe(2);
    expect(seen[0].g).toBeUndefined();
    expect(seen[1].a).toBe(2);
    expect(seen[1].g).toBeGreaterThan(0);
    expect(seen[1].g).toBeLessThanOrEqual(h.clock.now() - start);
    h.stop();
  });

  test("attempts refused before they ran (OVERLOADED, STALE_EPOCH) leave the next without an age", async () => {
    for (const status of ["OVERLOADED", "STALE_EPOCH"]) {
      const { h, key, primary, map } = await remoteMap();
      await warm(h, map, key, 5);
      const seen = watch(h, primary, { refuse: 2, status });
      await h.until(map.set(key, 8));
      expect(seen.map((x) => x.a)).toEqual([1, 2, 3]);
      expect(seen.every((x) => x.g === undefined)).toBe(true);
      expect(await h.until(map.get(key))).toBe(8);
      h.stop();
    }
  });

  test("an attempt answered MIGRATING may have run (its partition moved before the commit): the next carries the age", async () => {
    const { h, key, primary, map } = await remoteMap();
    await warm(h, map, key, 5);
    const seen = watch(h, primary, { refuse: 1, status: "MIGRATING" });
    await h.until(map.set(key, 9));
    expect(seen.length).toBe(2);
    expect(seen[0].g).toBeUndefined();
    expect(seen[1].g).toBeGreaterThanOrEqual(0);
    h.stop();
  });

  test("once an attempt may have run, later attempts keep the age even after a refusal before running", async () => {
    const { h, key, primary, map } = await remoteMap();
    await warm(h, map, key, 5);
    // The first request is lost (no answer), the second refused OVERLOADED, the third runs.
    const seen: Array<number | undefined> = [];
    const target = h.members.get(primary)!;
    const orig = target.router.dispatch.bind(target.router);
    target.router.dispatch = (from: string, msg: Message) => {
      if (msg.t === Kind.InvokeRequest && from === "n0") {
        seen.push(msg.g as number | undefined);
        if (seen.length === 1) return;
        if (seen.length === 2) {
          return void target.transport.send(from, {
            t: Kind.InvokeResponse,
            c: msg.c,
            a: msg.a,
            s: "OVERLOADED",
            r: null,
          });
        }
      }
      orig(from, msg);
    };
    await h.until(map.set(key, 10));
    expect(seen.length).toBe(3);
    expect(seen[0]).toBeUndefined();
    expect(seen[1]).toBeGreaterThanOrEqual(0);
    expect(seen[2]).toBeGreaterThanOrEqual(0);
    h.stop();
  });
});
