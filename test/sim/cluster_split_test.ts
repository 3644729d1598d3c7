import { describe, expect } from "bun:test";
import { formLinkedCluster, mastersOf, type SimMember, viewDisagreement } from "../../src/sim/cluster_sim.ts";
import type { Simulation } from "../../src/sim/simulation.ts";
import { formCluster as formClusterIn } from "../support/form_cluster.ts";
import { seededTest } from "../support/seeded.ts";

const seeded = seededTest("test/sim/cluster_split_test.ts");

// Large clusters skip the codec to keep the run short.
const formCluster = (seed: number, n: number) => formClusterIn(seed, n, { encode: n <= 50 });

/** Splits, checks each side elects its own master, heals, checks one cluster remains. */
async function splitAndHeal(sim: Simulation<SimMember>, sideA: string[], sideB: string[], expectWinner: "A" | "B") {
  // Each side in age order (admission order, not creation order), so [0] is its oldest.
  const age = new Map(sim.liveNodes()[0].m.members().map((m, i) => [m.id, i]));
  sideA = [...sideA].sort((a, b) => age.get(a)! - age.get(b)!);
  sideB = [...sideB].sort((a, b) => age.get(a)! - age.get(b)!);
  const A = sideA.map((id) => sim.node(id)!);
  const B = sideB.map((id) => sim.node(id)!);
  for (const x of sim.liveNodes()) x.events.length = 0;
  sim.partition([sideA, sideB]);
  const splitMs = await sim.until(
    () => viewDisagreement(A, sideA) === null && viewDisagreement(B, sideB) === null,
    30_000,
    50,
    () => `A: ${viewDisagreement(A, sideA)}; B: ${viewDisagreement(B, sideB)}`,
  );
  expect(mastersOf(A)).toEqual([sideA[0]]);
  expect(mastersOf(B)).toEqual([sideB[0]]);
  expect(A.filter((x) => x.m.isMaster()).length + B.filter((x) => x.m.isMaster()).length).toBe(2);

  sim.heal();
  const all = sim.liveIds();
  const healMs = await sim.until(
    () => viewDisagreement(sim.liveNodes(), all) === null,
    60_000,
    50,
    () => viewDisagreement(sim.liveNodes(), all) ?? "",
  );
  const winners = expectWinner === "A" ? A : B;
  const losers = expectWinner === "A" ? B : A;
  expect(mastersOf(sim.liveNodes())).toEqual([winners[0].id]);
  expect(sim.liveNodes().filter((x) => x.m.isMaster()).length).toBe(1);
  expect(new Set(sim.liveNodes().map((x) => x.m.memberListVersion)).size).toBe(1);
  // The merging side saw a merge event into the winner's master; the winning side did not.
  for (const x of losers) expect(x.events.some((e) => e.type === "merge" && e.into === winners[0].id)).toBe(true);
  for (const x of winners) expect(x.events.some((e) => e.type === "merge")).toBe(false);
  // Age order after the merge: the winners first, then the merged members.
  const order = sim.liveNodes()[0].m.members().map((m) => m.id);
  expect(new Set(order.slice(0, winners.length))).toEqual(new Set(winners.map((x) => x.id)));
  await sim.until(() => sim.liveNodes().every((x) => x.m.links().length === all.length - 1), 30_000, 100);
  return { splitMs, healMs };
}

describe("split brain", () => {
  seeded(
    "after a split into halves both halves have a master; after the heal exactly one master and one member list remain",
    21,
    async (seed) => {
      const sim = await formCluster(seed, 40);
      const ids = sim.liveNodes()[0].m.members().map((m) => m.id);
      // Equal halves: the tie goes to the group whose master id sorts first (the old master's).
      const r = await splitAndHeal(sim, ids.filter((_, i) => i % 2 === 0), ids.filter((_, i) => i % 2 === 1), "A");
      console.log(
        `40 members, halves: both masters after ${r.splitMs} ms; one cluster ${r.healMs} ms after the heal`,
      );
    },
    60_000,
  );

  seeded("the smaller side merges into the larger even when it holds the old master", 22, async (seed) => {
    const sim = await formCluster(seed, 30);
    const ids = sim.liveNodes()[0].m.members().map((m) => m.id);
    const small = [ids[0], ...ids.slice(1, 10)];
    const large = ids.slice(10);
    const r = await splitAndHeal(sim, small, large, "B");
    console.log(`30 members, 10/20 split: one cluster ${r.healMs} ms after the heal`);
  }, 60_000);

  seeded("200 members split in halves and heal into one cluster", 23, async (seed) => {
    const sim = await formCluster(seed, 200);
    const ids = sim.liveNodes()[0].m.members().map((m) => m.id);
    const r = await splitAndHeal(sim, ids.slice(0, 100), ids.slice(100), "A");
    console.log(`200 members: both masters after ${r.splitMs} ms; one cluster ${r.healMs} ms after the heal`);
  }, 60_000);
});

describe("a paused master wakes after the others elected a new one", () => {
  seeded(
    "its former members confirm the new master's claim, and the woken master merges into their cluster",
    24,
    async (base) => {
      for (let seed = base; seed < base + 3; seed++) {
        const sim = await formLinkedCluster(seed, 5);
        const order = sim.liveNodes()[0].m.members().map((m) => m.id);
        const [old, next] = order;
        for (const x of sim.liveNodes()) x.events.length = 0;
        sim.stall(old, 8000);
        await sim.until(() => sim.liveNodes().every((x) => x.id === old || x.m.master() === next), 8000, 20);
        await sim.until(
          () => viewDisagreement(sim.liveNodes(), order) === null && mastersOf(sim.liveNodes())[0] === next,
          30_000,
          50,
          () => `${viewDisagreement(sim.liveNodes(), order)}; masters ${mastersOf(sim.liveNodes())}`,
        );
        // It merged (checked with the members it still listed, which follow the new master), and nobody refused a claim.
        const woken = sim.node(old)!;
        expect({ seed, merged: woken.events.some((e) => e.type === "merge" && e.into === next) }).toEqual({
          seed,
          merged: true,
        });
        expect(sim.liveNodes().map((x) => x.m.stats.rejected.merge_claim_unconfirmed)).toEqual([0, 0, 0, 0, 0]);
        expect(mastersOf(sim.liveNodes())).toEqual([next]);
      }
    },
    60_000,
  );
});
