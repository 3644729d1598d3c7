import { describe, expect } from "bun:test";
import {
  clusterSimulation,
  emulateSignalingRoom,
  mastersOf,
  type SimMember,
  startMember,
  viewDisagreement,
} from "../../src/sim/cluster_sim.ts";
import type { Simulation } from "../../src/sim/simulation.ts";
import { seededTest } from "../support/seeded.ts";

const seeded = seededTest("test/sim/cluster_chaos_test.ts");

/** Per-node safety checks after every step: versions and epochs never go back. */
function monotonic(sim: Simulation<SimMember>) {
  const seen = new Map<string, { v: number; e: number }>();
  return () => {
    for (const x of sim.liveNodes()) {
      if (!x.m.joined) continue;
      const prev = seen.get(x.id);
      const now = { v: x.m.memberListVersion, e: x.m.masterEpoch };
      if (prev && (now.v < prev.v || now.e < prev.e)) {
        throw new Error(`${x.id} went back: version ${prev.v} → ${now.v}, epoch ${prev.e} → ${now.e}`);
      }
      seen.set(x.id, now);
    }
  };
}

describe("membership chaos", () => {
  seeded(
    "join storms, crashes, restarts, loss, asymmetric links and short partitions end in one view",
    31,
    async (seed) => {
      const sim = clusterSimulation({ seed, encode: true });
      const check = monotonic(sim);
      emulateSignalingRoom(sim);
      const live = () => sim.liveIds();
      const joinedIds = () => live().filter((id) => sim.node(id)!.m.joined);
      const join = () => {
        const inside = joinedIds();
        startMember(sim.spawn(), inside.length ? Array.from({ length: 2 }, () => sim.rng.pick(inside)) : []);
      };
      startMember(sim.spawn(), []);
      await sim.run(5);
      for (let i = 0; i < 14; i++) join();
      const rng = sim.rng.fork();
      const log: string[] = [];
      for (let step = 0; step < 60; step++) {
        const r = rng.next();
        const ids = live();
        if (r < 0.15 && ids.length > 8) {
          const v = rng.pick(ids);
          sim.crash(v);
          log.push(`crash ${v}`);
        } else if (r < 0.3 && ids.length > 8) {
          const v = rng.pick(ids);
          const n = sim.restart(v);
          const inside = joinedIds();
          startMember(n, inside.length ? [rng.pick(inside)] : []);
          log.push(`restart ${v} as ${n.id}`);
        } else if (r < 0.4) {
          const k = 1 + rng.int(6);
          for (let i = 0; i < k; i++) join();
          log.push(`storm of ${k}`);
        } else if (r < 0.55) {
          const a = rng.pick(ids), b = rng.pick(ids);
          if (a !== b) {
            sim.blockOneWay(a, b, true);
            sim.clock.setTimer(5_000 + rng.int(10_000), () => sim.blockOneWay(a, b, false));
            log.push(`block ${a}→${b}`);
          }
        } else if (r < 0.65) {
          sim.setLoss(rng.chance(0.5) ? 0.03 : 0);
          log.push("loss toggled");
        } else if (r < 0.7) {
          const shuffled = rng.shuffle([...ids]);
          const cut = 1 + rng.int(shuffled.length - 1);
          sim.partition([shuffled.slice(0, cut), shuffled.slice(cut)]);
          sim.clock.setTimer(1_000 + rng.int(8_000), () => sim.heal());
          log.push(`partition ${cut}/${shuffled.length - cut}`);
        }
        await sim.run(500 + rng.int(2500));
        check();
      }
      // Calm: no loss, no blocks, no partition.
      sim.setLoss(0);
      sim.heal();
      for (const a of sim.all().keys()) for (const b of sim.all().keys()) if (a !== b) sim.blockOneWay(a, b, false);
      const nodes = () => sim.liveNodes();
      await sim.until(
        () => nodes().every((x) => x.m.joined) && viewDisagreement(nodes(), live()) === null,
        90_000,
        100,
        () => `${viewDisagreement(nodes(), live())}\n  history: ${log.join("; ")}`,
      );
      check();
      const ms = mastersOf(nodes());
      expect(ms.length).toBe(1);
      expect(nodes()[0].m.members()[0].id).toBe(ms[0]);
      expect(nodes().filter((x) => x.m.isMaster()).length).toBe(1);
      for (const x of nodes()) for (const m of x.m.members()) expect(sim.isCrashed(m.id)).toBe(false);
      console.log(`chaos: ${sim.all().size} nodes created, ${live().length} alive at the end; ${log.length} events`);
    },
    60_000,
  );
});
