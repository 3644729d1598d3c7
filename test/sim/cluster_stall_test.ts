/**
 * False failure verdicts between live members: stalled event loops (CPU starvation, GC,
 * heavy migration work), a member that cannot hear anyone, and joins, crashes and restarts
 * under 5 % loss. None of them may remove a live member or split the cluster, and a real
 * crash must still be found.
 */
import { describe, expect } from "bun:test";
import {
  clusterSimulation,
  formLinkedCluster,
  mastersOf,
  type SimMember,
  startMember,
  viewDisagreement,
} from "../../src/sim/cluster_sim.ts";
import type { Simulation } from "../../src/sim/simulation.ts";
import { seededTest } from "../support/seeded.ts";

const seeded = seededTest("test/sim/cluster_stall_test.ts");

/** A stall this long is tolerated with the default timing (a kill is found within ~2.2 s). */
const STALL_MS = 1900;

/** Live members removed as dead (by anyone), as "observer removed member". */
function falseRemovals(sim: Simulation<SimMember>): string[] {
  return sim.liveNodes().flatMap((x) =>
    x.events.filter((e) => e.type === "memberRemoved" && !sim.isCrashed(e.member.id)).map((e) =>
      `${x.id} removed ${e.type === "memberRemoved" && e.member.id}`
    )
  );
}

function clearEvents(sim: Simulation<SimMember>): void {
  for (const x of sim.liveNodes()) x.events.length = 0;
}

describe("stalled members", () => {
  for (const [n, who] of [[3, "member"], [3, "master"], [5, "member"], [5, "master"]] as const) {
    seeded(
      `${n} members: the ${who} stalls for ${STALL_MS} ms; nobody is declared dead, no split, and the stalled member accuses nobody`,
      11,
      async (base) => {
        for (let seed = base; seed < base + 4; seed++) {
          const sim = await formLinkedCluster(seed, n);
          const ids = sim.liveIds();
          const victim = who === "master" ? ids[0] : ids[n - 1];
          const v = sim.node(victim)!.m;
          const failuresBefore = v.stats.probeFailures;
          clearEvents(sim);
          sim.stall(victim, STALL_MS);
          await sim.run(STALL_MS + 15_000);
          expect({ seed, removed: falseRemovals(sim) }).toEqual({ seed, removed: [] });
          expect(sim.liveNodes().reduce((s, x) => s + x.m.stats.deadVerdicts, 0)).toBe(0);
          expect(mastersOf(sim.liveNodes())).toEqual([ids[0]]);
          expect(viewDisagreement(sim.liveNodes(), ids)).toBeNull();
          // It noticed its own stall and did not hold the acks it could not read against anyone.
          expect(v.stats.stalls).toBeGreaterThanOrEqual(1);
          expect(v.stats.probeFailures).toBe(failuresBefore);
        }
      },
      60_000,
    );
  }

  seeded(
    `two members left after the master crashed: either one stalls for ${STALL_MS} ms and the other keeps it`,
    21,
    async (base) => {
      for (let seed = base; seed < base + 4; seed++) {
        const sim = await formLinkedCluster(seed, 3);
        const [master, b, c] = sim.liveNodes()[0].m.members().map((m) => m.id);
        sim.crash(master);
        await sim.until(
          () => sim.liveNodes().every((x) => x.m.member(master) === undefined && x.m.master() === b),
          10_000,
          20,
        );
        await sim.run(1000 + sim.rng.next() * 1000);
        for (const victim of [b, c]) {
          clearEvents(sim);
          sim.stall(victim, STALL_MS);
          await sim.run(STALL_MS + 10_000);
          expect({ seed, victim, removed: falseRemovals(sim) }).toEqual({ seed, victim, removed: [] });
          expect(mastersOf(sim.liveNodes())).toEqual([b]);
          expect(viewDisagreement(sim.liveNodes(), [b, c])).toBeNull();
        }
      }
    },
    60_000,
  );

  seeded(
    "the master crashes while a member is stalled: the new master keeps the member it merely suspects",
    51,
    async (base) => {
      for (let seed = base; seed < base + 4; seed++) {
        const sim = await formLinkedCluster(seed, 4);
        const order = sim.liveNodes()[0].m.members().map((m) => m.id);
        const stalled = order[3];
        clearEvents(sim);
        sim.stall(stalled, STALL_MS);
        await sim.run(300);
        sim.crash(order[0]);
        await sim.until(
          () => sim.liveNodes().every((x) => x.m.member(order[0]) === undefined && x.m.master() === order[1]),
          10_000,
          20,
        );
        await sim.run(10_000);
        expect({ seed, removed: falseRemovals(sim) }).toEqual({ seed, removed: [] });
        expect(viewDisagreement(sim.liveNodes(), order.slice(1))).toBeNull();
      }
    },
    60_000,
  );

  seeded(
    "repeated stalls of every member in turn (heavy migration work) remove nobody; a crash afterwards is still found",
    31,
    async (seed) => {
      const sim = await formLinkedCluster(seed, 5);
      const ids = sim.liveIds();
      clearEvents(sim);
      for (let round = 0; round < 20; round++) {
        const victim = sim.rng.pick(ids);
        sim.stall(victim, 300 + sim.rng.next() * 1500);
        await sim.run(1000 + sim.rng.next() * 3000);
      }
      await sim.run(10_000);
      expect(falseRemovals(sim)).toEqual([]);
      expect(viewDisagreement(sim.liveNodes(), ids)).toBeNull();
      sim.crash(ids[2]);
      await sim.until(() => sim.liveNodes().every((x) => x.m.member(ids[2]) === undefined), 5_000, 20);
    },
    60_000,
  );
});

