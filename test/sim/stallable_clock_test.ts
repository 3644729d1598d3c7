/** The order in which a stalled node's overdue timers and held input run when the stall ends. */
import { describe, expect, test } from "bun:test";
import { VirtualClock } from "../../src/core/clock.ts";
import { StallableClock } from "../../src/sim/stallable_clock.ts";

function scenario(inputFirst: boolean): string[] {
  const shared = new VirtualClock();
  const c = new StallableClock(shared);
  const order: string[] = [];
  c.setTimer(100, () => order.push("timer@" + (shared.now() - start)));
  const start = shared.now();
  c.stallFor(1000, inputFirst);
  shared.advance(200);
  c.hold(() => order.push("input@" + (shared.now() - start)));
  shared.advance(2000);
  return order;
}

describe("StallableClock", () => {
  test("by default the overdue timers fire first, then the held input, both when the stall ends", () => {
    expect(scenario(false)).toEqual(["timer@1000", "input@1000"]);
  });
  test("with inputFirst the held input is handed over before the overdue timers", () => {
    expect(scenario(true)).toEqual(["input@1000", "timer@1000"]);
  });
});
