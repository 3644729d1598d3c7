/**
 * The lease and quorum rules of split-brain protection (src/cluster/lease.ts), as tables:
 * who may serve, when a lease runs out, which replies renew it.
 */
import { describe, expect, test } from "bun:test";
import { LeaseTracker, quorumRefusal, stampRenews } from "../src/cluster/lease.ts";
import { mergeWinner } from "../src/cluster/merge_rule.ts";

describe("quorumRefusal", () => {
  const rows: Array<[string, number, number, number, number, "members" | "lease" | null]> = [
    // name, data members, minClusterSize, lease expires at, now, expected reason
    ["protection off (0)", 1, 0, -Infinity, 5, null],
    ["protection off (1)", 1, 1, -Infinity, 5, null],
    ["too few members", 2, 3, Infinity, 5, "members"],
    ["too few members wins over a valid lease", 1, 2, 100, 5, "members"],
    ["enough members, lease holds", 3, 3, 100, 99, null],
    ["enough members, lease ran out exactly now", 3, 3, 100, 100, "lease"],
    ["enough members, lease ran out", 5, 3, 100, 6100, "lease"],
    ["enough members, nobody ever answered", 3, 3, -Infinity, 0, "lease"],
  ];
  for (const [name, members, min, expires, now, want] of rows) {
    test(name, () => expect(quorumRefusal(members, min, expires, now)?.reason ?? null).toBe(want));
  }
  test("reports how long ago the lease ran out", () => {
    expect(quorumRefusal(3, 3, 1000, 7000)).toEqual({ reason: "lease", expiredForMs: 6000, need: 3 });
  });
});

describe("stampRenews: only a peer on the same table (or an older version of it) renews", () => {
  const rows: Array<[string, [number, number], [number, number], boolean]> = [
    ["same table", [4, 10], [4, 10], true],
    ["peer one version behind", [4, 9], [4, 10], true],
    ["peer ahead (this member missed a table)", [4, 11], [4, 10], false],
    ["peer in a later reign", [5, 1], [4, 10], false],
    [
      "peer in an earlier reign (this side lost a merge and has not adopted the winner's table)",
      [3, 99],
      [4, 10],
      false,
    ],
  ];
  for (const [name, [pt, pv], [ot, ov], want] of rows) {
    test(name, () => expect(stampRenews({ term: pt, version: pv }, { term: ot, version: ov })).toBe(want));
  }
});

describe("LeaseTracker", () => {
  test("a reply renews from the send time of the ping it answers, not from its arrival", () => {
    const l = new LeaseTracker({ leaseMs: 1000 });
    const n = l.ping(100);
    // The reply is read 6 s later (this member was stopped): the lease still ran out at 1100.
    expect(l.answered("b", n)).toBe(true);
    expect(l.confirmedAt("b")).toBe(100);
    expect(l.expiresAt(["b"], true, 2)).toBe(1100);
    expect(quorumRefusal(2, 2, l.expiresAt(["b"], true, 2), 6100)?.reason).toBe("lease");
  });

  test("the k-th newest confirmation decides, k = peers needed besides this member", () => {
    const l = new LeaseTracker({ leaseMs: 1000 });
    const p1 = l.ping(0), p2 = l.ping(200), p3 = l.ping(400);
    l.answered("a", p3);
    l.answered("b", p2);
    l.answered("c", p1);
    const peers = ["a", "b", "c", "d"];
    expect(l.expiresAt(peers, true, 1)).toBe(Infinity); // alone is enough
    expect(l.expiresAt(peers, true, 2)).toBe(1400); // a
    expect(l.expiresAt(peers, true, 3)).toBe(1200); // a, b
    expect(l.expiresAt(peers, true, 4)).toBe(1000); // a, b, c
    expect(l.expiresAt(peers, true, 5)).toBe(-Infinity); // d never answered
    // A lite member does not count itself.
    expect(l.expiresAt(peers, false, 3)).toBe(1000);
    // Only peers still in the view count.
    expect(l.expiresAt(["b", "c"], true, 3)).toBe(1000);
  });

  test("an older reply never moves a confirmation back; a forgotten ping renews nothing", () => {
    const l = new LeaseTracker({ leaseMs: 1000, maxOutstanding: 2 });
    const p1 = l.ping(0), p2 = l.ping(10);
    expect(l.answered("a", p2)).toBe(true);
    expect(l.answered("a", p1)).toBe(false);
    expect(l.confirmedAt("a")).toBe(10);
    l.ping(20);
    // p1 fell out of the two remembered pings.
    expect(l.answered("b", p1)).toBe(false);
    expect(l.confirmedAt("b")).toBeUndefined();
    expect(l.answered("b", 999)).toBe(false);
  });

  test("a forgotten peer no longer counts", () => {
    const l = new LeaseTracker({ leaseMs: 1000 });
    l.answered("a", l.ping(0));
    expect(l.expiresAt(["a"], true, 2)).toBe(1000);
    l.forget("a");
    expect(l.expiresAt(["a"], true, 2)).toBe(-Infinity);
  });

  test("rejects a non-positive lease", () => {
    expect(() => new LeaseTracker({ leaseMs: 0 })).toThrow(RangeError);
  });
});

