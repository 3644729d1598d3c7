/**
 * `map.events({ signal })` ends once `signal` aborts, whenever it aborts (README "Entry
 * listeners": `for await (const e of sessions.events({ signal: AbortSignal.timeout(10_000) }))`):
 * an already aborted signal ends the loop at once without registering anything, and one that
 * aborts while the listener registers (one poll per partition for its starting position) ends
 * the loop at once and closes the subscription as soon as it exists, so its polls stop. Found by
 * an internal review: the abort listener was added only after registration, so in both cases
 * the loop waited for ever and the subscription kept polling every partition.
 */
import { expect, test } from "bun:test";
import { GridHarness } from "./support/grid_harness.ts";

/** Whether `p` settles within a few turns of the event loop, without virtual time passing. */
async function settlesNow(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  p.then(() => void (done = true), () => void (done = true));
  for (let i = 0; i < 20 && !done; i++) await new Promise((r) => setTimeout(r, 0));
  return done;
}

async function twoMembers(): Promise<GridHarness> {
  const h = new GridHarness({ seed: 3, config: { partitionCount: 13 } });
  await h.add("n0");
  await h.add("n1");
  await h.run(3000);
  return h;
}

/** Drains `m.events(opts)`, counting what it yields. */
async function drain(it: AsyncIterable<unknown>): Promise<number> {
  let n = 0;
  for await (const _ of it) n++;
  return n;
}

test("events() with an already aborted signal ends at once and registers no listener", async () => {
  const h = await twoMembers();
  const n0 = h.members.get("n0")!.grid;
  const m = n0.getMap<string, number>("m");
  const polls = n0.maps.listeners.counters.polls;
  const loop = drain(m.events({ signal: AbortSignal.abort() }));
  expect(await settlesNow(loop)).toBe(true);
  expect(await loop).toBe(0);
  expect(n0.maps.listeners.size).toBe(0);
  expect(n0.maps.listeners.counters.polls).toBe(polls); // not one poll sent
  h.stop();
});

test("events() whose signal aborts while the listener registers ends at once, and its polls stop", async () => {
  const h = await twoMembers();
  const n0 = h.members.get("n0")!.grid;
  const listeners = n0.maps.listeners;
  const m = n0.getMap<string, number>("m");
  const ac = new AbortController();
  const loop = drain(m.events({ signal: ac.signal }));
  // The first next() starts the registration: polls for the starting positions, half of them on
  // n1, which cannot answer before virtual time runs. Abort meanwhile.
  await h.run(1);
  expect(listeners.polls).toBe(13);
  expect(await settlesNow(loop)).toBe(false);
  ac.abort();
  expect(await settlesNow(loop)).toBe(true);
  expect(await loop).toBe(0);
  // The registration completes, and the subscription it made is closed straight away: no
  // listener is left, and each partition's poll loop stops after its first poll.
  expect(await h.runUntil(() => listeners.polls === 0, 10_000)).toBe(true);
  expect(listeners.size).toBe(0);
  h.stop();
});

test("events() whose signal aborts after registration ends the loop (as before)", async () => {
  const h = await twoMembers();
  const n0 = h.members.get("n0")!.grid;
  const m = n0.getMap<string, number>("m");
  const ac = new AbortController();
  const seen: unknown[] = [];
  const loop = (async () => {
    for await (const e of m.events({ signal: ac.signal })) seen.push(e);
  })();
  await h.runUntil(() => n0.maps.listeners.size === 1, 5000);
  await h.until(m.set("a", 1));
  await h.runUntil(() => seen.length === 1, 5000);
  ac.abort();
  expect(await settlesNow(loop)).toBe(true);
  expect(seen).toMatchObject([{ type: "added", key: "a", value: 1 }]);
  expect(await h.runUntil(() => n0.maps.listeners.polls === 0, 10_000)).toBe(true);
  expect(n0.maps.listeners.size).toBe(0);
  h.stop();
});
