/**
 * The partition table's loud invariants: tables only move forward in (term, version) order,
 * and within one term no partition's ownership epoch goes down. A violation fails an
 * assert(), in the pure check and on a member that receives such a table.
 */
import { describe, expect, test } from "bun:test";
import {
  assertTableFollows,
  emptyTable,
  nextTable,
  type PartitionTable,
  reignTerm,
  tableToWire,
} from "../src/partition/partition_table.ts";
import { Kind } from "../src/wire/kinds.ts";
import { GridHarness } from "./support/grid_harness.ts";

const term = reignTerm(1, 1);
const base = nextTable(emptyTable(3), [["a", "b"], ["b", "a"], ["a", "b"]], new Map(), 1, term);

describe("assertTableFollows", () => {
  test("accepts the next version of the same term and a later term", () => {
    expect(() => assertTableFollows(base, nextTable(base, [["b", "a"], ["b", "a"], ["a", "b"]]))).not.toThrow();
    const later = nextTable(base, base.replicas, new Map(), 1, reignTerm(2, 1));
    expect(() => assertTableFollows(base, later)).not.toThrow();
  });

  test("fails on a table that is not newer in (term, version) order", () => {
    expect(() => assertTableFollows(base, base)).toThrow(/Assertion failed: table .* must be newer/);
    const older = nextTable(base, base.replicas, new Map(), 5, reignTerm(0, 1));
    expect(() => assertTableFollows(base, older)).toThrow(/must be newer/);
  });

  test("fails when a partition's epoch falls within one term", () => {
    const next: PartitionTable = {
      ...nextTable(base, base.replicas),
      epochs: [base.epochs[0] - 1, ...base.epochs.slice(1)],
    };
    expect(() => assertTableFollows(base, next)).toThrow(/partition 0's epoch falls/);
  });
});

describe("a member receiving a table", () => {
  test("a push from the master whose epoch falls within the term fails loudly and is not applied", async () => {
    const h = new GridHarness({ config: { partitionCount: 7 } });
    const a = await h.add("a");
    const b = await h.add("b");
    await h.run(3000);
    const t = b.grid.partitions.table;
    expect(t.version).toBeGreaterThan(0);
    const p = t.epochs.findIndex((e) => e > 0);
    const bad: PartitionTable = {
      ...t,
      version: t.version + 1,
      epochs: t.epochs.map((e, i) => (i === p ? e - 1 : e)),
    };
    a.transport.send("b", { t: Kind.PartitionTablePush, ...tableToWire(bad) });
    await h.run(50);
    expect(h.handlerErrors.map(String).some((e) => e.includes(`partition ${p}'s epoch falls`))).toBe(true);
    expect(b.grid.partitions.table.version).toBe(t.version);
    h.stop();
  });
});
