/**
 * `clear()` and `destroy()` and the entry listeners (README "Entry listeners"): each partition
 * that held entries of the map emits one `cleared` event (no key), which listeners of one key
 * get too, at its place among the partition's events; it travels with a snapshot, so a listener
 * resumed on a new primary after a migration gets it from there. Before, a listener that
 * mirrored a map never learned that the map was emptied.
 */
import { expect, test } from "bun:test";
import type { EntryEvent, GapEvent } from "../src/map/entry_events.ts";
import { OpCode } from "../src/map/operations.ts";
import { partitionOf } from "../src/partition/partition_of.ts";
import { GridHarness } from "./support/grid_harness.ts";

const P = 7;

/** A key of partition `p`, prefixed `pre`. */
function keyIn(pre: string, p: number): string {
  for (let i = 0;; i++) if (partitionOf(`${pre}${i}`, P) === p) return `${pre}${i}`;
}

type Heard = Array<EntryEvent<string, number> | GapEvent>;

/** Events as `type partition key`, in the order heard, per partition. */
function byPartition(heard: Heard): Map<number, string[]> {
  const out = new Map<number, string[]>();
  for (const e of heard) {
    const s = e.type === "gap" ? "gap" : e.type === "cleared" ? "cleared" : `${e.type} ${e.key}`;
    out.set(e.partition, [...(out.get(e.partition) ?? []), s]);
  }
  return out;
}

test("clear() emits one cleared event per partition that held entries, to every listener of the map", async () => {
  const h = new GridHarness({ seed: 5, config: { partitionCount: P } });
  await h.add("n0");
  await h.add("n1");
  await h.run(3000);
  const m = h.members.get("n0")!.grid.getMap<string, number>("m");
  const all: Heard = [], ofKey: Heard = [], noValues: Heard = [], other: Heard = [];
  const x = keyIn("x", 2);
  await h.until(m.addEntryListener((e) => void all.push(e)));
  await h.until(m.addEntryListener((e) => void ofKey.push(e), { key: x }));
  await h.until(m.addEntryListener((e) => void noValues.push(e), { includeValue: false }));
  await h.until(h.members.get("n1")!.grid.getMap<string, number>("other").addEntryListener((e) => void other.push(e)));
  // Entries in partitions 1, 2 and 4 only.
  for (const p of [1, 2, 4]) await h.until(m.set(keyIn("k", p), p));
  await h.until(m.set(x, 9));
  await h.until(m.clear());
  await h.until(m.set(x, 10));
  await h.run(3000);
  h.stop();
  const k = (p: number) => keyIn("k", p);
  expect(Object.fromEntries(byPartition(all))).toEqual({
    1: [`added ${k(1)}`, "cleared"],
    2: [`added ${k(2)}`, `added ${x}`, "cleared", `added ${x}`],
    4: [`added ${k(4)}`, "cleared"],
  });
  expect(Object.fromEntries(byPartition(ofKey))).toEqual({ 2: [`added ${x}`, "cleared", `added ${x}`] });
  const cleared = all.filter((e) => e.type === "cleared");
  expect(cleared.map((e) => e.map)).toEqual(["m", "m", "m"]);
  for (const e of cleared) expect([e.key, e.value, e.oldValue]).toEqual([undefined, undefined, undefined]);
  expect(noValues.filter((e) => e.type === "cleared").length).toBe(3);
  // A listener of another map hears nothing of it.
  expect(other).toEqual([]);
});

test("destroy() emits cleared too, and a clear of an empty map emits nothing", async () => {
  const h = new GridHarness({ seed: 6, config: { partitionCount: P } });
  await h.add("n0");
  await h.run(3000);
  const m = h.members.get("n0")!.grid.getMap<string, number>("d");
  const heard: Heard = [];
  await h.until(m.addEntryListener((e) => void heard.push(e)));
  await h.until(m.clear());
  await h.until(m.set(keyIn("k", 3), 1));
  await h.until(m.destroy());
  await h.run(2000);
  h.stop();
  expect(heard.map((e) => [e.type, e.partition])).toEqual([["added", 3], ["cleared", 3]]);
});

test("a listener resumed from before a clear gets the cleared events from the new primaries after a migration", async () => {
  const h = new GridHarness({ seed: 3, config: { partitionCount: P } });
  await h.add("n0");
  await h.run(3000);
  const n0 = h.members.get("n0")!;
  const m = n0.grid.getMap<string, number>("r");
  // Someone listens, so snapshots carry the map's events.
  await h.until(m.addEntryListener(() => {}));
  for (let p = 0; p < P; p++) await h.until(m.set(keyIn("k", p), p));
  const from = new Map<number, { s: number; i: number }>();
  for (const r of n0.grid.maps.debugReplicas()) from.set(r.p, { s: r.seq, i: 1_000_000 });
  await h.until(m.clear());
  await h.add("n1");
  await h.run(8000);
  const moved = [...Array(P).keys()].filter((p) => n0.grid.partitions.table.replicas[p][0] === "n1");
  expect(moved.length).toBeGreaterThan(0);
  const heard: Heard = [];
  const sub = await h.until(m.openEvents({ from }));
  const pump = (async () => {
    for await (const e of sub) heard.push(e as EntryEvent<string, number> | GapEvent);
  })();
  await h.run(3000);
  sub.close();
  await h.run(100);
  void pump;
  h.stop();
  // Every partition, moved or not, delivers exactly its cleared event (no gap: the snapshot carried it).
  expect(Object.fromEntries(byPartition(heard))).toEqual(
    Object.fromEntries([...Array(P).keys()].map((p) => [p, ["cleared"]])),
  );
});

test("a poll from a listener that predates `cleared` (no ct) is not sent one", async () => {
  const h = new GridHarness({ seed: 8, config: { partitionCount: P } });
  await h.add("n0");
  await h.run(3000);
  const n0 = h.members.get("n0")!;
  const m = n0.grid.getMap<string, number>("old");
  const p = 4;
  await h.until(m.set(keyIn("k", p), 1));
  const seq = n0.grid.maps.debugReplicas().find((r) => r.p === p)!.seq;
  await h.until(m.clear());
  const poll = (ct?: 1) =>
    h.until(
      n0.grid.invoker.invoke(
        p,
        OpCode.Events,
        { m: "old", s: seq, i: 1_000_000, n: 100, h: 0, ...(ct ? { ct } : {}) },
        false,
      ),
    ) as Promise<
      { ev: unknown[][] }
    >;
  expect((await poll()).ev).toEqual([]);
  expect((await poll(1)).ev.map((e) => e[2])).toEqual([6]);
  h.stop();
});