describe("lone accusers", () => {
  seeded("a member that hears nobody is expelled, and its verdicts remove nobody else", 41, async (base) => {
    for (let seed = base; seed < base + 3; seed++) {
      const sim = await formLinkedCluster(seed, 4);
      const ids = sim.liveNodes()[0].m.members().map((m) => m.id);
      // The master cannot receive anything, but what it sends still arrives.
      const deaf = ids[0];
      for (const other of ids.slice(1)) sim.blockOneWay(other, deaf);
      clearEvents(sim);
      const rest = ids.slice(1).map((id) => sim.node(id)!);
      await sim.until(() => rest.every((x) => x.m.member(deaf) === undefined), 20_000, 50);
      await sim.run(10_000);
      const removedByRest = rest.flatMap((x) =>
        x.events.filter((e) => e.type === "memberRemoved").map((e) => e.type === "memberRemoved" && e.member.id)
      );
      expect({ seed, removed: [...new Set(removedByRest)] }).toEqual({ seed, removed: [deaf] });
      expect(mastersOf(rest)).toEqual([ids[1]]);
      expect(viewDisagreement(rest, ids.slice(1))).toBeNull();
    }
  }, 60_000);
});

describe("loss", () => {
  seeded(
    "joins, crashes and restarts under 5 % loss (the IMap nightly's conditions) remove no live member",
    300,
    async (base) => {
      let crashes = 0;
      for (let seed = base; seed < base + 8; seed++) {
        const sim = clusterSimulation({ seed, encode: false, link: { delayMs: 1, jitterMs: 1 } });
        startMember(sim.spawn(), []);
        await sim.run(5);
        for (let i = 1; i < 5; i++) startMember(sim.spawn(), [sim.liveIds()[0]]);
        await sim.until(() => viewDisagreement(sim.liveNodes(), sim.liveIds()) === null, 30_000, 50);
        sim.setLoss(0.05);
        const rng = sim.rng.fork();
        for (let t = 0; t < 15_000; t += 500) {
          const r = rng.next();
          const joined = sim.liveIds().filter((id) => sim.node(id)!.m.joined);
          if (r < 0.08 && joined.length > 3) {
            sim.crash(rng.pick(joined));
            crashes++;
          } else if (r < 0.16 && joined.length > 3) {
            const victim = rng.pick(joined);
            startMember(sim.restart(victim), joined.filter((id) => id !== victim));
            crashes++;
          }
          if (r > 0.85 || sim.liveIds().length < 5) startMember(sim.spawn(), joined.slice(-3));
          await sim.run(500);
        }
        await sim.until(
          () => viewDisagreement(sim.liveNodes(), sim.liveIds()) === null,
          30_000,
          100,
          () => `seed ${seed}: ${viewDisagreement(sim.liveNodes(), sim.liveIds())}`,
        );
        expect({ seed, removed: falseRemovals(sim) }).toEqual({ seed, removed: [] });
        expect(mastersOf(sim.liveNodes()).length).toBe(1);
      }
      expect(crashes).toBeGreaterThan(0);
    },
    60_000,
  );
});
