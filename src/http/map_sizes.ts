/**
 * Cluster-wide map sizes for the dashboard and `/metrics`, cached so that neither sweeps
 * every partition on every tick. The node sweeps the partitions once per refresh
 * (map/cluster_map_sizes.ts), so every member lists every map of the cluster: the names were
 * taken from this member's own primary copies, and a lite member listed none. At most
 * `maxMaps` maps are listed, within a timeout; one refresh runs at a time. The sweep is not a
 * map operation: scraping does not move `shoal_map_operations_total`.
 */
import type { MapSize, ShoalNode } from "../node_api.ts";

export type { MapSize };

export interface MapSizeCacheOptions {
  /** A refresh older than this is redone on the next request. @default 2000 */
  maxAgeMs?: number;
  /** Time allowed for one sweep of the partitions. @default 1000 */
  timeoutMs?: number;
  /** Maps sized per refresh (names sorted). @default 64 */
  maxMaps?: number;
}

/** See the file comment. */
export class MapSizeCache {
  #sizes: MapSize[] = [];
  #at = -Infinity;
  #running: Promise<void> | undefined;
  readonly #maxAgeMs: number;
  readonly #timeoutMs: number;
  readonly #maxMaps: number;

  constructor(private readonly node: ShoalNode, opts: MapSizeCacheOptions = {}) {
    this.#maxAgeMs = opts.maxAgeMs ?? 2000;
    this.#timeoutMs = opts.timeoutMs ?? 1000;
    this.#maxMaps = opts.maxMaps ?? 64;
  }

  /** The sizes of the last refresh (possibly empty). */
  current(): MapSize[] {
    return this.#sizes;
  }

  /** Starts a refresh if the last one is stale; resolves when a fresh value exists. */
  refresh(): Promise<void> {
    if (this.#running) return this.#running;
    if (performance.now() - this.#at < this.#maxAgeMs) return Promise.resolve();
    this.#running = this.#refresh().finally(() => {
      this.#at = performance.now();
      this.#running = undefined;
    });
    return this.#running;
  }

  async #refresh(): Promise<void> {
    try {
      this.#sizes = await this.node.mapSizes({ maxMaps: this.#maxMaps, timeoutMs: this.#timeoutMs });
    } catch {
      // The names stay; their sizes are unknown until a sweep succeeds.
      this.#sizes = this.#sizes.map((m) => ({ name: m.name, size: null }));
    }
  }
}
