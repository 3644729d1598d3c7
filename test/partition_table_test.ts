import { describe, expect, test } from "bun:test";
import {
  emptyTable,
  epochBase,
  isNewer,
  nextTable,
  rebaseTable,
  reignTerm,
  tableFromWire,
  tableSummary,
  tableToWire,
  termRound,
} from "../src/partition/partition_table.ts";

describe("partition table summary", () => {
  const t = nextTable(emptyTable(4), [["a", "b"], ["b", "c"], ["c", "a"], ["a", "c"]]);

  test("counts every replica when all members are live", () => {
    const s = tableSummary(t, 2, new Set(["a", "b", "c"]));
    expect(s.replicasMissing).toBe(0);
    expect(s.owners).toEqual({ a: 2, b: 1, c: 1 });
  });

  test("a dead member still named in the rows counts as a missing replica, not a held one", () => {
    // Between a's death and the master's repaired table, rows still name a.
    const s = tableSummary(t, 2, new Set(["b", "c"]));
    expect(s.replicasMissing).toBe(3);
    expect(s.owners).toEqual({ b: 1, c: 1 });
  });
});

describe("terms and ownership epochs", () => {
  const base = nextTable(emptyTable(3), [["a", "b"], ["b", "c"], ["c", "a"]], new Map(), 1, reignTerm(1, 1));

  test("two masters of the same round (a split brain) never appoint a primary at the same epoch", () => {
    // Both sides start from the same table; each promotes a different member for partition 0.
    const sideA = nextTable(base, [["b"], ["b", "c"], ["c"]], new Map(), base.version + 1, reignTerm(2, 2));
    const sideB = nextTable(base, [["c"], ["c"], ["c"]], new Map(), base.version + 1, reignTerm(2, 3));
    expect(sideA.epochs[0]).not.toBe(sideB.epochs[0]);
    expect(sideA.epochs[0]).toBeGreaterThan(base.epochs[0]);
    expect(sideB.epochs[0]).toBeGreaterThan(base.epochs[0]);
    // The ranges do not overlap: every epoch of one reign is below every epoch of the other.
    expect(Math.max(...sideA.epochs)).toBeLessThan(epochBase(reignTerm(2, 3)));
  });

  test("tables are ordered by term first, then version", () => {
    expect(isNewer({ term: 5, version: 1 }, { term: 4, version: 900 })).toBe(true);
    expect(isNewer({ term: 4, version: 901 }, { term: 4, version: 900 })).toBe(true);
    expect(isNewer({ term: 4, version: 900 }, { term: 4, version: 900 })).toBe(false);
  });

  test("a rebased table keeps its replicas and outranks every epoch of both reigns", () => {
    const other = nextTable(base, [["c", "b"], ["b", "c"], ["c", "a"]], new Map(), 50, reignTerm(7, 9));
    const term = reignTerm(8, 1);
    const r = rebaseTable(base, term, 51);
    expect(r.replicas).toEqual(base.replicas);
    for (let p = 0; p < 3; p++) expect(r.epochs[p]).toBeGreaterThan(Math.max(other.epochs[p], base.epochs[p]));
    expect(isNewer(r, other)).toBe(true);
    expect(termRound(term)).toBe(8);
  });
});

describe("table wire form", () => {
  test("round-trips, and a table whose term is past the last round is refused", () => {
    const t = nextTable(emptyTable(2), [["a", "b"], ["b", "a"]], new Map(), 3, reignTerm(4, 2));
    expect(tableFromWire(tableToWire(t), 2)).toEqual(t);
    expect(tableFromWire({ ...tableToWire(t), term: 2 ** 31 }, 2)).toBeNull();
  });
});
