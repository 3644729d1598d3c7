import { describe, expect, test } from "bun:test";
import type { TopicEvent } from "../src/map/topic.ts";
import { gridStarter, incompleteReplication, replicasOf } from "./support/grid_harness.ts";

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

  test("subscribe fixes its start when the ring's primary first answers: ready says when, and every message after it is yielded", async () => {
    const h = await cluster(4);
    const name = "late-start";
    const primary = replicasOf(h, name)[0];
    const [subId, pubId] = ["n0", "n1", "n2", "n3"].filter((id) => id !== primary);
    // The first read's answers are lost for a while: the start is not fixed at the call.
    h.net.setLink(primary, subId, { blocked: true });
    const stop = new AbortController();
    const sub = h.members.get(subId)!.grid.getReliableTopic<number>(name).subscribe({ signal: stop.signal });
    let readyAt = -1;
    void sub.ready.then((s) => void (readyAt = s));
    const events = collect(sub);
    const t = h.members.get(pubId)!.grid.getReliableTopic<number>(name);
    const acked: Array<[number, boolean]> = []; // [seq, published after ready resolved]
    let stopPub = false;
    const pub = (async () => {
      for (let i = 0; !stopPub; i++) {
        await new Promise((r) => h.clock.setTimer(10, () => r(null)));
        const after = readyAt >= 0;
        acked.push([await t.publish(i), after]);
      }
    })();
    await h.run(1500);
    expect(readyAt).toBe(-1);
    h.net.setLink(primary, subId, { blocked: false });
    await h.run(1500);
    stopPub = true;
    await h.until(pub);
    await h.run(1000);
    stop.abort();
    const start = await h.until(sub.ready);
    // Fixed after the first publishes: those before it are not yielded, and no gap is reported for them.
    expect(start).toBeGreaterThan(0);
    expect(events.filter((e) => "missed" in e)).toEqual([]);
    const seen = events.map((e) => e.seq);
    expect(seen[0]).toBe(start);
    expect(seen).toEqual(acked.map(([s]) => s).filter((s) => s >= start));
    // Every message published once ready had resolved is among them.
    for (const [s, after] of acked) if (after) expect(s).toBeGreaterThanOrEqual(start);
    expect(acked.filter(([, after]) => after).length).toBeGreaterThan(50);
    h.stop();
  });

  test("ready rejects when the subscription is aborted before the ring's primary answers", async () => {
    const h = await cluster(2);
    const name = "never";
    const primary = replicasOf(h, name)[0];
    const other = primary === "n0" ? "n1" : "n0";
    h.net.setLink(primary, other, { blocked: true });
    const stop = new AbortController();
    const sub = h.members.get(other)!.grid.getReliableTopic<number>(name).subscribe({ signal: stop.signal });
    await h.run(700);
    stop.abort();
    await h.run(1000);
    await expect(sub.ready).rejects.toThrow("aborted");
    expect((await sub.next()).done).toBe(true);
    h.stop();
  });

  test("a long subscription keeps no abort listener per poll", async () => {
    const h = await cluster(2);
    const stop = new AbortController();
    let live = 0;
    const add = stop.signal.addEventListener.bind(stop.signal),
      remove = stop.signal.removeEventListener.bind(stop.signal);
    stop.signal.addEventListener = ((...a: Parameters<typeof add>) => (live++, add(...a))) as typeof add;
    stop.signal.removeEventListener = ((...a: Parameters<typeof remove>) => (live--, remove(...a))) as typeof remove;
    const t = h.members.get("n1")!.grid.getReliableTopic<number>("idle");
    const events = collect(t.subscribe({ signal: stop.signal }));
    await h.run(10_000); // ~60 polls of an idle ring
    await h.until(t.publish(1));
    await h.run(500);
    expect(events).toEqual([{ seq: 0, message: 1 }]);
    expect(live).toBeLessThanOrEqual(1);
    stop.abort();
    h.stop();
  });
});

describe("a topic's capacity shrunk by more than one write can drop", () => {
  test("the publish is answered at once and replicated; later publishes drop the rest", async () => {
    const h = await cluster(2);
    const g = h.members.get("n0")!.grid;
    const big = g.getReliableTopic<number>("shrink", { capacity: 2000 });
    for (let i = 0; i < 1200; i++) await h.until(big.publish(i));
    // Capacity 1 would drop 1,199 messages: more records than one replicated write may change.
    const small = g.getReliableTopic<number>("shrink", { capacity: 1 });
    const t0 = h.clock.now();
    expect(await h.until(small.publish(-1))).toBe(1200);
    expect(h.clock.now() - t0).toBeLessThan(1000); // before, it waited out the call timeout (30 s)
    await h.run(500);
    expect(incompleteReplication(h, P)).toBeNull();
    expect(await h.until(small.publish(-2))).toBe(1201);
    await h.run(500);
    expect(incompleteReplication(h, P)).toBeNull();
    // 900 dropped by each publish: after the second, only the newest message is kept.
    const it = small.subscribe({ from: 0 });
    const first = await h.until(it.next());
    const second = await h.until(it.next());
    expect([first.value, second.value]).toEqual([{ seq: 0, missed: 1201 }, { seq: 1201, message: -2 }]);
    h.stop();
  });
});
