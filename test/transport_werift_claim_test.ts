import { describe, expect, test } from "bun:test";
import { claimInstance } from "../src/transport/werift_claim.ts";

describe("claimInstance", () => {
  test("claims an object of the expected shape once, marking it with the value given", () => {
    const counts: boolean[] = [];
    const obj: Record<string, unknown> = {};
    const send = () => {};
    expect(claimInstance(obj, "mark", true, (t) => counts.push(t), send)).toBe(true);
    expect(obj.mark).toBe(send);
    // A second patch attempt on the same object does nothing and counts nothing.
    expect(claimInstance(obj, "mark", true, (t) => counts.push(t))).toBe(false);
    expect(claimInstance(obj, "mark", false, (t) => counts.push(t))).toBe(false);
    expect(obj.mark).toBe(send);
    expect(counts).toEqual([true]);
  });

  test("leaves an object of another shape alone and counts it untuned", () => {
    const counts: boolean[] = [];
    const obj: Record<string, unknown> = {};
    expect(claimInstance(obj, "mark", false, (t) => counts.push(t))).toBe(false);
    expect("mark" in obj).toBe(false);
    expect(claimInstance(undefined, "mark", false, (t) => counts.push(t))).toBe(false);
    expect(counts).toEqual([false, false]);
  });
});
