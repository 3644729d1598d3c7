import { expect, test } from "bun:test";
import type { EntryEvent, GapEvent } from "../src/map/entry_events.ts";
import { partitionOf } from "../src/partition/partition_of.ts";
import { GridHarness } from "./support/grid_harness.ts";

const P = 7;

/** A key of partition `p`, prefixed `pre`. */
function keyIn(pre: string, p: number): string {
  for (let i = 0;; i++) if (partitionOf(`${pre}${i}`, P) === p) return `${pre}${i}`;
}

// README "Entry listeners": a resumed listener gets every event after its position, or a `gap` when the
// partition's event log no longer reaches back. A snapshot to a migration target carries only the events of
// maps a listener polled in the last minute. The target's event ring took the source's coverage for every
// map, so a resume of another map from before the migration got neither its events nor a gap (found by an
// internal review). The snapshot now names the maps it left out (`ex`), and their readers get a gap.
test("resuming map b's events from before a migration yields each b write or a gap", async () => {
  const h = new GridHarness({ seed: 3, config: { partitionCount: P } });
  await h.add("n0");
  await h.run(3000);
  const n0 = h.members.get("n0")!;
  // Someone listens to map "a" (so the partitions' snapshots carry "a"'s events, and not "b"'s).
  const aEvents: unknown[] = [];
  await h.until(n0.grid.getMap<string, number>("a").addEntryListener((e) => void aEvents.push(e)));
  const a = n0.grid.getMap<string, number>("a"), b = n0.grid.getMap<string, number>("b");
  for (let p = 0; p < P; p++) await h.until(a.set(keyIn("a", p), p));
  // Positions before b's writes (what an SSE client's Last-Event-ID would name).
  const from = new Map<number, { s: number; i: number }>();
  for (const r of n0.grid.maps.debugReplicas()) from.set(r.p, { s: r.seq, i: 1_000_000 });
  for (let p = 0; p < P; p++) await h.until(b.set(keyIn("b", p), 100 + p));
  for (let p = 0; p < P; p++) await h.until(a.set(keyIn("a", p), 200 + p));
  // A second member joins: some primaries migrate to it (snapshot transfers).
  await h.add("n1");
  await h.run(8000);
  const table = n0.grid.partitions.table;
  const moved = [...Array(P).keys()].filter((p) => table.replicas[p][0] === "n1");
  expect(moved.length).toBeGreaterThan(0);
  // Resume map b from the positions before its writes.
  const got = new Map<number, Array<EntryEvent | GapEvent>>();
  const sub = await h.until(b.openEvents({ from }));
  const it = sub[Symbol.asyncIterator]();
  const pump = (async () => {
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      const e = r.value as EntryEvent | GapEvent;
      got.set(e.partition, [...(got.get(e.partition) ?? []), e]);
    }
  })();
  await h.run(3000);
  sub.close();
  await h.run(100);
  void pump;
  const missing = [...Array(P).keys()].filter((p) => !(got.get(p)?.length));
  h.stop();
  // Every partition delivers its b write (or a gap): a gap where the partition moved, its write where not.
  expect({ missing, movedAmongMissing: missing.filter((p) => moved.includes(p)) }).toEqual({
    missing: [],
    movedAmongMissing: [],
  });
  for (const p of moved) expect(got.get(p)!.some((e) => e.type === "gap")).toBe(true);
  for (const p of [...Array(P).keys()].filter((p) => !moved.includes(p))) {
    expect(got.get(p)!.map((e) => e.type)).toEqual(["added"]);
  }
});
