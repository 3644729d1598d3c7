import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { assignPartitions, fillMissingReplicas, repairReplicas, spreadFills } from "../src/partition/assignment.ts";
import { murmur3_32 } from "../src/partition/murmur3.ts";
import { partitionOf } from "../src/partition/partition_of.ts";

const enc = (s: string) => new TextEncoder().encode(s);

describe("key hashing", () => {
  test("murmur3_32 matches the reference vectors", () => {
    expect(murmur3_32(enc(""), 0)).toBe(0);
    expect(murmur3_32(enc(""), 1)).toBe(0x514e28b7);
    expect(murmur3_32(enc(""), 0xffffffff)).toBe(0x81f16f39);
    expect(murmur3_32(enc("hello"), 0)).toBe(0x248bfa47);
    expect(murmur3_32(enc("Hello, world!"), 0)).toBe(0xc0363e43);
    expect(murmur3_32(enc("The quick brown fox jumps over the lazy dog"), 0)).toBe(0x2e4ff723);
    expect(murmur3_32(new Uint8Array([0x21, 0x43, 0x65, 0x87]), 0)).toBe(0xf55b516b);
  });

  test("partitionOf hashes the key's CBOR bytes (fixed vectors, same under Bun and Deno)", () => {
    // CBOR of "user:1" is 0x66 followed by the 6 UTF-8 bytes; of 42 it is 0x18 0x2a.
    expect(partitionOf("user:1")).toBe(murmur3_32(new Uint8Array([0x66, ...enc("user:1")])) % 271);
    expect(partitionOf(42)).toBe(murmur3_32(new Uint8Array([0x18, 0x2a])) % 271);
    const vectors: Array<[unknown, number]> = [["a", 0], ["user:1", 0], [42, 0], [0, 0], ["", 0], [[1, "x"], 0], [{
      id: 7,
    }, 0], [true, 0]];
    const got = vectors.map(([k]) => partitionOf(k));
    expect(got).toEqual([249, 237, 164, 124, 237, 173, 219, 32]);
    expect(partitionOf("a", 7)).toBe(murmur3_32(new Uint8Array([0x61, 0x61])) % 7);
  });

  test("keys spread over all 271 partitions", () => {
    const seen = new Set<number>();
    for (let i = 0; i < 10_000; i++) seen.add(partitionOf(`k${i}`));
    expect(seen.size).toBe(271);
  });
});

