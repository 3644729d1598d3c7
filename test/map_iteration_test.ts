/**
 * entries()/keys()/values() fetch pages of several partitions at once; every entry present
 * throughout the iteration is returned exactly once, partitions of several pages included,
 * and an iteration stopped early leaves nothing behind.
 */
import { describe, expect, test } from "bun:test";
import { GridHarness } from "./support/grid_harness.ts";

async function drain<T>(h: GridHarness, it: AsyncIterableIterator<T>, limit = Infinity): Promise<T[]> {
  const out: T[] = [];
  const run = (async () => {
    for await (const x of it) {
      out.push(x);
      if (out.length >= limit) break;
    }
  })();
  await h.until(run);
  return out;
}

describe("IMap iteration", () => {
  test("entries, keys and values return every entry once, across partitions of several pages", async () => {
    const h = new GridHarness({ seed: 4, config: { partitionCount: 3 }, delayMs: 0.5 });
    for (const id of ["a", "b", "c"]) await h.add(id);
    await h.run(2_000);
    const map = h.members.get("b")!.grid.getMap<string, number>("m");
    const n = 4_500; // about 1,500 per partition: two pages each
    const all = Array.from({ length: n }, (_, i) => [`k${i}`, i] as [string, number]);
    for (let i = 0; i < n; i += 1_000) await h.until(map.putAll(all.slice(i, i + 1_000)));

    const entries = await drain(h, map.entries());
    expect(entries.length).toBe(n);
    expect(new Map(entries)).toEqual(new Map(all));
    const keys = await drain(h, map.keys());
    expect(new Set(keys).size).toBe(n);
    const values = await drain(h, map.values());
    expect(values.reduce((a, b) => a + b, 0)).toBe((n * (n - 1)) / 2);
    h.stop();
  }, 30_000);

  test("many partitions: every entry once; an iteration stopped early can be followed by a full one", async () => {
    const h = new GridHarness({ seed: 5, config: { partitionCount: 97 }, delayMs: 0.5 });
    for (const id of ["a", "b"]) await h.add(id);
    const client = await h.add("client", true);
    await h.run(2_000);
    const map = client.grid.getMap<number, string>("m");
    const all = Array.from({ length: 900 }, (_, i) => [i, `v${i}`] as [number, string]);
    await h.until(map.putAll(all));
    expect((await drain(h, map.entries(), 10)).length).toBe(10);
    const entries = await drain(h, map.entries());
    expect(entries.length).toBe(all.length);
    expect(new Map(entries)).toEqual(new Map(all));
    await h.run(1_000);
    expect(client.grid.invoker.pendingCalls).toBe(0);
    h.stop();
  }, 30_000);
});
