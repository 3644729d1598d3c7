/**
 * A rolling rotation of the cluster secret, in the simulator: members restarted with
 * `secret: NEW, previousSecret: OLD` join a cluster whose master still knows only OLD, the
 * OLD members are replaced one at a time, then members with NEW alone replace those, and a
 * member with only OLD is refused at the end. The real-process roll (signaling and links
 * included) is in test/secret_rotation_process_test.ts.
 */
import { describe, expect } from "bun:test";
import type { MembershipConfig } from "../../src/cluster/config.ts";
import type { ShoalError } from "../../src/core/errors.ts";
import { clusterSimulation, mastersOf, startMember, viewDisagreement } from "../../src/sim/cluster_sim.ts";
import { seededTest } from "../support/seeded.ts";

const seeded = seededTest("test/sim/cluster_secret_rotation_test.ts");
const OLD = "sim-secret";
const NEW = "sim-secret-2";

describe("secret rotation in a simulated cluster", () => {
  seeded(
    "members are replaced one at a time under NEW+OLD, then NEW; the view never breaks; OLD alone is refused",
    1,
    async (seed) => {
      const opts: { seed: number; config: Partial<MembershipConfig> } = { seed, config: {} };
      const sim = clusterSimulation(opts);
      const settle = async (what: string) => {
        const why = () => viewDisagreement(sim.liveNodes(), sim.liveIds());
        await sim.until(() => why() === null, 20_000, 50, () => `${what}: ${why()}`);
        expect(mastersOf(sim.liveNodes()).length).toBe(1);
      };
      // Three members under OLD.
      startMember(sim.spawn(), []);
      await sim.run(10);
      for (let i = 1; i < 3; i++) startMember(sim.spawn(), [sim.liveIds()[0]]);
      await settle("formed under OLD");

      // Replaces each member in turn: a new member with `config` joins through a random
      // live one, then the oldest original leaves.
      const roll = async (config: Partial<MembershipConfig>, phase: string) => {
        const originals = sim.liveIds();
        for (const old of originals) {
          opts.config = config;
          const seeds = sim.liveIds();
          const joiner = sim.spawn();
          startMember(joiner, [seeds[sim.rng.int(seeds.length)]]);
          await sim.until(() => joiner.started !== undefined, 30_000, 50);
          expect(joiner.started).toBe("ok");
          await settle(`${phase}: ${joiner.id} joined`);
          const leaver = sim.node(old)!;
          const left = leaver.m.leave();
          await sim.run(200);
          await left;
          sim.crash(old);
          await settle(`${phase}: ${old} left`);
        }
      };
      await roll({ secret: NEW, previousSecret: OLD }, "NEW+OLD");
      // A NEW+OLD member joining through an OLD-only master needed the previous key.
      expect(sim.liveNodes().length).toBe(3);
      await roll({ secret: NEW }, "NEW");

      // After the roll, a member that knows only OLD is refused.
      opts.config = { secret: OLD };
      const stale = sim.spawn();
      startMember(stale, [sim.liveIds()[0]]);
      await sim.until(() => stale.started !== undefined, 30_000, 50);
      expect((stale.started as ShoalError).code).toBe("AUTH_FAILED");
      sim.crash(stale.id);
      await settle("after the refused OLD member");
      expect(sim.liveNodes().every((n) => n.m.config.previousSecret === undefined && n.m.config.secret === NEW))
        .toBe(true);
    },
  );

  seeded(
    "a split brain heals across a rotation: the merge proof is retried under the other secret",
    2,
    async (seed) => {
      const opts: { seed: number; config: Partial<MembershipConfig> } = { seed, config: {} };
      const sim = clusterSimulation(opts);
      startMember(sim.spawn(), []);
      await sim.run(10);
      for (let i = 1; i < 3; i++) startMember(sim.spawn(), [sim.liveIds()[0]]);
      opts.config = { secret: NEW, previousSecret: OLD };
      for (let i = 0; i < 2; i++) startMember(sim.spawn(), [sim.liveIds()[0]]);
      const all = () => viewDisagreement(sim.liveNodes(), sim.liveIds());
      await sim.until(() => all() === null, 20_000, 50, () => all()!);
      // The two NEW+OLD members (the smaller side) are cut off from the three OLD ones.
      const ids = sim.liveIds();
      const [olds, news] = [ids.slice(0, 3), ids.slice(3)];
      sim.partition([olds, news]);
      const sides = () =>
        viewDisagreement(olds.map((id) => sim.node(id)!), olds) ??
          viewDisagreement(news.map((id) => sim.node(id)!), news);
      await sim.until(() => sides() === null, 30_000, 50, () => sides()!);
      sim.heal();
      await sim.until(() => all() === null, 60_000, 100, () => `healed: ${all()}`);
      expect(mastersOf(sim.liveNodes())).toEqual([olds[0]]);
    },
  );
});
