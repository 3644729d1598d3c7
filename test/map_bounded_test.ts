import { expect, test } from "bun:test";
import { mapBounded } from "../src/core/map_bounded.ts";

test("mapBounded: results in input order, at most `width` calls in flight", async () => {
  let inFlight = 0, most = 0;
  const out = await mapBounded([5, 1, 4, 2, 3, 0], 2, async (x) => {
    most = Math.max(most, ++inFlight);
    await new Promise((r) => setTimeout(r, x));
    inFlight--;
    return x * 10;
  });
  expect(out).toEqual([50, 10, 40, 20, 30, 0]);
  expect(most).toBe(2);
  expect(await mapBounded([], 4, () => Promise.resolve(1))).toEqual([]);
});
