import { describe, expect, test } from "bun:test";
import { Awareness, scaleTimeout } from "../src/cluster/awareness.ts";
import { isNewerList, MemberList, type MemberListHooks, raiseIncarnation } from "../src/cluster/member_list.ts";
import { Status } from "../src/cluster/messages.ts";
import type { MemberInfo } from "../src/cluster/view.ts";

describe("scaleTimeout (Lifeguard awareness)", () => {
  // memberlist awareness.go: ScaleTimeout = timeout × (score + 1).
  const cases: Array<[timeoutMs: number, score: number, expected: number]> = [
    [400, 0, 400],
    [400, 1, 800],
    [150, 2, 450],
    [150, 8, 1350],
    [0, 5, 0],
  ];
  for (const [timeoutMs, score, expected] of cases) {
    test(`${timeoutMs} ms at score ${score} → ${expected} ms`, () => {
      expect(scaleTimeout(timeoutMs, score)).toBe(expected);
    });
  }
});

describe("Awareness", () => {
  test("applyDelta clamps the score to [0, max]", () => {
    const a = new Awareness(8);
    expect(a.score).toBe(0);
    expect(a.applyDelta(-1)).toBe(0);
    expect(a.applyDelta(3)).toBe(3);
    expect(a.scaleTimeout(100)).toBe(400);
    expect(a.applyDelta(20)).toBe(8);
    expect(a.applyDelta(-1)).toBe(7);
    expect(a.applyDelta(-50)).toBe(0);
  });
});

const info = (id: string, joinedAt: number, incarnation = 0): MemberInfo => ({
  id,
  name: id,
  runtime: "sim",
  joinedAt,
  lite: false,
  incarnation,
});

function newList(self = "a"): { list: MemberList; appeared: string[]; removed: string[] } {
  const appeared: string[] = [];
  const removed: string[] = [];
  let inc = 0;
  const hooks: MemberListHooks = {
    now: () => 0,
    selfInc: () => inc,
    raiseSelfInc: (i) => void (inc = i),
    appeared: (id) => void appeared.push(id),
    removed: (id) => void removed.push(id),
  };
  return { list: new MemberList(self, hooks), appeared, removed };
}

describe("member-list version only rises", () => {
  test("isNewerList accepts only a higher version", () => {
    expect(isNewerList(5, 6)).toBe(true);
    expect(isNewerList(5, 5)).toBe(false);
    expect(isNewerList(5, 4)).toBe(false);
  });

  test("setVersion asserts on a regressing version", () => {
    const { list } = newList();
    list.setVersion(3);
    list.setVersion(3);
    expect(() => list.setVersion(2)).toThrow(/Assertion failed: member-list version must only rise \(3 -> 2\)/);
    expect(list.version).toBe(3);
  });

  test("installing an older list is a bug that fails loudly (callers drop it first)", () => {
    const { list } = newList();
    list.install({ version: 4, master: "a", epoch: 1, nextJoin: 3, members: [info("a", 1), info("b", 2)] }, null);
    expect(list.version).toBe(4);
    expect(() => list.install({ version: 2, master: "a", epoch: 1, nextJoin: 3, members: [info("a", 1)] }, null))
      .toThrow(/Assertion failed/);
  });

  test("each publication is the next version; a delta only while the base is the installed version", () => {
    const { list } = newList();
    list.install({ version: 1, master: "a", epoch: 1, nextJoin: 2, members: [info("a", 1)] }, null);
    list.fullNext = false;
    list.admit({ id: "b", name: "b", runtime: "sim", lite: false, incarnation: 0 }, null);
    const p1 = list.publication("a", 1);
    expect(p1.msg.base).toBe(1);
    expect(p1.msg.list.version).toBe(2);
    expect(p1.msg.list.members.map((m) => m.id)).toEqual(["b"]);
    list.drop("b", { s: Status.dead, id: "b", inc: 0 });
    const p2 = list.publication("a", 1);
    expect(p2.msg.base).toBe(2);
    expect(p2.msg.list.version).toBe(3);
    expect(p2.msg.removed).toEqual(["b"]);
    expect(p2.msg.g).toEqual([{ s: Status.dead, id: "b", inc: 0 }]);
    // The base moved under the pending delta (a merge raised the version): the full list goes.
    list.setVersion(7);
    const p3 = list.publication("a", 1);
    expect(p3.msg.base).toBe(0);
    expect(p3.msg.list.version).toBe(8);
  });
});

describe("incarnations never drop", () => {
  test("raiseIncarnation records a higher or equal incarnation and asserts on a lower one", () => {
    const st = { inc: 2 };
    raiseIncarnation(st, 2, "b");
    raiseIncarnation(st, 5, "b");
    expect(st.inc).toBe(5);
    expect(() => raiseIncarnation(st, 4, "b")).toThrow(/Assertion failed: incarnation of b must never drop \(5 -> 4\)/);
    expect(st.inc).toBe(5);
  });

  test("a list entry with a lower incarnation does not lower the recorded one", () => {
    const { list, appeared } = newList();
    list.install({ version: 1, master: "a", epoch: 1, nextJoin: 3, members: [info("a", 1), info("b", 2, 4)] }, null);
    expect(appeared).toEqual(["a", "b"]);
    list.install({ version: 2, master: "a", epoch: 1, nextJoin: 3, members: [info("a", 1), info("b", 2, 1)] }, null);
    expect(list.states.get("b")!.inc).toBe(4);
    expect(list.member("b")!.incarnation).toBe(4);
  });

  test("removal of an entry calls the hook; the live view follows", () => {
    const { list, removed } = newList();
    list.install({ version: 1, master: "a", epoch: 1, nextJoin: 3, members: [info("a", 1), info("b", 2)] }, null);
    expect(list.live().map((m) => m.id)).toEqual(["a", "b"]);
    list.install({ version: 2, master: "a", epoch: 1, nextJoin: 3, members: [info("b", 2)] }, { removed: ["b"] });
    expect(removed).toEqual(["b"]);
    // A delta re-adding b in the same message: removed first, then added back.
    expect(list.live().map((m) => m.id)).toEqual(["a", "b"]);
    expect(list.firstLive()).toBe("a");
  });
});

describe("a list's master is alive to whoever installs its list", () => {
  // A member cut off in a split declared the old master dead on its own (never gossiped, so
  // never refuted). After the heal the master's lists name it alive at the same incarnation;
  // the member kept its verdict, followed the oldest member it held alive instead, refused the
  // real master's tables and never rejoined (quorum scenario splitWithMaster, seed 6016).
  test("a master held dead is alive again once its list is installed; others held dead stay so", () => {
    const { list } = newList("c");
    list.install({
      version: 1,
      master: "a",
      epoch: 1,
      nextJoin: 5,
      members: [info("a", 1), info("b", 2), info("c", 3), info("d", 4)],
    }, null);
    for (const id of ["a", "d"]) list.states.get(id)!.status = Status.dead;
    list.invalidate();
    expect(list.firstLive()).toBe("b");
    list.install({
      version: 9,
      master: "a",
      epoch: 3,
      nextJoin: 5,
      members: [info("a", 1), info("b", 2), info("c", 3), info("d", 4)],
    }, null);
    expect(list.states.get("a")!.status).toBe(Status.alive);
    expect(list.firstLive()).toBe("a");
    // A verdict on another member is the failure detector's to revise (refutation raises its incarnation).
    expect(list.states.get("d")!.status).toBe(Status.dead);
    expect(list.live().map((m) => m.id)).toEqual(["a", "b", "c"]);
  });
});
