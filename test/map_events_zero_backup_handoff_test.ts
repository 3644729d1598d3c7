/**
 * A primary promoted from a backup above level 0 marks the maps it did not hold (here
 * `scratch`, backupCount 0) as lost up to its sequence `U` (PartitionData.eventsLost), and a
 * listener behind `U` gets a gap there. The mark lived on that member only: when the partition
 * moved on (this primary left gracefully, a sealed handoff to a member that took its copy by
 * snapshot), a listener still behind `U` resumed silently past the lost write (found by an
 * internal review). Snapshots now carry the mark (`el`).
 */
import { expect, test } from "bun:test";
import { OpCode } from "../src/map/operations.ts";
import { partitionOf } from "../src/partition/partition_of.ts";
import { GridHarness, incompleteReplication } from "./support/grid_harness.ts";

const P = 7;

type Answer = { s: number; i: number; ev: unknown[][]; gap?: [number, number] };

test("the eventsLost gap survives the partition's next (graceful) move", async () => {
  const h = new GridHarness({
    seed: 3,
    config: { partitionCount: P, backupCount: 1, maps: { "scratch*": { backupCount: 0 } } },
  });
  for (const id of ["a", "b", "c"]) await h.add(id);
  await h.runUntil(() => incompleteReplication(h, P) === null, 30_000);
  expect(incompleteReplication(h, P)).toBeNull();

  const table = () => h.members.get("a")!.grid.partitions.table;
  let key = "";
  for (let i = 0;; i++) {
    key = `k${i}`;
    if (table().replicas[partitionOf(key, P)][0] === "c") break;
  }
  const p = partitionOf(key, P);
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