function members(n: number, prefix = "m"): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}${i}`);
}

/** Checks replica counts, distinctness and per-rank balance. */
function checkTable(t: string[][], ms: string[], replicaCount: number, P: number): void {
  const R = Math.min(replicaCount, ms.length);
  expect(t.length).toBe(P);
  for (const row of t) {
    expect(row.length).toBe(R);
    expect(new Set(row).size).toBe(R);
    for (const m of row) expect(ms).toContain(m);
  }
  for (let r = 0; r < R; r++) {
    const c = new Map(ms.map((m) => [m, 0]));
    for (const row of t) c.set(row[r], c.get(row[r])! + 1);
    const v = [...c.values()];
    expect(Math.max(...v) - Math.min(...v)).toBeLessThanOrEqual(1);
  }
}

/** Replica copies a table change needs: (partition, member) pairs that are new. */
function copies(prev: string[][], next: string[][]): number {
  let n = 0;
  next.forEach((row, p) => row.forEach((m) => (n += prev[p].includes(m) ? 0 : 1)));
  return n;
}

describe("partition assignment", () => {
  test("a fresh table is balanced for 1–64 members and 1–7 replicas", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 64 }),
        fc.integer({ min: 1, max: 7 }),
        fc.constantFrom(271, 31, 1, 1000),
        (n, rc, P) => {
          const ms = members(n);
          checkTable(assignPartitions({ members: ms, partitionCount: P, replicaCount: rc }), ms, rc, P);
        },
      ),
      { numRuns: 150 },
    );
  });

  test("every join keeps balance and moves about P/N replicas per rank", () => {
    for (let n = 1; n < 64; n++) {
      for (const rc of [1, 2, 3]) {
        const ms = members(n);
        const before = assignPartitions({ members: ms, partitionCount: 271, replicaCount: rc });
        const ms2 = [...ms, "joiner"];
        const after = assignPartitions({ previous: before, members: ms2, partitionCount: 271, replicaCount: rc });
        checkTable(after, ms2, rc, 271);
        const R = Math.min(rc, n + 1);
        // The joiner needs ~271/(n+1) replicas per rank; nothing else should move.
        expect(copies(before, after)).toBeLessThanOrEqual(R * Math.ceil(271 / (n + 1)) + (R - Math.min(rc, n)) * 271);
        // primaries that changed: only those the joiner takes
        const primaryMoves = after.filter((row, p) => row[0] !== before[p][0]).length;
        expect(primaryMoves).toBeLessThanOrEqual(Math.ceil(271 / (n + 1)) + (n === 1 ? 0 : 2));
      }
    }
  });

  test("every leave keeps balance, promotes the first backup and re-creates only the lost replicas", () => {
    for (let n = 2; n <= 64; n++) {
      for (const rc of [2, 3]) {
        const ms = members(n);
        const before = assignPartitions({ members: ms, partitionCount: 271, replicaCount: rc });
        for (const gone of n <= 12 ? ms : [ms[0], ms[Math.floor(n / 2)], ms[n - 1]]) {
          const ms2 = ms.filter((m) => m !== gone);
          const after = assignPartitions({ previous: before, members: ms2, partitionCount: 271, replicaCount: rc });
          checkTable(after, ms2, rc, 271);
          const R2 = Math.min(rc, n - 1);
          const lost = before.reduce((s, row) => s + (row.includes(gone) ? 1 : 0), 0);
          // copies: one per lost replica, plus rebalancing of at most a third of a member's share
          expect(copies(before, after)).toBeLessThanOrEqual(
            lost + Math.ceil((R2 * Math.ceil(271 / (n - 1))) / 3) + 2 * R2,
          );
          // repair promotes the first backup of partitions whose primary died
          const repaired = repairReplicas(before, new Set(ms2));
          before.forEach((row, p) => {
            expect(repaired[p]).toEqual(row.filter((m) => m !== gone));
            if (row[0] === gone) expect(repaired[p][0]).toBe(row[1]);
          });
          // surviving primaries mostly stay
          const kept = before.filter((row, p) => row[0] !== gone && row[0] === after[p][0]).length;
          const survivors = before.filter((row) => row[0] !== gone).length;
          expect(survivors - kept).toBeLessThanOrEqual(Math.ceil(271 / (n - 1)) + 2);
        }
      }
    }
  });

  test("random sequences of joins and leaves stay balanced (fast-check)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 7 }),
        fc.array(fc.tuple(fc.boolean(), fc.nat()), { minLength: 1, maxLength: 25 }),
        (rc, steps) => {
          let ms = members(3);
          let next = 3;
          let t = assignPartitions({ members: ms, partitionCount: 271, replicaCount: rc });
          for (const [join, pick] of steps) {
            if (join || ms.length === 1) ms = [...ms, `m${next++}`];
            else ms = ms.filter((_, i) => i !== pick % ms.length);
            const prevCount = t[0].length;
            const t2 = assignPartitions({ previous: t, members: ms, partitionCount: 271, replicaCount: rc });
            checkTable(t2, ms, rc, 271);
            // A join moves about the joiner's share when the replica count is unchanged. After a
            // history of joins and leaves, keeping every rank within one of even can take a few
            // swaps between other members too: 2 per rank at most (seed 377696726 found 187
            // copies against a share of 4 × 46 = 184, with 4 replicas and 6 members).
            if (join && t2[0].length === prevCount) {
              const rows = t2[0].length;
              expect(copies(t, t2)).toBeLessThanOrEqual(rows * Math.ceil(271 / ms.length) + 2 * rows);
            }
            t = t2;
          }
        },
      ),
      { numRuns: Number(process.env.FC_RUNS ?? 60) },
    );
  });

  test("is deterministic and keeps a balanced table unchanged", () => {
    const ms = members(5);
    const a = assignPartitions({ members: ms, partitionCount: 271, replicaCount: 2 });
    expect(assignPartitions({ members: ms, partitionCount: 271, replicaCount: 2 })).toEqual(a);
    expect(assignPartitions({ previous: a, members: ms, partitionCount: 271, replicaCount: 2 })).toEqual(a);
    expect(assignPartitions({ members: [], partitionCount: 3, replicaCount: 2 })).toEqual([[], [], []]);
  });
});

describe("fillMissingReplicas (backups created in place, invariant 10)", () => {
  test("a one-member table gets every backup in one step, from the ideal row, without moving a primary", () => {
    const one = assignPartitions({ members: ["a"], partitionCount: 271, replicaCount: 2 });
    const ms = ["a", "b", "c"];
    const ideal = assignPartitions({ previous: one, members: ms, partitionCount: 271, replicaCount: 2 });
    const { rows, filled } = fillMissingReplicas(one, ideal, ms, 2);
    expect(filled.length).toBe(271);
    for (let p = 0; p < 271; p++) {
      expect(rows[p][0]).toBe("a");
      expect(rows[p].length).toBe(2);
      // The backup is the ideal row's other member: balancing afterwards is at most a swap.
      expect(ideal[p]).toContain(rows[p][1]);
      expect(new Set(rows[p]).size).toBe(2);
    }
  });

  test("random tables: rows keep their replicas and ranks, reach min(wanted, members), stay distinct (fast-check)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 1, max: 4 }),
        fc.array(fc.array(fc.integer({ min: 0, max: 7 }), { maxLength: 4 }), { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 0, max: 3 }),
        (n, wanted, raw, skipped) => {
          const ms = members(n);
          const cur = raw.map((r) => [...new Set(r.filter((i) => i < n))].slice(0, wanted).map((i) => ms[i]));
          const ideal = assignPartitions({
            previous: cur,
            members: ms,
            partitionCount: cur.length,
            replicaCount: wanted,
          });
          const skip = new Set([skipped]);
          const { rows, filled } = fillMissingReplicas(cur, ideal, ms, wanted, skip);
          const R = Math.min(wanted, n);
          for (let p = 0; p < cur.length; p++) {
            expect(rows[p].slice(0, cur[p].length)).toEqual(cur[p]);
            expect(new Set(rows[p]).size).toBe(rows[p].length);
            const fills = cur[p].length > 0 && cur[p].length < R && !skip.has(p);
            expect(filled.includes(p)).toBe(fills);
            expect(rows[p].length).toBe(fills ? R : cur[p].length);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  test("new backups go to the least loaded members when the ideal row offers none", () => {
    const cur = [["a"], ["a"], ["a"], ["a"]];
    const { rows } = fillMissingReplicas(cur, [[], [], [], []], ["a", "b", "c"], 2);
    expect(rows.map((r) => r[1]).sort()).toEqual(["b", "b", "c", "c"]);
  });
});

describe("spreading fills over the joiners", () => {
  const P = 271;
  // A forming cluster: a leads everything, the first joiner c got every backup, b came next.
  const cur = Array.from({ length: P }, () => ["a", "c"]);
  const filling = new Map(cur.map((_, p) => [p, ["c"]]));
  const ideal = assignPartitions({ previous: cur, members: ["a", "b", "c"], partitionCount: P, replicaCount: 2 });

  test("fills that may move are split about evenly, each to a member of its ideal row, nothing else changes", () => {
    const { rows, filling: moved, moved: n } = spreadFills(cur, filling, ideal, ["a", "b", "c"], () => true);
    const onB = rows!.filter((r) => r[1] === "b").length;
    expect(Math.abs(onB - (P - onB))).toBeLessThanOrEqual(1);
    expect(n).toBe(onB);
    for (const [p, ms] of moved) {
      expect(rows![p]).toEqual(["a", "b"]);
      expect(ms).toEqual(["b"]);
      expect(ideal[p]).toContain("b");
    }
    rows!.forEach((r, p) => moved.has(p) || expect(r).toEqual(["a", "c"]));
  });

  test("a fill the check refuses stays, and rows whose ideal leaves the backup out move first", () => {
    const refused = new Set([0, 1, 2, 3, 4]);
    const { rows, moved } = spreadFills(cur, filling, ideal, ["a", "b", "c"], (p) => !refused.has(p));
    for (const p of refused) expect(rows![p]).toEqual(["a", "c"]);
    const outOfIdeal = cur.filter((_, p) => !ideal[p].includes("c") && ideal[p].includes("b") && !refused.has(p));
    expect(moved).toBeGreaterThanOrEqual(Math.min(outOfIdeal.length, Math.floor(P / 2) - 1));
    rows!.forEach((r, p) => {
      if (!ideal[p].includes("c") && ideal[p].includes("b") && !refused.has(p) && moved < outOfIdeal.length) {
        expect(r).toEqual(["a", "b"]);
      }
    });
  });

  test("nothing moves when the fills are balanced already or nothing may move", () => {
    const half = new Map(cur.map((_, p) => [p, [p % 2 ? "b" : "c"]]));
    const rows2 = cur.map((_, p) => ["a", p % 2 ? "b" : "c"]);
    expect(spreadFills(rows2, half, ideal, ["a", "b", "c"], () => true).rows).toBeNull();
    expect(spreadFills(cur, filling, ideal, ["a", "b", "c"], () => false).rows).toBeNull();
  });
});
