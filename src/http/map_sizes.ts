/**
 * Cluster-wide map sizes for the dashboard and `/metrics`, cached so that neither asks
 * every partition owner on every tick. At most `maxMaps` maps are sized, each with a
 * timeout; one refresh runs at a time.
 */
import type { ShoalNode } from "../node_api.ts";

/** One map's entry count; `size` is null until known or when the last count failed. */
export interface MapSize {
  name: string;
  size: number | null;
}

export interface MapSizeCacheOptions {
  /** A refresh older than this is redone on the next request. @default 2000 */
  maxAgeMs?: number;
  /** Time allowed for one map's `size()`. @default 1000 */
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
    const names = [...this.node.mapNames()].sort().slice(0, this.#maxMaps);
    const sizes = await Promise.all(names.map(async (name): Promise<MapSize> => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        const size = await Promise.race([
          this.node.getMap(name).size(),
          new Promise<null>((r) => (timer = setTimeout(() => r(null), this.#timeoutMs))),
        ]);
        return { name, size };
      } catch {
        return { name, size: null };
      } finally {
        clearTimeout(timer);
      }
    }));
    this.#sizes = sizes;
  }
}
