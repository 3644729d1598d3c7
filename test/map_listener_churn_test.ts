/**
 * Entry listeners count the long polls they hold against `maxPolls` (4,096, kept well below the
 * invoker's `maxPendingCalls` so that listeners never starve the member's own operations). A
 * feed that closed gave its polls back at once, while its loops stopped only after their current
 * poll, still held on its primary and pending here: opening and closing listeners piled up
 * pending polls past `maxPolls`. And a held poll held its partition's watermark back, so 10,000
 * calls of the member meanwhile made its own writes to that partition OVERLOADED (both found by
 * an internal review). Polls are now given back as each loop ends, and only writes hold a
 * watermark.
 */
import { expect, test } from "bun:test";
import { startGrid } from "./support/grid_harness.ts";
import { ShoalError } from "../src/core/errors.ts";

test("closed entry listeners' polls still count: churn cannot starve the member's own calls", async () => {
  const P = 31;
  const h = await startGrid(2, P);
  try {
    const g = h.members.get("n0")!.grid;
    const maxPolls = g.maps.listeners.config.maxPolls; // 4096
    const perRound = Math.floor(maxPolls / P); // 132 listeners of 31 polls each: within maxPolls
    let peakPending = 0;
    for (let round = 0; round < 4; round++) {
      const maps = Array.from({ length: perRound }, (_, i) => g.getMap<string, number>(`churn-${round}-${i}`));
      const ids = await h.until(Promise.allSettled(maps.map((m) => m.addEntryListener(() => {}))));
      await h.run(20); // the feeds' loops send their held polls
      maps.forEach((m, i) => ids[i].status === "fulfilled" && m.removeEntryListener(ids[i].value));
      peakPending = Math.max(peakPending, g.invoker.pendingCalls);
    }
    // The member's own call right after the churn.
    let err: unknown = null;
    try {
      await h.until(g.getMap<string, number>("app").set("k", 1));
    } catch (e) {
      err = e;
    }
    expect(peakPending).toBeLessThanOrEqual(maxPolls + 100);
    expect(err).toBeNull();
  } finally {
    h.stop();
  }
}, 120_000);

test(
  "with the default 271 partitions, 20 listeners opened and closed one after another do not make the member refuse its own calls",
  async () => {
    const h = await startGrid(2, 271);
    try {
      const g = h.members.get("n0")!.grid;
      const refused: string[] = [];
      for (let i = 0; i < 20; i++) {
        const m = g.getMap<string, number>(`stream-${i}`);
        try {
          const id = await h.until(m.addEntryListener(() => {}));
          m.removeEntryListener(id); // like a client closing GET /maps/stream-i/events
        } catch (e) {
          refused.push(`listener ${i}: ${(e as ShoalError).code}`);
        }
      }
      let err: string | null = null;
      try {
        await h.until(g.getMap<string, number>("app").set("k", 1));
      } catch (e) {
        err = (e as ShoalError).code ?? String(e);
      }
      // Refusing further listeners (maxPolls) is fine; refusing the application's own calls is not.
      expect(err).toBeNull();
    } finally {
      h.stop();
    }
  },
  120_000,
);
