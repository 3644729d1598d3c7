/**
 * A listener of a map with `backupCount: 0` on a cluster whose default is 1 backup (per-map
 * backups). A write of that map is acknowledged by its primary alone; the primary is killed
 * right after the acknowledgement, before the listener polled it. The write is lost (README),
 * and the listener got neither its event nor a gap: the promoted backup, which holds the maps
 * with backups only, holds the write's sequence number as an empty entry, and the listener went
 * on past it silently (found by an internal review). It now gets a gap.
 */
import { expect, test } from "bun:test";
import type { EntryEvent, GapEvent } from "../src/map/entry_events.ts";
import { OpCode } from "../src/map/operations.ts";
import { partitionOf } from "../src/partition/partition_of.ts";
import { GridHarness, incompleteReplication } from "./support/grid_harness.ts";

const P = 7;

/**
 * Members a, b, c over 7 partitions, 1 backup by default and none for maps `scratch*`, every
 * partition replicated; `key` is one whose primary is c (neither the listener's member nor the
 * writer), in partition `p`.
 */
async function gridWithKeyOnC() {
  const h = new GridHarness({
    seed: 3,
    config: { partitionCount: P, backupCount: 1, maps: { "scratch*": { backupCount: 0 } } },
  });
  for (const id of ["a", "b", "c"]) await h.add(id);
  await h.runUntil(() => incompleteReplication(h, P) === null, 30_000);
  expect(incompleteReplication(h, P)).toBeNull();
  const table = h.members.get("a")!.grid.partitions.table;
  let key = "";
  for (let i = 0;; i++) {
    key = `k${i}`;
    if (table.replicas[partitionOf(key, P)][0] === "c") break;
  }
  return { h, key, p: partitionOf(key, P) };
}

test("an acknowledged write of a backupCount-0 map lost with its primary: the listener gets its event or a gap", async () => {
  const { h, key, p } = await gridWithKeyOnC();
  const heard: Array<EntryEvent<string, string> | GapEvent> = [];
  const a = h.members.get("a")!.grid.getMap<string, string>("scratch");
  await h.until(a.addEntryListener((e) => void heard.push(e), { key }));
  // A map with its backup, same key (same partition): its listener gets every event, no gap.
  const kept = h.members.get("a")!.grid.getMap<string, string>("kept");
  const keptHeard: Array<EntryEvent<string, string> | GapEvent> = [];
  await h.until(kept.addEntryListener((e) => void keptHeard.push(e), { key }));
  await h.until(kept.put(key, "k1"));

  // Acknowledged write; kill -9 of the primary the moment the acknowledgement arrives.
  let acked = false;
  const put = a.put(key, "v1").then(() => {
    acked = true;
    h.crash("c");
  });
  await h.until(put);
  expect(acked).toBe(true);
  // The listener fails over to the promoted backup; later writes go on in the same partition.
  await h.run(5_000);
  await h.until(a.put(key, "v2"));
  await h.until(kept.put(key, "k2"));
  await h.run(3_000);
  expect(keptHeard.map((e) => e.type === "gap" ? "gap" : `${e.type} ${e.value}`)).toEqual(["added k1", "updated k2"]);

  const got = heard.filter((e) => e.type === "gap" ? e.partition === p : e.key === key);
  const v1 = got.some((e) => e.type !== "gap" && e.type !== "cleared" && e.value === "v1");
  const gap = got.some((e) => e.type === "gap");
  // The later write's event arrived, so the listener is live on the new primary.
  expect(got.some((e) => e.type !== "gap" && e.type !== "cleared" && e.value === "v2")).toBe(true);
  expect({ v1Event: v1, gap }).not.toEqual({ v1Event: false, gap: false });
  h.stop();
});

/**
 * A primary promoted from a backup above level 0 marks the maps it did not hold (here
 * `scratch`, backupCount 0) as lost up to its sequence `U` (PartitionData.eventsLost), and a
 * listener behind `U` gets a gap there. The mark lived on that member only: when the partition
 * moved on (this primary left gracefully, a sealed handoff to a member that took its copy by
 * snapshot), a listener still behind `U` resumed silently past the lost write (found by an
 * internal review). Snapshots now carry the mark (`el`).
 */
type Answer = { s: number; i: number; ev: unknown[][]; gap?: [number, number] };

test("the eventsLost gap survives the partition's next (graceful) move", async () => {
  const { h, key, p } = await gridWithKeyOnC();
  const table = () => h.members.get("a")!.grid.partitions.table;
  const a = h.members.get("a")!;
  const poll = (s: number, i = 1_000_000) =>
    h.until(a.grid.invoker.invoke(p, OpCode.Events, { m: "scratch", s, i, n: 100, h: 0, ct: 1 }, false)) as Promise<
      Answer
    >;
  const scratch = a.grid.getMap<string, string>("scratch");
  const kept = a.grid.getMap<string, string>("kept");
  await h.until(kept.put(key, "k0"));
  await h.until(scratch.put(key, "v0"));
  // A listener's position after v0.
  const now = await h.until(
    a.grid.invoker.invoke(p, OpCode.Events, { m: "scratch", s: -1, i: 0, n: 100, h: 0, ct: 1 }, false),
  ) as Answer;
  const s0 = now.s;

  // v1: acknowledged by its primary alone, lost with it (kill -9 at the acknowledgement).
  await h.until(scratch.put(key, "v1").then(() => h.crash("c")));
  await h.run(5_000);
  const x = table().replicas[p][0];
  expect(x).not.toBe("c");
  // The promoted primary gives the listener behind it its gap (the fix).
  const first = await poll(s0);
  expect(first.gap).toBeDefined();

  // Later writes of the partition; then the promoted primary leaves gracefully.
  await h.until(scratch.put(key, "v2"));
  await h.until(kept.put(key, "k2"));
  await h.run(2_000);
  await h.until(h.members.get(x)!.grid.migrateAway(30_000), 60_000);
  await h.run(3_000);
  const y = table().replicas[p][0];
  expect(y).not.toBe(x);

  // The same listener position, read at the next primary: v1's write is still lost to it.
  const again = await poll(s0);
  h.stop();
  expect({ primary: y, gap: again.gap !== undefined }).toEqual({ primary: y, gap: true });
});
