/**
 * The master lets every leaving member go when no data member stays (PartitionLeaveNowhere). It
 * did so at once, counting only its own view: a data member still being admitted (old members
 * stopped while new ones start, a blue/green replacement) was not counted, the leaving members
 * exited with every entry, and the joiner, admitted 300 ms later, found an empty cluster (found
 * by an internal review). The master now waits a grace period (LEAVE_NOWHERE_GRACE_MS) first.
 */
import { expect, test } from "bun:test";
import { GridHarness } from "./support/grid_harness.ts";

test("members stopping while a data member is being admitted hand their data to it", async () => {
  const h = new GridHarness({ seed: 4, config: { partitionCount: 13 } });
  for (let i = 0; i < 3; i++) await h.add(`n${i}`);
  await h.run(3000);
  const m = h.members.get("n0")!.grid.getMap<string, number>("m");
  for (let i = 0; i < 50; i++) await h.until(m.set(`k${i}`, i));

  // The replacement member is starting: the master admits it 300 ms from now.
  let joiner: Awaited<ReturnType<typeof h.add>> | undefined;
  h.clock.setTimer(300, () => void h.add("n3").then((j) => joiner = j));
  // The old members shut down as node.shutdown() does: leave, then stop (and leave the view).
  const old = ["n0", "n1", "n2"].map((id) => h.members.get(id)!);
  // (the member announces that it left and closes its links a few ms after its leave resolved)
  const done = Promise.all(old.map((x) =>
    x.grid.migrateAway(30_000)
      .then(() => h.run(0).then(() => new Promise<void>((r) => h.clock.setTimer(20, r))))
      .then(() => {
        x.grid.stop();
        h.net.crash(x.id);
        h.members.delete(x.id);
        h.cluster.remove(x.id);
        h.cluster.publish();
      })
  ));
  await h.until(done, 60_000);
  await h.run(5_000);
  const size = await h.until(joiner!.grid.getMap<string, number>("m").size());
  h.stop();
  expect(size).toBe(50);
});