describe("mergeWinner: a woken master's stale list does not win the merge", () => {
  const g = (master: string, members: string[]) => ({ size: members.length, master, members });
  const rows: Array<[string, ReturnType<typeof g>, ReturnType<typeof g>, "a" | "b"]> = [
    [
      "paused master woke up listing the four that elected n4",
      g("n0", ["n0", "n1", "n2", "n3", "n4"]),
      g("n4", ["n1", "n2", "n3", "n4"]),
      "b",
    ],
    [
      "the same, seen from the other master",
      g("n4", ["n1", "n2", "n3", "n4"]),
      g("n0", ["n0", "n1", "n2", "n3", "n4"]),
      "a",
    ],
    [
      "3 + 2 split, the larger side has not yet dropped the smaller one's members",
      g("n0", ["n0", "n1", "n2", "n3", "n4"]),
      g("n3", ["n3", "n4"]),
      "a",
    ],
    ["clean 3 + 2 split: the larger side", g("n0", ["n0", "n1", "n2"]), g("n3", ["n3", "n4"]), "a"],
    ["2 + 2 tie: the master id that sorts first", g("n2", ["n2", "n3"]), g("n0", ["n0", "n1"]), "b"],
  ];
  for (const [name, a, b, want] of rows) test(name, () => expect(mergeWinner(a, b)).toBe(want));
  test("without member ids the sizes decide", () => {
    expect(mergeWinner({ size: 5, master: "n0" }, g("n4", ["n1", "n2", "n3", "n4"]))).toBe("a");
  });
});

describe("mergeWinner under split-brain protection: the side whose master holds a quorum wins", () => {
  const g = (master: string, members: string[], quorum?: boolean) => ({
    size: members.length,
    master,
    members,
    quorum,
  });
  // The master n0 cut off with n1 still lists n2, which the majority (n2, n3, n4 under n3) kept.
  const minority = g("n0", ["n0", "n1", "n2"], false), majority = g("n3", ["n2", "n3", "n4"], true);
  test("a stale 3 against 3: the minority would win the tie on its id by size alone", () => {
    expect(mergeWinner({ ...minority, quorum: undefined }, { ...majority, quorum: undefined })).toBe("a");
  });
  test("with quorum reported, the majority wins, seen from either master", () => {
    expect(mergeWinner(minority, majority)).toBe("b");
    expect(mergeWinner(majority, minority)).toBe("a");
  });
  test("a quorum outranks a larger count", () => {
    expect(mergeWinner(g("n0", ["n0", "n1", "n2", "n3"], false), g("n5", ["n5", "n6"], true))).toBe("b");
  });
  test("both or neither holding a quorum: the size rule decides", () => {
    expect(mergeWinner(g("n0", ["n0", "n1"], false), g("n2", ["n2", "n3", "n4"], false))).toBe("b");
    expect(mergeWinner(g("n0", ["n0", "n1", "n2"], true), g("n3", ["n3", "n4"], true))).toBe("a");
    expect(mergeWinner(g("n2", ["n2", "n3"], false), g("n0", ["n0", "n1"], false))).toBe("b");
  });
  test("protection off on one side (no report): the size rule decides", () => {
    expect(mergeWinner(g("n0", ["n0", "n1", "n2"], false), g("n3", ["n3", "n4"]))).toBe("a");
  });
});
