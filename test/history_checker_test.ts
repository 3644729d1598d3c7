import { describe, expect, test } from "bun:test";
import { checkAckCopies, checkLinearizable, checkNoLostWrites, History } from "./support/history_checker.ts";

/** Builds a history from [key, kind, value, invokeAt, endAt | "fail", result] rows. */
function build(
  rows: Array<[string, "put" | "get" | "remove", string | undefined, number, number | "fail", string | undefined]>,
): History {
  const h = new History();
  for (const [key, kind, value, inv, end, result] of rows) {
    const op = h.invoke(key, kind, inv, value);
    if (end === "fail") h.fail(op);
    else h.ok(op, end, result);
  }
  return h;
}

describe("history checker", () => {
  test("accepts a sequential history", () => {
    const h = build([
      ["k", "put", "a", 0, 1, undefined],
      ["k", "get", undefined, 2, 3, "a"],
      ["k", "put", "b", 4, 5, "a"],
      ["k", "remove", undefined, 6, 7, "b"],
      ["k", "get", undefined, 8, 9, undefined],
    ]);
    expect(checkLinearizable(h)).toEqual({ ok: true, problems: [] });
    expect(checkNoLostWrites(h).ok).toBe(true);
  });

  test("accepts concurrent operations in either order", () => {
    const h = build([
      ["k", "put", "a", 0, 10, undefined],
      ["k", "put", "b", 1, 9, "a"], // b linearized after a although it returned first
      ["k", "get", undefined, 2, 8, "a"],
      ["k", "get", undefined, 11, 12, "b"],
    ]);
    expect(checkLinearizable(h).ok).toBe(true);
    expect(checkNoLostWrites(h).ok).toBe(true);
  });

  test("rejects a stale read", () => {
    const h = build([
      ["k", "put", "a", 0, 1, undefined],
      ["k", "put", "b", 2, 3, "a"],
      ["k", "get", undefined, 4, 5, "a"],
    ]);
    const r = checkLinearizable(h);
    expect(r.ok).toBe(false);
    expect(r.problems[0]).toContain("key k");
  });

  test("rejects a read of a value that was never written and a wrong previous value", () => {
    expect(checkLinearizable(build([["k", "get", undefined, 0, 1, "ghost"]])).ok).toBe(false);
    expect(checkLinearizable(build([["k", "put", "a", 0, 1, undefined], ["k", "put", "b", 2, 3, "zzz"]])).ok).toBe(
      false,
    );
  });

  test("reports an acknowledged write that is lost", () => {
    const h = build([
      ["k", "put", "a", 0, 1, undefined],
      ["k", "put", "b", 2, 3, "a"],
      ["k", "get", undefined, 10, 11, "a"], // b was acked, then vanished
    ]);
    const r = checkNoLostWrites(h);
    expect(r.ok).toBe(false);
    expect(r.problems[0]).toContain("acknowledged write lost");
    const gone = build([["k", "put", "a", 0, 1, undefined], ["k", "get", undefined, 5, 6, undefined]]);
    expect(checkNoLostWrites(gone).ok).toBe(false);
    expect(checkLinearizable(gone).ok).toBe(false);
  });

  test("a failed write may or may not have taken effect, at any later time", () => {
    const applied = build([
      ["k", "put", "a", 0, 1, undefined],
      ["k", "put", "b", 2, "fail", undefined],
      ["k", "get", undefined, 10, 11, "a"],
      ["k", "get", undefined, 12, 13, "b"], // took effect late
    ]);
    expect(checkLinearizable(applied).ok).toBe(true);
    expect(checkNoLostWrites(applied).ok).toBe(true);
    const never = build([["k", "put", "a", 0, 1, undefined], ["k", "put", "b", 2, "fail", undefined], [
      "k",
      "get",
      undefined,
      10,
      11,
      "a",
    ]]);
    expect(checkLinearizable(never).ok).toBe(true);
    // but once seen it cannot disappear again
    const flicker = build([
      ["k", "put", "a", 0, 1, undefined],
      ["k", "put", "b", 2, "fail", undefined],
      ["k", "get", undefined, 10, 11, "b"],
      ["k", "get", undefined, 12, 13, "a"],
    ]);
    expect(checkLinearizable(flicker).ok).toBe(false);
  });

  test("keys are checked independently", () => {
    const h = build([
      ["x", "put", "1", 0, 1, undefined],
      ["y", "put", "2", 0, 1, undefined],
      ["x", "get", undefined, 2, 3, "1"],
      ["y", "get", undefined, 2, 3, "1"],
    ]);
    const r = checkLinearizable(h);
    expect(r.problems.length).toBe(1);
    expect(r.problems[0]).toContain("key y");
  });

  test("reports a write acknowledged by fewer copies than min(backupCount + 1, data members)", () => {
    const h = new History();
    const a = h.invoke("k", "put", 0, "a");
    h.ok(a, 1, undefined);
    h.copies(a, 1, 1); // one data member: one copy is enough
    const b = h.invoke("k", "put", 2, "b");
    h.ok(b, 3, "a");
    h.copies(b, 2, 2);
    expect(checkAckCopies(h)).toEqual({ ok: true, problems: [] });
    const c = h.invoke("k", "put", 4, "c");
    h.ok(c, 5, "b");
    h.copies(c, 1, 2);
    const d = h.invoke("k", "put", 6, "d");
    h.fail(d); // a failed write is not acknowledged: its copies do not matter
    h.copies(d, 0, 2);
    expect(checkAckCopies(h).problems).toEqual(["key k: put c#2 acknowledged at 5 by 1 of 2 copies"]);
  });
});

describe("history checker with expiry", () => {
  function withTtl(rows: Array<[string, string | undefined, number, number, string | undefined, number?]>): History {
    const h = new History();
    for (const [kind, value, inv, end, result, ttl] of rows) {
      const op = h.invoke("k", kind as "put" | "get", inv, value, undefined, ttl);
      h.ok(op, end, result);
    }
    return h;
  }

  test("a value with a TTL may be read until its window closes and must be gone after", () => {
    // put at 0–10 with ttl 100: expires somewhere in [100, 111].
    const ok = withTtl([["put", "a", 0, 10, undefined, 100], ["get", undefined, 95, 99, "a"], [
      "get",
      undefined,
      120,
      121,
      undefined,
    ]]);
    expect(checkLinearizable(ok).ok).toBe(true);
    expect(checkNoLostWrites(ok).ok).toBe(true);
    const late = withTtl([["put", "a", 0, 10, undefined, 100], ["get", undefined, 120, 121, "a"]]);
    expect(checkLinearizable(late).ok).toBe(false);
    const early = withTtl([["put", "a", 0, 10, undefined, 100], ["get", undefined, 50, 60, undefined]]);
    expect(checkLinearizable(early).ok).toBe(false);
  });

  test("an overwrite without a TTL is not expired by the earlier put's TTL, and a put after expiry sees absent", () => {
    const h = withTtl([
      ["put", "a", 0, 10, undefined, 100],
      ["put", "b", 20, 30, "a"],
      ["get", undefined, 200, 201, "b"],
    ]);
    expect(checkLinearizable(h).ok).toBe(true);
    const after = withTtl([["put", "a", 0, 10, undefined, 100], ["put", "b", 200, 210, undefined]]);
    expect(checkLinearizable(after).ok).toBe(true);
    const wrongPrev = withTtl([["put", "a", 0, 10, undefined, 100], ["put", "b", 200, 210, "a"]]);
    expect(checkLinearizable(wrongPrev).ok).toBe(false);
  });
});
