import { expect, test } from "bun:test";
import { addNewest, setNewest } from "../src/core/bounded.ts";

test("setNewest keeps at most max entries, forgetting the oldest; a re-set key becomes the newest", () => {
  const m = new Map<string, number>();
  for (const [i, k] of ["a", "b", "c"].entries()) setNewest(m, k, i, 3);
  expect([...m.keys()]).toEqual(["a", "b", "c"]);
  setNewest(m, "a", 9, 3); // refreshed, nothing forgotten
  expect([...m]).toEqual([["b", 1], ["c", 2], ["a", 9]]);
  setNewest(m, "d", 3, 3); // b, the oldest, goes
  expect([...m.keys()]).toEqual(["c", "a", "d"]);
  setNewest(m, "e", 4, 2); // a smaller bound: down to it
  expect([...m.keys()]).toEqual(["d", "e"]);
  setNewest(m, "f", 5, 0); // a bound of 0 still holds the newest
  expect([...m.keys()]).toEqual(["f"]);
});

test("addNewest does the same for a set", () => {
  const s = new Set<number>();
  for (let i = 0; i < 10; i++) addNewest(s, i, 4);
  expect([...s]).toEqual([6, 7, 8, 9]);
  addNewest(s, 7, 4);
  expect([...s]).toEqual([6, 8, 9, 7]);
});
