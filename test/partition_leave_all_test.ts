/**
 * Every data member leaving gracefully at once (a whole cluster stopped, as `docker compose down`
 * or a service manager does): each waited for its replicas to move to a member that stays, there
 * was none, and each waited out its leave timeout (30 s) and the node command exited failing
 * ("Cannot shut down cleanly"; found by an internal review). The master now lets them go as soon
 * as it knows every data member is leaving. When one member stays, the others still hand over.
 */
import { expect, test } from "bun:test";
import { LEAVE_NOWHERE_GRACE_MS } from "../src/partition/leaving_members.ts";
import { GridHarness } from "./support/grid_harness.ts";

async function start(n: number): Promise<GridHarness> {
  const h = new GridHarness({ seed: 4, config: { partitionCount: 13 } });
  for (let i = 0; i < n; i++) await h.add(`n${i}`);
  await h.run(3000);
  return h;
}

test("every data member leaving at once is let go at once, not after the leave timeout", async () => {
  const h = await start(3);
  const m = h.members.get("n0")!.grid.getMap<string, number>("m");
  for (let i = 0; i < 50; i++) await h.until(m.set(`k${i}`, i));
  const t0 = h.clock.now();
  await h.until(Promise.all(h.live().map((x) => x.grid.migrateAway(30_000))), 60_000);
  expect(h.clock.now() - t0).toBeLessThan(LEAVE_NOWHERE_GRACE_MS + 3_000);
  h.stop();
});

test("with one member staying, the leaving ones hand everything over first", async () => {
  const h = await start(3);
  const m = h.members.get("n2")!.grid.getMap<string, number>("m");
  for (let i = 0; i < 50; i++) await h.until(m.set(`k${i}`, i));
  const leaving = ["n0", "n1"].map((id) => h.members.get(id)!.grid);
  await h.until(Promise.all(leaving.map((g) => g.migrateAway(30_000))), 60_000);
  const table = h.members.get("n2")!.grid.partitions.table;
  expect(table.replicas.every((row) => row[0] === "n2")).toBe(true);
  expect(await h.until(m.size())).toBe(50);
  h.stop();
});
