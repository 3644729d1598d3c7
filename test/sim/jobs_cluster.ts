/**
 * A formed 3-member job cluster for the simulation tests (real membership, the real map
 * layer of jobs_map_layer.ts, real job services, virtual time), and the timing they share.
 */
import type { ConnectorRegistry } from "../../src/jobs/connector_registry.ts";
import type { JobTuning } from "../../src/jobs/job_service.ts";
import { loadMapLayer } from "./jobs_map_layer.ts";
import { reader } from "./jobs_scenarios.ts";
import { JobSim, type MapLayerFactory } from "./jobs_sim.ts";

/** Quicker loops than the defaults (the logic is the same), so runs cover more in less virtual time. */
export const simTuning: JobTuning = {
  coordinatorTickMs: 50,
  resendIntervalMs: 300,
  scanIntervalMs: 1000,
  taskTickMs: 50,
  batchMax: 200,
};

/** The real partitioned IMap layer of a simulated member. */
export const simMapLayer: MapLayerFactory = (await loadMapLayer())!;

/** What {@link formJobCluster} needs. */
export interface JobClusterOptions {
  seed: number;
  /** Connector types of every member. @default built-ins */
  registry?: () => ConnectorRegistry;
  /** How long ended jobs' records are kept (JobServiceOptions.historyMs). @default the service's */
  historyMs?: number;
}

/**
 * Starts 3 members with 4 slots each and {@link simTuning}, and runs virtual time until the
 * master coordinates and all three workers are registered. Logs at info when the
 * environment sets JOBS_SIM_VERBOSE.
 */
export async function formJobCluster(o: JobClusterOptions): Promise<JobSim> {
  const verbose = !!(globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env
    .JOBS_SIM_VERBOSE;
  const sim = new JobSim({
    seed: o.seed,
    mapLayer: simMapLayer,
    slots: 4,
    tuning: simTuning,
    registry: o.registry,
    historyMs: o.historyMs,
    verbose,
  });
  for (let i = 0; i < 3; i++) await sim.addMember();
  await sim.runUntil(async () => {
    const m = sim.master();
    return !!m && m.jobs.coordinator.active && (await sim.until(reader(sim).jobs.workers())).length === 3;
  }, 30_000);
  return sim;
}

/** Runs `body` on a cluster from {@link formJobCluster}, then stops every member, whatever happened. */
export async function withJobCluster(o: JobClusterOptions, body: (sim: JobSim) => Promise<void>): Promise<void> {
  const sim = await formJobCluster(o);
  try {
    await body(sim);
  } finally {
    sim.stopAll();
  }
}
