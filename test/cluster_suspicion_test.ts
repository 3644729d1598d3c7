import { describe, expect, test } from "bun:test";
import { VirtualClock } from "../src/core/clock.ts";
import { GossipQueue, retransmitLimit } from "../src/cluster/gossip_queue.ts";
import { pushPullScale } from "../src/cluster/member_state.ts";
import { mergeWinner } from "../src/cluster/merge_rule.ts";
import { remainingSuspicionTime, Suspicion, suspicionBounds } from "../src/cluster/suspicion.ts";

describe("remainingSuspicionTime", () => {
  // The table of hashicorp/memberlist suspicion_test.go (seconds there, ms here).
  const cases: Array<[n: number, k: number, elapsed: number, min: number, max: number, expected: number]> = [
    [0, 3, 0, 2000, 30000, 30000],
    [1, 3, 2000, 2000, 30000, 14000],
    [2, 3, 3000, 2000, 30000, 4810],
    [3, 3, 4000, 2000, 30000, -2000],
    [4, 3, 5000, 2000, 30000, -3000],
    [5, 3, 10000, 2000, 30000, -8000],
  ];
  for (const [n, k, elapsed, min, max, expected] of cases) {
    test(`n=${n} k=${k} elapsed=${elapsed} → ${expected}`, () => {
      expect(remainingSuspicionTime(n, k, elapsed, min, max)).toBe(expected);
    });
  }

  test("falls monotonically with each confirmation and never below the minimum", () => {
    let last = Infinity;
    for (let n = 0; n <= 6; n++) {
      const r = remainingSuspicionTime(n, 4, 0, 1000, 9000);
      expect(r).toBeLessThanOrEqual(last);
      expect(r).toBeGreaterThanOrEqual(1000);
      last = r;
    }
  });

  test("with no confirmations expected the minimum applies", () => {
    expect(remainingSuspicionTime(0, 0, 0, 1200, 6000)).toBe(1200);
  });
});

describe("Suspicion timer", () => {
  test("suspicion times out sooner with each confirmation", () => {
    const clock = new VirtualClock(0);
    let firedAt = -1;
    const s = new Suspicion(clock, "a", 2, 1000, 9000, () => (firedAt = clock.now()));
    clock.advance(500);
    expect(s.confirm("a")).toBe(false); // the first accuser does not confirm itself
    expect(s.confirm("b")).toBe(true);
    expect(s.confirm("b")).toBe(false);
    clock.advance(1000);
    expect(firedAt).toBe(-1);
    expect(s.confirm("c")).toBe(true); // k reached: timeout is now the minimum, already elapsed
    clock.advance(1);
    expect(firedAt).toBe(1500);
    expect(s.confirm("d")).toBe(false);
  });

  test("without confirmations it lasts the maximum", () => {
    const clock = new VirtualClock(0);
    let firedAt = -1;
    new Suspicion(clock, "a", 1, 1200, 6000, () => (firedAt = clock.now()));
    clock.advance(5999);
    expect(firedAt).toBe(-1);
    clock.advance(1);
    expect(firedAt).toBe(6000);
  });

  test("bounds: no confirmations expected in tiny clusters", () => {
    const o = { suspicionMult: 3, suspicionMaxTimeoutMult: 5, probeIntervalMs: 400 };
    expect(suspicionBounds(2, o)).toEqual({ minMs: 1200, maxMs: 6000, k: 0 });
    expect(suspicionBounds(5, o)).toEqual({ minMs: 1200, maxMs: 6000, k: 1 });
  });
});

describe("gossip queue", () => {
  test("sends each update a limited number of times, least sent first", () => {
    const q = new GossipQueue(10);
    q.push({ s: 1, id: "a", inc: 1 });
    q.push({ s: 2, id: "b", inc: 1 });
    expect(q.take(1, 2).map((x) => x.id)).toEqual(["b"]); // newest of the least sent
    expect(q.take(1, 2).map((x) => x.id)).toEqual(["a"]);
    expect(q.take(5, 2).map((x) => x.id).sort()).toEqual(["a", "b"]);
    expect(q.size).toBe(0);
  });

  test("a newer update about a member replaces the older one", () => {
    const q = new GossipQueue(10);
    q.push({ s: 1, id: "a", inc: 1 });
    q.push({ s: 0, id: "a", inc: 2 });
    expect(q.take(5, 3)).toEqual([{ s: 0, id: "a", inc: 2 }]);
  });

  test("is bounded: the most-sent update is dropped when full", () => {
    const q = new GossipQueue(3);
    q.push({ s: 1, id: "a", inc: 1 });
    q.take(1, 10);
    q.push({ s: 1, id: "b", inc: 1 });
    q.push({ s: 1, id: "c", inc: 1 });
    q.push({ s: 1, id: "d", inc: 1 });
    expect(q.size).toBe(3);
    expect(q.take(10, 10).map((x) => x.id).sort()).toEqual(["b", "c", "d"]);
  });

  test("retransmit limit grows with log10 of the cluster size", () => {
    expect(retransmitLimit(3, 5)).toBe(3);
    expect(retransmitLimit(3, 100)).toBe(9);
    expect(retransmitLimit(3, 1000)).toBe(12);
  });
});

describe("split-brain rules", () => {
  test("the larger group wins; a tie goes to the master id that sorts first", () => {
    expect(mergeWinner({ size: 3, master: "a" }, { size: 5, master: "b" })).toBe("b");
    expect(mergeWinner({ size: 6, master: "z" }, { size: 5, master: "b" })).toBe("a");
    expect(mergeWinner({ size: 4, master: "a" }, { size: 4, master: "b" })).toBe("a");
    expect(mergeWinner({ size: 4, master: "b" }, { size: 4, master: "a" })).toBe("b");
  });

  test("push-pull interval scales like memberlist above 32 members", () => {
    expect(pushPullScale(10)).toBe(1);
    expect(pushPullScale(32)).toBe(1);
    expect(pushPullScale(64)).toBe(2);
    expect(pushPullScale(1000)).toBe(6);
  });
});
