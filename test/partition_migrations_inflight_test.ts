import { expect, test } from "bun:test";
import { InflightMigrations } from "../src/partition/migrations_inflight.ts";

test("migrations in flight: ids unique per start and reign, ready reports matched by epoch, row and id", () => {
  const m = new InflightMigrations();
  const a = m.start(3, ["x", "y"], 7, 5, 100);
  const b = m.start(4, ["y", "z"], 2, 5, 100);
  expect(a.id).not.toBe(b.id);
  expect(Math.floor(a.id / 2 ** 32)).toBe(5); // the reign's term in the high part
  expect(m.size).toBe(2);
  expect(m.matching({ p: 3, epoch: 7, row: ["x", "y"], mid: a.id })).toBe(a);
  expect(m.matching({ p: 3, epoch: 7, row: ["x", "y"] })).toBe(a); // a master that predates ids
  expect(m.matching({ p: 3, epoch: 7, row: ["x", "y"], mid: b.id })).toBeUndefined();
  expect(m.matching({ p: 3, epoch: 8, row: ["x", "y"], mid: a.id })).toBeUndefined();
  expect(m.matching({ p: 3, epoch: 7, row: ["y", "x"], mid: a.id })).toBeUndefined();
  // The same row started again (after an abandon) gets a new id: reports for the old one match nothing.
  const again = m.start(3, ["x", "y"], 7, 5, 200);
  expect(again.id).not.toBe(a.id);
  expect(m.matching({ p: 3, epoch: 7, row: ["x", "y"], mid: a.id })).toBeUndefined();
});

test("migrations in flight: resends after the interval, abandons what the predicate picks", () => {
  const m = new InflightMigrations();
  m.start(1, ["a", "b"], 1, 1, 0);
  m.start(2, ["b", "c"], 1, 1, 500);
  expect(m.dueForResend(999, 1000)).toEqual([]);
  expect(m.dueForResend(1000, 1000).map(([p]) => p)).toEqual([1]);
  expect(m.dueForResend(1200, 1000)).toEqual([]); // marked sent at 1000
  expect(m.dueForResend(1500, 1000).map(([p]) => p)).toEqual([2]);
  expect(m.abandon((_p, x) => x.row.includes("c"))).toEqual([2]);
  expect(m.has(2)).toBe(false);
  expect(m.has(1)).toBe(true);
  m.clear();
  expect(m.size).toBe(0);
});
