import { expect, test } from "bun:test";
import { GridHarness } from "./support/grid_harness.ts";

// OpCode.Entries (operations.ts) pages by slot position in the store, and answers the `next` one.
// Callers used to move on by the live entries they received, so a page that skipped expired records
// made the next one start too early: entries repeated on a map nobody wrote to, and executeOnEntries
// ran its processor twice on them. Counting records walked instead (the first fix) made the next page
// start too late when the sweep removed records before the position between two pages: live entries
// were never returned (the last test). A slot stays put while its record lives.
async function grid(sweepPerTick: number) {
  const h = new GridHarness({ config: { partitionCount: 1, map: { housekeeping: { sweepPerTick } } } });
  for (const id of ["n0", "n1"]) await h.add(id);
  await h.run(3000);
  return h;
}

test("entries() of a quiescent map with expired (not yet swept) entries yields each live entry once", async () => {
  // The sweep examines a bounded number of records per tick (4000 by default): a large map's
  // expired entries stay in the store for several ticks. Here the budget is 1 to hold them there.
  const h = await grid(1);
  const m = h.members.get("n0")!.grid.getMap<number, number>("m");
  const short = new Map<number, number>(), long = new Map<number, number>();
  for (let i = 0; i < 500; i++) short.set(i, i);
  for (let i = 500; i < 2000; i++) long.set(i, i);
  await h.until(m.putAll(short, { ttlMs: 1000 }));
  await h.until(m.putAll(long));
  await h.run(1500);
  const seen: number[] = [];
  const it = (async () => {
    for await (const k of m.keys()) seen.push(k);
  })();
  await h.until(it);
  const dup = seen.length - new Set(seen).size;
  console.log(`yielded ${seen.length}, distinct ${new Set(seen).size}, duplicates ${dup}`);
  expect(dup).toBe(0);
  expect(new Set(seen).size).toBe(1500);
  h.stop();
});

test("executeOnEntries runs the processor once per live entry when expired entries are not swept yet", async () => {
  const h = await grid(1);
  const m = h.members.get("n0")!.grid.getMap<number, number>("m");
  const short = new Map<number, number>(), long = new Map<number, number>();
  for (let i = 0; i < 500; i++) short.set(i, 0);
  for (let i = 500; i < 2000; i++) long.set(i, 0);
  await h.until(m.putAll(short, { ttlMs: 1000 }));
  await h.until(m.putAll(long));
  await h.run(1500);
  const it = (async () => {
    for await (const _ of m.executeOnEntries("increment", 1)) { /* drain */ }
  })();
  await h.until(it);
  const all = await h.until(m.getAll([...long.keys()]));
  const twice = [...all].filter(([, v]) => v !== 1).length;
  console.log(`entries incremented more than once: ${twice}`);
  expect(twice).toBe(0);
  h.stop();
});

test("default settings: entries() right after entries of a 10,000-entry map expire yields each live entry once", async () => {
  // The sweep examines at most 4,000 records per 50 ms tick: in a store of 10,000 records with a
  // TTL it reaches the expired ones (slots 8,000-8,499) on its third tick.
  const h = new GridHarness({ config: { partitionCount: 1 } });
  for (const id of ["n0", "n1"]) await h.add(id);
  await h.run(3000);
  const m = h.members.get("n0")!.grid.getMap<number, number>("m");
  const range = (a: number, b: number) => new Map(Array.from({ length: b - a }, (_, i) => [a + i, a + i]));
  for (let a = 0; a < 8000; a += 1000) await h.until(m.putAll(range(a, a + 1000), { ttlMs: 3_600_000 }));
  await h.until(m.putAll(range(8000, 8500), { ttlMs: 1000 }));
  const written = h.clock.now();
  await h.until(m.putAll(range(8500, 10_000)));
  await h.run(written + 1000 - h.clock.now() + 1);
  const seen: number[] = [];
  await h.until((async () => {
    for await (const k of m.keys()) seen.push(k);
  })());
  console.log(`default sweep: yielded ${seen.length}, distinct ${new Set(seen).size}`);
  expect(seen.length - new Set(seen).size).toBe(0);
  expect(new Set(seen).size).toBe(9500);
  h.stop();
});

test("keys() yields every entry that stays live, once, while expired records are swept between pages", async () => {
  let worstMissing = 0, worstRepeated = 0;
  for (let delta = 0; delta < 1000; delta += 50) {
    const h = new GridHarness({
      delayMs: 40,
      config: { partitionCount: 1, map: { housekeeping: { sweepPerTick: 100 } } },
    });
    for (const id of ["n0", "n1", "n2"]) await h.add(id);
    await h.run(3000);
    const primary = h.members.get("n0")!.grid.partitions.table.replicas[0][0];
    const caller = [...h.members.values()].find((m) => m.id !== primary)!;
    const m = caller.grid.getMap<number, number>("m");
    const short = new Map<number, number>(), long = new Map<number, number>();
    for (let i = 0; i < 500; i++) short.set(i, i);
    for (let i = 500; i < 2000; i++) long.set(i, i);
    await h.until(m.putAll(short, { ttlMs: 1000 }));
    await h.until(m.putAll(long));
    await h.run(1000 + delta);
    const seen: number[] = [];
    await h.until((async () => {
      for await (const k of m.keys()) seen.push(k);
    })());
    const distinct = new Set(seen);
    worstMissing = Math.max(worstMissing, [...long.keys()].filter((k) => !distinct.has(k)).length);
    worstRepeated = Math.max(worstRepeated, seen.length - distinct.size);
    h.stop();
  }
  expect({ worstMissing, worstRepeated }).toEqual({ worstMissing: 0, worstRepeated: 0 });
}, 120_000);
