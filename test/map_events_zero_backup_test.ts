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
import { partitionOf } from "../src/partition/partition_of.ts";
import { GridHarness, incompleteReplication } from "./support/grid_harness.ts";

const P = 7;

test("an acknowledged write of a backupCount-0 map lost with its primary: the listener gets its event or a gap", async () => {
  const h = new GridHarness({
    seed: 3,
    config: { partitionCount: P, backupCount: 1, maps: { "scratch*": { backupCount: 0 } } },
  });
  for (const id of ["a", "b", "c"]) await h.add(id);
  await h.runUntil(() => incompleteReplication(h, P) === null, 30_000);
  expect(incompleteReplication(h, P)).toBeNull();

  // A key whose primary is neither the listener's member nor the writer.
  const table = h.members.get("a")!.grid.partitions.table;
  let key = "";
  for (let i = 0;; i++) {
    key = `k${i}`;
    if (table.replicas[partitionOf(key, P)][0] === "c") break;
  }
  const p = partitionOf(key, P);
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
