/**
 * A topic subscription retried a read that the invoker refused with OVERLOADED at once, with no
 * pause. The invoker refuses without waiting when the member has `maxPendingCalls` calls in
 * flight, so the loop never let the event loop run: the calls in flight could never end, and
 * the member was stuck for good (found by an internal review; reachable with many parked queue
 * polls on the member). Refused reads are now retried after a pause that doubles up to 1 s.
 * `maxPendingCalls` is lowered to 40 here to keep the test small; the test aborts the
 * subscription past 20,000 reads so that the old code's spin ends.
 */
import { expect, test } from "bun:test";
import { startGrid } from "./support/grid_harness.ts";
import { OpCode } from "../src/map/operations.ts";

test("a topic subscription does not spin when the invoker is OVERLOADED", async () => {
  const h = await startGrid(2, 31, {
    config: { invoke: { attemptTimeoutMs: 500, callTimeoutMs: 20_000, maxPendingCalls: 40 } },
  });
  try {
    const g = h.members.get("n0")!.grid;
    const topic = g.getTopic<number>("news");
    const stop = new AbortController();
    let reads = 0;
    const inv = g.invoker;
    const orig = inv.invoke.bind(inv);
    inv.invoke = (p: number, op: number, body: unknown, write: boolean, parkMs?: number) => {
      if (op === OpCode.TopicRead) {
        reads++;
        if (reads > 20_000 && !stop.signal.aborted) stop.abort(); // break the spin so the test ends
      }
      return orig(p, op, body, write, parkMs);
    };
    const sub = topic.subscribe({ signal: stop.signal });
    await h.until(sub.ready);
    const reading = (async () => {
      for await (const _ of sub) { /* nothing is published */ }
    })();
    reading.catch(() => {});
    // Fill the invoker with waiting queue polls (parked on their primaries, 2 s per ask).
    const polls = Array.from({ length: 40 }, (_, i) => g.getQueue<number>(`q${i}`).poll({ timeoutMs: 10_000 }));
    for (const p of polls) p.catch(() => {});
    const before = reads;
    await h.run(1000);
    const perSecond = reads - before;
    stop.abort();
    await h.run(3000);
    // A read loop that waits between refused attempts makes a few dozen reads a second, not thousands in one turn.
    expect(perSecond).toBeLessThan(1000);
  } finally {
    h.stop();
  }
}, 60_000);
