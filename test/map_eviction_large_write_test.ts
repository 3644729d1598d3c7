import { expect, test } from "bun:test";
import { GridHarness } from "./support/grid_harness.ts";

// README: "the entries of a map whose primary is a member stay at most maxSizePerMember ... Each
// write evicts what it added (at most 8 more), on the write path." MapHousekeeping.afterWrite
// learns what a write added from the partition's event ring (d.events.since), which holds 256
// events (map.eventsPerPartition). It used to drop even the current write's own events beyond
// that (EventRing.add), so a per-partition putAll batch of more than 256 new entries was mostly
// not counted: little was evicted on the write path, and a member held 2,299 entries against a
// limit of 500 until the tick's once-a-second recount. The ring now holds the newest write whole.
const P = 13;
const LIMIT = 500;

async function run(perPartition: number) {
  const h = new GridHarness({ config: { partitionCount: P, maps: { cache: { maxSizePerMember: LIMIT } } } });
  for (const id of ["n0", "n1"]) await h.add(id);
  await h.run(3000);
  const m = h.members.get("n0")!.grid.getMap<number, number>("cache");
  await h.until(m.set(-1, -1)); // usage counted from here on
  await h.run(1500);
  const worst = () =>
    Math.max(
      ...h.live().map((x) => x.grid.maps.localMapEntries().find((e) => e.name === "cache")?.primaryEntries ?? 0),
    );
  await h.until(m.putAll(new Map(Array.from({ length: perPartition * P }, (_, i) => [i, i]))));
  const after = worst();
  let t = 0;
  while (worst() > LIMIT && t < 3000) (await h.run(10), t += 10);
  h.stop();
  return { after, overForMs: t };
}

test("control: a putAll of ~200 entries per partition leaves every member within its limit", async () => {
  const r = await run(200);
  console.log(
    `200/partition: largest member's primary entries after putAll ${r.after}, over the limit ${r.overForMs} ms more`,
  );
  expect(r.after).toBeLessThanOrEqual(LIMIT);
});

test("a putAll of ~400 entries per partition (over the 256-event ring) leaves every member within its limit", async () => {
  const r = await run(400);
  console.log(
    `400/partition: largest member's primary entries after putAll ${r.after}, over the limit ${r.overForMs} ms more`,
  );
  expect(r.after).toBeLessThanOrEqual(LIMIT);
});
