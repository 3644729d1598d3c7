/**
 * The one way the membership simulations form a cluster before their scenario: a first
 * member alone for a moment, the others joining through a random earlier member, then
 * virtual time until every member holds the same view (and, for most scenarios, a full
 * mesh of links). The options keep each scenario's own timings, so its seeds replay as
 * they always did.
 */
import { clusterSimulation, type SimMember, startMember, viewDisagreement } from "../../src/sim/cluster_sim.ts";
import type { Simulation } from "../../src/sim/simulation.ts";
import type { MembershipConfig } from "../../src/cluster/config.ts";

/** How {@link formCluster} forms the cluster. */
export interface FormClusterOptions {
  /** Send every message through the wire codec. @default true */
  encode?: boolean;
  /** Virtual ms the first member runs alone before the others join. @default 5 */
  aloneMs?: number;
  /** Also wait until every member links to every other. @default true */
  linked?: boolean;
  /** Budget of each wait, in virtual ms. @default 30000 */
  timeoutMs?: number;
  /** Virtual ms between two checks of a wait. @default 100 */
  stepMs?: number;
  /** Overrides for every member's membership config. */
  config?: Partial<MembershipConfig>;
}

/**
 * Forms a simulated cluster of `n` members with seed `seed`.
 * @returns the simulation, with every member in one agreed view
 * @throws Error naming the disagreement when the view does not converge in time
 */
export async function formCluster(
  seed: number,
  n: number,
  options: FormClusterOptions = {},
): Promise<Simulation<SimMember>> {
  const { encode = true, aloneMs = 5, linked = true, timeoutMs = 30_000, stepMs = 100 } = options;
  const sim = clusterSimulation({ seed, encode, config: options.config });
  startMember(sim.spawn(), []);
  await sim.run(aloneMs);
  for (let i = 1; i < n; i++) startMember(sim.spawn(), [sim.liveIds()[sim.rng.int(i)]]);
  const disagreement = () => viewDisagreement(sim.liveNodes(), sim.liveIds());
  await sim.until(() => disagreement() === null, timeoutMs, stepMs, () => disagreement()!);
  if (linked) await sim.until(() => sim.liveNodes().every((x) => x.m.links().length === n - 1), timeoutMs, stepMs);
  return sim;
}
