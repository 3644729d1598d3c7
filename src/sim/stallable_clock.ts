/**
 * One simulated node's view of the shared virtual clock, which can be stalled: a model of
 * a process whose event loop is blocked (CPU starvation, a long GC pause, a long
 * synchronous task). The time keeps moving for everybody; the stalled node's timers and
 * input wait until the stall ends.
 */
import type { Clock, Timer, VirtualClock } from "../core/clock.ts";

/**
 * A {@link Clock} over a shared {@link VirtualClock} whose timers are deferred while the
 * node is stalled. When the stall ends the overdue timers fire in their original order,
 * then the input held during the stall ({@link hold}) is handed over in arrival order.
 *
 * @example
 * const shared = new VirtualClock();
 * const c = new StallableClock(shared);
 * let fired = 0;
 * c.setTimer(100, () => fired = shared.now());
 * c.stallFor(1000);
 * shared.advance(2000); // fired === shared start + 1000, not + 100
 */
export class StallableClock implements Clock {
  #until = -Infinity;
  #held: Array<() => void> = [];
  #flushArmed = false;
  /** Whether the input held during the current stall is handed over before the overdue timers fire. */
  #inputFirst = false;

  constructor(readonly shared: VirtualClock) {}

  now(): number {
    return this.shared.now();
  }

  /** Whether the node is stalled right now. */
  get stalled(): boolean {
    return this.shared.now() < this.#until;
  }

  /** When the current (or last) stall ends. */
  get stalledUntil(): number {
    return this.#until;
  }

  setTimer(ms: number, fn: () => void): Timer {
    let cancelled = false;
    const fire = () => {
      if (cancelled) return;
      const now = this.shared.now();
      if (now < this.#until) {
        inner = this.shared.setTimer(this.#until - now, fire);
        return;
      }
      if (this.#inputFirst) this.#flush();
      fn();
    };
    let inner = this.shared.setTimer(ms, fire);
    return {
      cancel: () => {
        cancelled = true;
        inner.cancel();
      },
    };
  }

  /**
   * Stalls the node for `ms` from now (extending a running stall, never shortening it);
   * `stallFor(0)` on a crashed node drops what was held.
   * @param inputFirst hand the input held meanwhile over before the overdue timers fire (an
   *   event loop that polls I/O first after a SIGCONT), instead of after them
   */
  stallFor(ms: number, inputFirst = false): void {
    if (ms <= 0) {
      this.#held = [];
      return;
    }
    this.#until = Math.max(this.#until, this.shared.now() + ms);
    this.#inputFirst = inputFirst;
  }

  #flush(): void {
    const held = this.#held;
    this.#held = [];
    for (const d of held) d();
  }

  /** Keeps `deliver` until the stall is over (input that arrived while stalled). */
  hold(deliver: () => void): void {
    // Bounded by what the simulation sends during one stall; a crash drops it.
    this.#held.push(deliver);
    if (this.#flushArmed) return;
    this.#flushArmed = true;
    const arm = () => {
      const now = this.shared.now();
      if (now < this.#until) {
        this.shared.setTimer(this.#until - now, arm);
        return;
      }
      // One more turn at the same instant, so the overdue timers (queued before this
      // point) run first, as a real event loop runs expired timers before polling I/O
      // (unless the input goes first: then the first overdue timer, or this, hands it over).
      this.shared.setTimer(0, () => {
        this.#flushArmed = false;
        this.#flush();
      });
    };
    arm();
  }
}
