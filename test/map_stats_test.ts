/** MapStats: per-bucket latency counts (not cumulative), bounded maps, snapshots are copies. */
import { describe, expect, test } from "bun:test";
import { LATENCY_BUCKETS_MS, MapStats, MAX_MAPS, OTHER_MAPS } from "../src/map/map_stats.ts";
import { toSecondsBuckets } from "../src/http/metrics.ts";

test("each call lands in exactly one bucket; the Prometheus view is cumulative", () => {
  const stats = new MapStats();
  for (const ms of [0.1, 0.25, 0.3, 7, 10, 20_000]) stats.record("m", "Get", ms, true);
  stats.record("m", "Get", 3, false);
  const s = stats.snapshot()[0].ops.Get;
  expect(s.count).toBe(7);
  expect(s.errors).toBe(1);
  const at = (boundMs: number) => s.counts[LATENCY_BUCKETS_MS.indexOf(boundMs as never)];
  expect(at(0.25)).toBe(2); // 0.1 and 0.25 (bounds are inclusive)
  expect(at(0.5)).toBe(1);
  expect(at(5)).toBe(1); // 3
  expect(at(10)).toBe(2); // 7 and 10
  expect(s.counts[LATENCY_BUCKETS_MS.length]).toBe(1); // 20 s: above every bound
  expect(s.counts.reduce((a, b) => a + b, 0)).toBe(s.count);

  const prom = toSecondsBuckets({
    boundsMs: [...LATENCY_BUCKETS_MS],
    counts: s.counts,
    sumMs: s.sumMs,
    count: s.count,
  });
  expect(prom.buckets.find((b) => b.le === 0.01)!.count).toBe(6);
  expect(prom.buckets.at(-1)!.count).toBe(7);
});

test("a snapshot does not change when more calls are recorded", () => {
  const stats = new MapStats();
  stats.record("m", "Put", 1, true);
  const before = stats.snapshot();
  stats.record("m", "Put", 1, true);
  expect(before[0].ops.Put.count).toBe(1);
  expect(before[0].ops.Put.counts.reduce((a, b) => a + b, 0)).toBe(1);
});

describe("MapStats bounds", () => {
  test("beyond MAX_MAPS names every further map counts under one entry, and recording returns", () => {
    const s = new MapStats();
    for (let i = 0; i < MAX_MAPS + 50; i++) s.record(`m${i}`, "get", 1, true);
    s.record("m0", "get", 1, true); // a tracked map keeps its own entry
    const snap = s.snapshot();
    expect(snap.length).toBe(MAX_MAPS + 1);
    expect(snap.find((x) => x.map === OTHER_MAPS)!.ops.get.count).toBe(50);
    expect(snap.find((x) => x.map === "m0")!.ops.get.count).toBe(2);
  });
});
