/**
 * The pace of a periodic tick that only has work now and then (the map layer's and the
 * partition service's). The tick runs every `tickMs` while its last run found work under way;
 * when it found none, it sleeps until `sleepUntil()` (its next periodic duty: an anti-entropy
 * round, a heartbeat). Anything that may give it work calls {@link TickPace.wake}, which brings
 * the next run back within `tickMs`: work that starts while it sleeps waits no longer than it
 * would have at the usual pace.
 */
import type { Clock, Timer } from "./clock.ts";

/** Schedules a periodic `run` that reports whether it found work, and sleeps while it finds none. */
export class TickPace {
  #timer: Timer | null = null;
  /** The timer is set for a sleep (longer than tickMs). */
  #sleeping = false;
  /** Something happened since the run began that may give it work. */
  #woken = false;
  #stopped = false;
  /** Runs so far, and those after which the tick slept. */
  readonly stats = { runs: 0, sleeps: 0 };

  /**
   * @param run one tick; returns whether work is under way
   * @param sleepUntil when the next run is due if there is none (clock time)
   */
  constructor(
    readonly clock: Clock,
    readonly tickMs: number,
    readonly run: () => boolean,
    readonly sleepUntil: () => number,
  ) {
    this.#schedule(tickMs);
  }

  /** A message, call or change reached the layer: the next run is within tickMs. */
  wake(): void {
    this.#woken = true;
    if (!this.#sleeping || this.#stopped) return;
    this.#timer?.cancel();
    this.#schedule(this.tickMs);
  }

  stop(): void {
    this.#stopped = true;
    this.#timer?.cancel();
  }

  #schedule(delay: number): void {
    this.#sleeping = delay > this.tickMs;
    this.#timer = this.clock.setTimer(delay, () => {
      if (this.#stopped) return;
      // Fired: a wake during the run only marks it (the run schedules the next one).
      this.#sleeping = false;
      this.#woken = false;
      this.stats.runs++;
      const busy = this.run();
      if (this.#stopped) return;
      let next = this.tickMs;
      if (!busy && !this.#woken) next = Math.max(this.tickMs, this.sleepUntil() - this.clock.now());
      if (next > this.tickMs) this.stats.sleeps++;
      this.#schedule(next);
    });
  }
}
