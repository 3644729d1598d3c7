/**
 * A member that merges into another cluster still holds its old group's partition table
 * until its new master's table reaches it, and its old group still renews each other's
 * leases (they share that table). A write it served in that window was acknowledged after
 * the entries to merge were captured, and the new table then dropped it: an acknowledged
 * write lost. With split-brain protection on, such a member serves no data operation until
 * it holds the new table. Here the smaller side of a 3 + 2 split keeps its quorum
 * (`minClusterSize` 2) so that it has a lease when it merges; every put it acknowledged
 * from the merge on must be readable at the end. `SEED=n` replays a run.
 */
import { describe, expect, test } from "bun:test";
import { ShoalError } from "../../src/core/errors.ts";
import { withSeed } from "../../src/sim/seed.ts";
import { fullReplicas, imapSimulation, untilHealed } from "./imap_sim.ts";

const FILE = "test/sim/imap_merge_window_test.ts";

async function run(seed: number) {
  const problems: string[] = [];
  const sim = imapSimulation({
    seed,
    link: { delayMs: 0.3, jitterMs: 0.7 },
    tickMs: 5,
    grid: { partitionCount: 31, backupCount: 1, minClusterSize: 2, leaseMs: 1000 },
    problems,
  });
  const first = sim.spawn();
  void first.m.start([]);
  for (let i = 0; i < 4; i++) void sim.spawn().m.start([first.id]);
  await sim.until(() => fullReplicas(sim.liveNodes()), 60_000, 50, () => "cluster did not form");
  await sim.run(2000);
  const age = first.m.members().map((m) => sim.node(m.id)!);
  const A = age.slice(0, 3), B = age.slice(3);
  sim.partition([A.map((n) => n.id), B.map((n) => n.id)]);
  await sim.run(8000);

  // From its merge on, each member of the smaller side puts a fresh key every 5 ms for 2 s.
  const acked: Array<[string, string]> = [];
  let refused = 0, other = 0, pending = 0;
  for (const n of B) {
    const map = n.grid.getMap<string, string>("w");
    n.m.subscribe((e) => {
      if (e.type !== "merge") return;
      for (let i = 0; i < 400; i++) {
        sim.clock.setTimer(i * 5, () => {
          const key = `${n.id}-${i}`;
          pending++;
          map.put(key, `v${i}`).then(
            () => void acked.push([key, `v${i}`]),
            (err) => void (err instanceof ShoalError && err.code === "QUORUM" ? refused++ : other++),
          ).finally(() => void pending--);
        });
      }
    });
  }
  sim.heal();
  await untilHealed(sim, [...A, ...B]);
  await sim.until(() => pending === 0, 60_000, 10, () => `${pending} puts still pending`);
  await sim.run(2000);
  const settle = async <T>(p: Promise<T>): Promise<T | Error> => {
    let out: T | Error = new Error("pending");
    let done = false;
    void p.then((v) => void (out = v), (err) => void (out = err)).finally(() => void (done = true));
    await sim.until(() => done, 60_000, 1);
    return out;
  };
  const reader = A[0].grid.getMap<string, string>("w");
  const lost: string[] = [];
  for (const [key, value] of acked) {
    const got = await settle(reader.get(key));
    if (got !== value) lost.push(`${key}=${value} (read ${got})`);
  }
  // The merged members serve again.
  const afterHeal: string[] = [];
  for (const n of B) {
    const out = await settle(n.grid.getMap<string, string>("w").put(`after-${n.id}`, "x"));
    if (out instanceof Error) afterHeal.push(`${n.id}: ${out.message}`);
  }
  for (const n of sim.liveNodes()) n.stop();
  return { problems, acked: acked.length, refused, other, lost, afterHeal };
}

describe("a member merging into another cluster (split-brain protection on)", () => {
  for (const seed of [51, 52, 53]) {
    test(
      `seed ${seed}: serves nothing until it holds its new master's table; no acknowledged put is lost`,
      () =>
        withSeed(FILE, seed, async (s) => {
          const r = await run(s);
          console.log(`seed ${s}: ${r.acked} acked, ${r.refused} refused with QUORUM, ${r.other} failed otherwise`);
          expect(r.problems).toEqual([]);
          expect(r.lost).toEqual([]);
          // The window is real: the merging members refused at first, and serve again after.
          expect(r.refused).toBeGreaterThan(0);
          expect(r.afterHeal).toEqual([]);
        }),
      300_000,
    );
  }
});
