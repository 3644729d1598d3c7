/**
 * How a split-brain merge (src/map/split_merge.ts) cuts what it captured into MergeEntries
 * writes: the call ids of a partition's dedupe records go first, at most 1,000 per write; the
 * entries follow, `chunkEntries` per write; ids and entries together are bounded by
 * `maxEntries` (the rest dropped and counted); nothing is sent before this member holds a
 * table of its new master. The SplitMerge is real; its view, table source and invoker are
 * recording stand-ins (the simulations in test/sim run it over real members).
 */
import { expect, test } from "bun:test";
import type { ClusterEvent, ClusterView } from "../src/cluster/view.ts";
import { VirtualClock } from "../src/core/clock.ts";
import { silentLogger } from "../src/core/log.ts";
import type { Invoker } from "../src/invoke/invoker.ts";
import { OpCode } from "../src/map/operations.ts";
import { type MergeEntry, SplitMerge } from "../src/map/split_merge.ts";
import type { PartitionService } from "../src/partition/partition_service.ts";

test("call ids first (≤ 1,000 per write), then entries; both bounded by maxEntries; sent once the new table holds", async () => {
  const clock = new VirtualClock();
  const listeners: Array<(e: ClusterEvent) => void> = [];
  const view = { master: () => "m2", subscribe: (fn: (e: ClusterEvent) => void) => (listeners.push(fn), () => {}) };
  const tableListeners: Array<() => void> = [];
  const partitions = {
    table: { term: 1, version: 5 },
    tableSource: "m1" as string | undefined,
    onTableChange: (fn: () => void) => (tableListeners.push(fn), () => {}),
  };
  const sent: Array<{ p: number; op: number; body: { es: MergeEntry[]; u?: string[] } }> = [];
  const invoker = {
    invoke: (p: number, op: number, body: { es: MergeEntry[]; u?: string[] }) => {
      sent.push({ p, op, body });
      return Promise.resolve(body.es.length);
    },
  };
  const calls = Array.from({ length: 2500 }, (_, i) => `n1/0a/${i.toString(36)}`);
  const entries: MergeEntry[] = Array.from({ length: 300 }, (_, i) => ["m", new Uint8Array([i % 256]), null, i]);
  const merge = new SplitMerge({
    view: view as unknown as ClusterView,
    partitions: partitions as unknown as PartitionService,
    invoker: invoker as unknown as Invoker,
    clock,
    log: silentLogger,
    policy: "latestUpdate",
    capture: () => [{ p: 7, entries, calls }],
    config: { chunkEntries: 256, maxEntries: 2700, maxInFlight: 64 },
  });
  for (const fn of listeners) fn({ type: "merge", into: "m2" } as ClusterEvent);
  // Still the smaller side's table: nothing goes out.
  clock.advance(0);
  await Promise.resolve();
  expect(sent).toEqual([]);
  expect(merge.awaitingTable).toBe(true);
  partitions.table = { term: 2, version: 1 };
  partitions.tableSource = "m2";
  for (const fn of tableListeners) fn();
  await merge.whenIdle();

  expect(sent.every((s) => s.p === 7 && s.op === OpCode.MergeEntries)).toBe(true);
  const ids = sent.flatMap((s) => s.body.u ?? []);
  const es = sent.flatMap((s) => s.body.es);
  // All 2,500 ids, in order, before any entry; 200 entries fit under maxEntries, 100 dropped.
  expect(ids).toEqual(calls);
  // (The last ids and the first entries may share a write: one log entry records both.)
  expect(sent.findIndex((s) => s.body.es.length > 0)).toBeGreaterThanOrEqual(sent.findLastIndex((s) => s.body.u));
  expect(Math.max(...sent.map((s) => s.body.u?.length ?? 0))).toBeLessThanOrEqual(1000);
  expect(Math.max(...sent.map((s) => s.body.es.length))).toBeLessThanOrEqual(256);
  expect(es).toEqual(entries.slice(0, 200));
  expect(merge.stats).toMatchObject({
    entriesQueued: 2700,
    entriesDropped: 100,
    callsQueued: 2500,
    entriesApplied: 200,
  });
  merge.stop();
});
