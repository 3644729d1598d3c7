/**
 * Builds the real partitioned IMap layer (partition service, invoker and map service, as
 * `DataGrid` wires them) of one simulated member for the job simulations.
 */
import { DataGrid } from "../../src/map/data_grid.ts";
import type { MapLayerFactory } from "./jobs_sim.ts";

/** Partitions in the job simulations (fewer than 271 keeps the runs quick; the logic is the same). */
export const simPartitionCount = 61;

/** @param minClusterSize split-brain protection of every member (0: off) */
export function loadMapLayer(minClusterSize = 0): Promise<MapLayerFactory | undefined> {
  const factory: MapLayerFactory = (d) => {
    const grid = new DataGrid({
      self: d.self,
      view: d.view,
      transport: d.transport,
      router: d.router,
      clock: d.clock,
      rng: d.rng,
      log: d.log,
      config: {
        partitionCount: simPartitionCount,
        backupCount: 1,
        asyncBackupCount: 0,
        lite: false,
        invoke: { attemptTimeoutMs: 500, callTimeoutMs: 20_000 },
        minClusterSize,
      },
    });
    return { getMap: (name) => grid.getMap(name), stop: () => grid.stop(), gate: () => grid.quorum.check(), grid };
  };
  return Promise.resolve(factory);
}
