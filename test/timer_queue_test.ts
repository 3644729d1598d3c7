/**
 * TimerQueue (src/core/clock.ts): many timers on one timer of the clock underneath. They must
 * fire exactly when and in the order the clock's own timers would, set while others fire wait
 * for the next turn, and leave no timer of the clock armed once none is live.
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { type Clock, type Timer, TimerQueue, VirtualClock } from "../src/core/clock.ts";

/** A clock over `v` that counts its own timers still armed. */
function countingClock(v: VirtualClock): Clock & { armed(): number; set: number } {
  let armed = 0;
  const c = {
    set: 0,
    now: () => v.now(),
    setTimer(ms: number, fn: () => void): Timer {
      armed++;
      c.set++;
      let live = true;
      const t = v.setTimer(ms, () => {
        live = false;
        armed--;
        fn();
      });
      return {
        cancel() {
          if (live) {
            live = false;
            armed--;
            t.cancel();
          }
        },
      };
    },
    armed: () => armed,
  };
  return c;
}

type Op = { kind: "set"; ms: number } | { kind: "cancel"; which: number } | { kind: "advance"; ms: number };

const ops = fc.array(
  fc.oneof(
    fc.record({ kind: fc.constant("set" as const), ms: fc.integer({ min: 0, max: 50 }) }),
    fc.record({ kind: fc.constant("cancel" as const), which: fc.nat(200) }),
    fc.record({ kind: fc.constant("advance" as const), ms: fc.integer({ min: 0, max: 30 }) }),
  ),
  { maxLength: 300 },
);

/** Runs `script` with timers from `clockOf(v)`; each timer, when it fires, may set a follow-up. Returns what fired, when. */
function run(script: Op[], queued: boolean): string[] {
  const v = new VirtualClock(0);
  const timers: Clock = queued ? new TimerQueue(v) : v;
  const fired: string[] = [];
  const handles: Timer[] = [];
  let id = 0;
  const set = (ms: number) => {
    const n = id++;
    handles.push(timers.setTimer(ms, () => {
      fired.push(`${n}@${v.now()}`);
      // every third timer sets another one, 0 or a few ms later
      if (n % 3 === 0 && id < 400) set(n % 2);
    }));
  };
  for (const op of script) {
    if (op.kind === "set") set(op.ms);
    else if (op.kind === "cancel") handles[op.which % Math.max(1, handles.length)]?.cancel();
    else v.advance(op.ms);
  }
  v.advance(1_000);
  return fired;
}

describe("TimerQueue", () => {
  test("timers fire at the times and in the order the clock's own would", () => {
    fc.assert(fc.property(ops, (script) => expect(run(script, true)).toEqual(run(script, false))), { numRuns: 300 });
  });

  test("one timer of the clock at a time, none once every timer is cancelled or fired", () => {
    const v = new VirtualClock(0);
    const c = countingClock(v);
    const q = new TimerQueue(c);
    const handles = Array.from({ length: 1_000 }, (_, i) => q.setTimer(100 + (i % 7), () => {}));
    // deadlines later than the first: no new timer of the clock
    expect(c.set).toBe(1);
    expect(c.armed()).toBe(1);
    for (const h of handles) h.cancel();
    expect(c.armed()).toBe(0);
    expect(q.pending).toBe(0);
    let fired = 0;
    q.setTimer(5, () => fired++);
    q.setTimer(3, () => fired++); // earlier: the clock's timer moves
    expect(c.armed()).toBe(1);
    v.advance(10);
    expect(fired).toBe(2);
    expect(c.armed()).toBe(0);
  });

  test("cancelled timers do not pile up while others stay live", () => {
    const v = new VirtualClock(0);
    const q = new TimerQueue(v);
    q.setTimer(10_000, () => {}); // one stays live throughout
    for (let i = 0; i < 10_000; i++) q.setTimer(1_000, () => {}).cancel();
    expect(q.pending).toBeLessThan(200);
  });

  test("a timer set while others fire waits for the next turn; a cancel after firing changes nothing", () => {
    const v = new VirtualClock(0);
    const q = new TimerQueue(v);
    const order: string[] = [];
    let second: Timer | null = null;
    const first = q.setTimer(1, () => {
      order.push("a");
      second = q.setTimer(0, () => order.push("c"));
    });
    q.setTimer(1, () => order.push("b"));
    v.runUntil(1);
    expect(order).toEqual(["a", "b", "c"]); // c in a later timer of the clock, same instant
    first.cancel();
    (second as Timer | null)?.cancel();
    let late = 0;
    q.setTimer(2, () => late++);
    v.advance(5);
    expect(late).toBe(1);
  });

  test("a callback that throws leaves the queue armed for the rest", () => {
    const v = new VirtualClock(0);
    const q = new TimerQueue(v);
    let later = 0;
    q.setTimer(1, () => {
      throw new Error("boom");
    });
    q.setTimer(5, () => later++);
    expect(() => v.advance(2)).toThrow("boom");
    v.advance(10);
    expect(later).toBe(1);
  });
});
