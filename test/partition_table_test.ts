import { describe, expect, test } from "bun:test";
import { emptyTable, nextTable, tableSummary } from "../src/partition/partition_table.ts";

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
