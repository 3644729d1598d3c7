import { describe, expect, test } from "bun:test";
import type { TopicEvent } from "../src/map/topic.ts";
import { gridStarter, replicasOf } from "./support/grid_harness.ts";

const P = 13;

const cluster = gridStarter(P);

/** Collects a subscription's events in the background until `stop` aborts it. */
function collect<T>(it: AsyncIterableIterator<TopicEvent<T>>): TopicEvent<T>[] {
  const out: TopicEvent<T>[] = [];
  void (async () => {
    for await (const e of it) out.push(e);
  })().catch(() => {});
  return out;
}

describe("reliable topic", () => {
  test("a subscriber on a member that stays up sees every message after it subscribed, in order per publisher, across failover of the ring's primary", async () => {
    const h = await cluster(4, { loss: 0.01 });
    const name = "news";
    const primary = replicasOf(h, name)[0];
    const [subId, pubA, pubB] = ["n0", "n1", "n2", "n3"].filter((id) => id !== primary);
    const stop = new AbortController();
    const events = collect(
      h.members.get(subId)!.grid.getReliableTopic<[string, number]>(name, { capacity: 10_000 }).subscribe({
        signal: stop.signal,
      }),
    );
    await h.run(300);
    const published = new Map<string, number[]>([["a", []], ["b", []]]);
    let stopPub = false;
    const pubs = [["a", pubA], ["b", pubB]].map(async ([who, id]) => {
      const t = h.members.get(id)!.grid.getReliableTopic<[string, number]>(name, { capacity: 10_000 });
      for (let i = 0; !stopPub; i++) {
        await new Promise((r) => h.clock.setTimer(10, () => r(null)));
        try {
          await t.publish([who, i]);
          published.get(who)!.push(i);
        } catch {
          // indeterminate: may or may not be in the ring
        }
      }
    });
    await h.run(1000);
    h.crash(primary, 1000);
    await h.run(4000);
    stopPub = true;
    await h.until(Promise.all(pubs));
    await h.run(2000);
    stop.abort();
    expect(events.filter((e) => "missed" in e)).toEqual([]);
    const got = new Map<string, number[]>([["a", []], ["b", []]]);
    for (const e of events) if ("message" in e) got.get(e.message[0])!.push(e.message[1]);
    for (const who of ["a", "b"]) {
      const g = got.get(who)!;
      expect(g.every((x, i) => i === 0 || x > g[i - 1])).toBe(true); // in order, none twice
      for (const i of published.get(who)!) expect(g).toContain(i); // every acknowledged one
    }
    expect(published.get("a")!.length).toBeGreaterThan(100);
    const seqs = events.map((e) => e.seq);
    expect(seqs.every((s, i) => i === 0 || s > seqs[i - 1])).toBe(true);
    h.stop();
  });

  test("a subscriber behind the ring is told how many it missed, then gets what is left; it can resume from a sequence", async () => {
    const h = await cluster(2);
    const t = h.members.get("n0")!.grid.getReliableTopic<number>("small", { capacity: 5 });
    for (let i = 0; i < 12; i++) expect(await h.until(t.publish(i))).toBe(i);
    const stop = new AbortController();
    const events = collect(
      h.members.get("n1")!.grid.getReliableTopic<number>("small").subscribe({ from: 0, signal: stop.signal }),
    );
    await h.run(500);
    expect(events[0]).toEqual({ seq: 0, missed: 7 });
    expect(events.slice(1)).toEqual([7, 8, 9, 10, 11].map((i) => ({ seq: i, message: i })));
    stop.abort();
    const stop2 = new AbortController();
    const resumed = collect(t.subscribe({ from: 10, signal: stop2.signal }));
    await h.until(t.publish(12));
    await h.run(500);
    expect(resumed).toEqual([10, 11, 12].map((i) => ({ seq: i, message: i })));
    stop2.abort();
    h.stop();
  });
});
