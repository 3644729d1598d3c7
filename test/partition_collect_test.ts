/**
 * The parts of the partition service that own their own state: a new master's collect of the
 * newest table (table_collect.ts) and the in-sync reports of backups created in place
 * (backups_synced.ts). The service's behaviour with them runs in the simulations.
 */
import { describe, expect, test } from "bun:test";
import { VirtualClock } from "../src/core/clock.ts";
import {
  emptyTable,
  nextTable,
  reignTerm,
  tableFromWire,
  tableToWire,
  withFilling,
} from "../src/partition/partition_table.ts";
import {
  implausibleTable,
  MAX_ROUND_DRIFT,
  MAX_ROUND_LEAD,
  MAX_VERSION_LEAD,
  TableCollect,
} from "../src/partition/table_collect.ts";
import { applySyncedReports, type SyncedItem, SyncedReports } from "../src/partition/backups_synced.ts";

const table = (version: number, term = reignTerm(1, 0)) => ({
  ...nextTable(emptyTable(2), [["a"], ["b"]]),
  version,
  term,
});

describe("a new master's collect", () => {
  test("asks every other member, asks again after 300 ms those that did not answer, keeps the newest table", () => {
    const asked: string[] = [];
    const own = table(3);
    const c = new TableCollect(["b", "c", "d"], own, 0, 2000, (id) => asked.push(id));
    expect(asked).toEqual(["b", "c", "d"]);
    c.answered("b", table(2));
    c.answered("c", table(5));
    expect(c.best.version).toBe(5);
    expect(c.awaits("b")).toBe(false);
    expect(c.awaits("d")).toBe(true);
    c.askAgain(299);
    expect(asked).toEqual(["b", "c", "d"]);
    c.askAgain(300);
    expect(asked).toEqual(["b", "c", "d", "d"]);
    expect(c.done(300, () => true)).toBe(false);
    c.answered("d", null); // an answer without a usable table still counts as one
    expect(c.best.version).toBe(5);
    expect(c.done(300, () => true)).toBe(true);
  });

  test("passes over a table its master published without its quorum, however new; it survives the wire", () => {
    const c = new TableCollect(["b", "c"], table(3), 0, 2000, () => {});
    const cutOff = { ...table(7), nq: true };
    expect(tableFromWire(tableToWire(cutOff), 2)?.nq).toBe(true);
    expect(tableFromWire(tableToWire(table(7)), 2)?.nq).toBeUndefined();
    c.answered("b", tableFromWire(tableToWire(cutOff), 2));
    expect(c.best.version).toBe(3);
    c.answered("c", table(5));
    expect(c.best.version).toBe(5);
  });

  test("is done once the members that did not answer left the view, or at the deadline", () => {
    const c = new TableCollect(["b", "c"], table(1), 0, 2000, () => {});
    c.answered("b", null);
    expect(c.done(10, () => true)).toBe(false);
    expect(c.done(10, (id) => id !== "c")).toBe(true);
    expect(c.missing).toBe(0);
    const late = new TableCollect(["b"], table(1), 0, 2000, () => {});
    expect(late.done(1999, () => true)).toBe(false);
    expect(late.done(2000, () => true)).toBe(true);
    expect(late.missing).toBe(1);
  });

  test("a table whose term round or version lies too far ahead is implausible", () => {
    const mine = table(10, reignTerm(4, 0));
    expect(implausibleTable(table(11, reignTerm(4 + MAX_ROUND_LEAD, 0)), mine, 4)).toBe(false);
    expect(implausibleTable(table(11, reignTerm(5 + MAX_ROUND_LEAD, 0)), mine, 4)).toBe(true);
    // The membership's master epoch raises the bound.
    expect(implausibleTable(table(11, reignTerm(5 + MAX_ROUND_LEAD, 0)), mine, 5)).toBe(false);
    expect(implausibleTable(table(10 + MAX_VERSION_LEAD, reignTerm(4, 0)), mine, 4)).toBe(false);
    expect(implausibleTable(table(11 + MAX_VERSION_LEAD, reignTerm(4, 0)), mine, 4)).toBe(true);
    // Our own round, raised by earlier reports, does not carry the bound past the master epoch's drift.
    const raised = table(10, reignTerm(4 + MAX_ROUND_DRIFT, 0));
    expect(implausibleTable(table(11, reignTerm(4 + MAX_ROUND_DRIFT, 1)), raised, 4)).toBe(false);
    expect(implausibleTable(table(11, reignTerm(5 + MAX_ROUND_DRIFT, 0)), raised, 4)).toBe(true);
  });
});

describe("backups created in place, reported in sync", () => {
  // Partition 0: primary a, backups b and c filling; partition 1: primary b, backup a filling.
  const base = nextTable(emptyTable(2), [["a", "b", "c"], ["b", "a"]]);
  const t = withFilling(base, new Map([[0, ["b", "c"]], [1, ["a"]]]));

  test("the primary's report at its epoch takes the members off the filling list", () => {
    const after = applySyncedReports(t, "a", [{ p: 0, epoch: t.epochs[0], members: ["b"] }]);
    expect(after?.synced).toBe(1);
    expect([...after!.filling]).toEqual([[0, ["c"]], [1, ["a"]]]);
    const all = applySyncedReports(t, "a", [{ p: 0, epoch: t.epochs[0], members: ["c", "b"] }]);
    expect(all?.synced).toBe(2);
    expect([...all!.filling]).toEqual([[1, ["a"]]]);
    // Reports of several partitions make one change, each by its own primary only.
    const two = applySyncedReports(t, "b", [
      { p: 0, epoch: t.epochs[0], members: ["b"] },
      { p: 1, epoch: t.epochs[1], members: ["a"] },
    ]);
    expect(two?.synced).toBe(1);
    expect([...two!.filling]).toEqual([[0, ["b", "c"]]]);
  });

  test("a report from another member, of another epoch, or of members not filling changes nothing", () => {
    expect(applySyncedReports(t, "b", [{ p: 0, epoch: t.epochs[0], members: ["b"] }])).toBeNull();
    expect(applySyncedReports(t, "a", [{ p: 0, epoch: t.epochs[0] + 1, members: ["b"] }])).toBeNull();
    expect(applySyncedReports(t, "a", [{ p: 0, epoch: t.epochs[0], members: ["d"] }])).toBeNull();
    expect(applySyncedReports(base, "a", [{ p: 0, epoch: base.epochs[0], members: ["b"] }])).toBeNull();
  });

  test("a member's reports of 5 ms go in one batch, the newest per partition", () => {
    const clock = new VirtualClock(0);
    const sent: SyncedItem[][] = [];
    const r = new SyncedReports(clock, (items) => sent.push(items));
    r.report(0, 7, ["b"]);
    r.report(1, 7, ["a"]);
    r.report(0, 7, ["b", "c"]);
    clock.advance(4);
    expect(sent).toEqual([]);
    clock.advance(1);
    expect(sent).toEqual([[{ p: 0, epoch: 7, members: ["b", "c"] }, { p: 1, epoch: 7, members: ["a"] }]]);
    r.report(1, 8, ["c"]);
    r.stop();
    clock.advance(10);
    expect(sent.length).toBe(1);
  });
});
