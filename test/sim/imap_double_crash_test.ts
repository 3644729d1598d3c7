/**
 * The multi-process scenario of test/map_process_test.ts in the simulator, with real
 * Membership: 4 members, 271 partitions, 0.3–1 ms per hop, keys written through every
 * member; the master crashes; as soon as every survivor reports 3 members, no replica
 * missing and no migration (what `GET /cluster` shows), a second member crashes; every
 * acknowledged key must read back from both survivors. Writes to fresh keys continue
 * during both recoveries.
 *
 * Regression: the summary counted a dead member named in a table row as a replica. Between
 * a member's death and the new master's repaired table every survivor reported full
 * replicas, and a second crash in that window lost every partition whose two replicas
 * were the two dead members (seed 4 lost 34 partitions).
 */
import { describe, expect, test } from "bun:test";
import { withSeed } from "../../src/sim/seed.ts";
import { fullReplicas, imapSimulation } from "./imap_sim.ts";

const FILE = "test/sim/imap_double_crash_test.ts";

async function scenario(seed: number): Promise<{ wrong: string[]; acked: number; problems: string[] }> {
  const problems: string[] = [];
  const sim = imapSimulation({
    seed,
    link: { delayMs: 0.3, jitterMs: 0.7 },
    tickMs: 5,
    grid: { partitionCount: 271 },
    problems,
  });
  const first = sim.spawn();
  void first.m.start([]);
  for (let i = 0; i < 3; i++) void sim.spawn().m.start([first.id]);
  await sim.until(() => fullReplicas(sim.liveNodes()), 60_000, 50, () => "cluster did not form");
  const members = sim.liveNodes();
  const acked = new Map<string, number>();
  let inflight = 0;
  let next = 0;
  const write = (k: number) => {
    const via = sim.liveNodes()[k % sim.liveNodes().length];
    inflight++;
    via.grid.getMap<string, number>("data").set(`k${k}`, k * 7 + 1).then(
      () => void acked.set(`k${k}`, k * 7 + 1),
      () => {},
    ).finally(() => inflight--);
  };
  // 2,000 keys, 32 in flight.
  while (next < 2000 || inflight > 0) {
    while (inflight < 32 && next < 2000) write(next++);
    await sim.run(5);
  }
  expect(acked.size).toBe(2000);
  // Writes to fresh keys continue through both recoveries.
  let writing = true;
  void (async () => {
    while (writing) {
      if (inflight < 8) write(next++);
      await new Promise<void>((r) => sim.clock.setTimer(2, r));
    }
  })();
  sim.crash(members[0].id); // the master
  await sim.until(() => fullReplicas(sim.liveNodes()), 120_000, 20, () => "no full replicas after the first crash");
  sim.crash(members[2].id);
  await sim.until(() => fullReplicas(sim.liveNodes()), 120_000, 20, () => "no full replicas after the second crash");
  writing = false;
  await sim.until(() => inflight === 0, 60_000, 10);
  const wrong: string[] = [];
  for (const m of sim.liveNodes()) {
    const map = m.grid.getMap<string, number>("data");
    let done = false;
    void Promise.all(
      [...acked].map(([k, v]) =>
        map.get(k).then(
          (got) => void (got !== v && wrong.push(`${m.id} ${k}: ${got}`)),
          (e) => void wrong.push(`${m.id} ${k}: ${e}`),
        )
      ),
    )
      .then(() => void (done = true));
    await sim.until(() => done, 60_000, 10);
  }
  for (const n of sim.liveNodes()) n.stop();
  return { wrong, acked: acked.size, problems };
}

describe("IMap: a second crash right after full replicas are reported", () => {
  for (const seed of [4, 1, 2]) {
    test(
      `seed ${seed}: every acknowledged key reads back from both survivors`,
      () =>
        withSeed(FILE, seed, async (s) => {
          const r = await scenario(s);
          expect(r.acked).toBeGreaterThan(2000);
          expect(r.wrong.slice(0, 5)).toEqual([]);
          expect(r.problems).toEqual([]);
        }),
      60_000,
    );
  }
});
