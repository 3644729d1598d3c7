/**
 * Per-map operation counters and latency histograms, measured on the calling member (so
 * they include routing and backups). Fixed buckets, so memory is bounded per map.
 */

/** Upper bounds (ms) of the latency buckets; the last bucket is +Inf. */
export const LATENCY_BUCKETS_MS = [0.25, 0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000] as const;

export interface OpStats {
  count: number;
  errors: number;
  sumMs: number;
  /**
   * Calls per bucket: entry i counts latencies above LATENCY_BUCKETS_MS[i - 1] and at most
   * LATENCY_BUCKETS_MS[i] (not cumulative); the last entry counts those above every bound.
   */
  counts: number[];
}

export interface MapOpStats {
  map: string;
  ops: Record<string, OpStats>;
}

/** Most maps tracked by name; further maps are counted together under {@link OTHER_MAPS}. */
export const MAX_MAPS = 1000;
/** The name the maps beyond {@link MAX_MAPS} are counted under (one entry more than MAX_MAPS at most). */
export const OTHER_MAPS = "(other)";

export class MapStats {
  #maps = new Map<string, Map<string, OpStats>>();

  record(map: string, op: string, latencyMs: number, ok: boolean): void {
    let m = this.#maps.get(map);
    if (!m) {
      const name = this.#maps.size >= MAX_MAPS ? OTHER_MAPS : map;
      m = this.#maps.get(name);
      if (!m) this.#maps.set(name, m = new Map());
    }
    let s = m.get(op);
    if (!s) {
      (s = { count: 0, errors: 0, sumMs: 0, counts: new Array(LATENCY_BUCKETS_MS.length + 1).fill(0) }, m.set(op, s));
    }
    s.count++;
    if (!ok) s.errors++;
    s.sumMs += latencyMs;
    let i = 0;
    while (i < LATENCY_BUCKETS_MS.length && latencyMs > LATENCY_BUCKETS_MS[i]) i++;
    s.counts[i]++;
  }

  /** A copy of every map's counters. */
  snapshot(): MapOpStats[] {
    return [...this.#maps].map(([map, ops]) => ({
      map,
      ops: Object.fromEntries([...ops].map(([op, s]) => [op, { ...s, counts: [...s.counts] }])),
    }));
  }
}
