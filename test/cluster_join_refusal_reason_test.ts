/**
 * The master built ClusterJoinRefused.reason from the joiner's settings (settingsMismatch /
 * mapConfigDifference quote a map name pattern, up to 256 characters, or a setting value, up to
 * 4,096), but the schema bounds `reason` to 256 characters: the joiner's own frame validation
 * dropped a longer refusal as invalid, and the joiner never learned why (found by an internal
 * review). Reasons are now clipped to their field's limit (`clip`, wire/message.ts).
 */
import { expect, test } from "bun:test";
import { joinSettings } from "../src/cluster/join_settings.ts";
import { type SimMember, simMembership } from "../src/sim/cluster_sim.ts";
import { Simulation } from "../src/sim/simulation.ts";
import { mapConfigJoinSetting } from "../src/map/map_config.ts";

const base = {
  protocolVersion: 1,
  partitionCount: 271,
  backupCount: 1,
  asyncBackupCount: 0,
  mergePolicy: "latestUpdate",
};

async function joinWithPattern(pattern: string) {
  const clusterSettings = joinSettings(base, [mapConfigJoinSetting({})]);
  const joinerSettings = joinSettings(base, [mapConfigJoinSetting({ [pattern]: { ttlMs: 60_000 } })]);
  const sim = new Simulation<SimMember>({ seed: 7, encode: true }, (ctx) => {
    const m = simMembership(ctx, { settings: ctx.id === "a" ? clusterSettings : joinerSettings });
    return { id: ctx.id, m, events: [], stop: () => m.stop() };
  });
  const a = sim.spawn("a");
  let aDone = false;
  a.m.start([]).then(() => (aDone = true));
  await sim.run(50);
  expect(aDone).toBe(true);

  const b = sim.spawn("b");
  let outcome: string | undefined;
  b.m.start(["a"]).then(
    () => (outcome = "joined"),
    (e) => (outcome = String((e as Error).message)),
  );
  // Plenty for one join round trip (links take 5 ms, messages 1 ms), far short of the join timeout.
  await sim.run(1_000);
  const bStats = sim.net.node("b")!.stats();
  return { droppedInvalid: bStats.droppedInvalid, outcome };
}

test("control: a short pattern name, the refusal arrives and says why", async () => {
  const r = await joinWithPattern("sessions*");
  expect(r.droppedInvalid).toBe(0);
  expect(r.outcome).toContain("map config");
});

test("a joiner whose map config differs by a long pattern name is told why, at once", async () => {
  const r = await joinWithPattern(`tenant-${"x".repeat(200)}-*`); // a valid pattern (1–256 characters)
  expect(r.droppedInvalid).toBe(0); // the master's refusal must pass the joiner's validation
  expect(r.outcome).toBeDefined();
  expect(r.outcome).toContain("map config");
});
