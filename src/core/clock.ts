/**
 * The clock every state machine takes instead of reading time or setting timers itself.
 * `realClock` is used by running nodes; `VirtualClock` by the simulator, where time only
 * moves when the simulation advances it, so a seeded run replays exactly.
 */
export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds, monotonic within one clock. */
  now(): number;
  /** Calls `fn` once after `ms`. */
  setTimer(ms: number, fn: () => void): Timer;
}

// Read once: a getter call per clock read showed in the put path's profile (issue 16).
const timeOrigin = performance.timeOrigin;

/** A real timer: its handle, no closure per timer. */
class RealTimer implements Timer {
  constructor(readonly h: ReturnType<typeof setTimeout>) {}
  cancel(): void {
    clearTimeout(this.h);
  }
}

export const realClock: Clock = {
  now: () => timeOrigin + performance.now(),
  setTimer(ms, fn) {
    return new RealTimer(setTimeout(fn, Math.max(0, ms)));
  },
};

interface Scheduled {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/** A discrete-event clock: timers fire in (time, insertion) order when advanced. */
export class VirtualClock implements Clock {
  #now: number;
  #seq = 0;
  #heap: Scheduled[] = [];

  constructor(start = 1_700_000_000_000) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimer(ms: number, fn: () => void): Timer {
    const s: Scheduled = { at: this.#now + Math.max(0, ms), seq: this.#seq++, fn, cancelled: false };
    this.#push(s);
    return { cancel: () => void (s.cancelled = true) };
  }

  /** Number of pending (possibly cancelled) timers. */
  get pending(): number {
    return this.#heap.length;
  }

  /** Runs every timer due at or before `now + ms`, then sets the time to `now + ms`. */
  advance(ms: number): void {
    this.runUntil(this.#now + ms);
  }

  /** Runs timers in order until `t` (inclusive). */
  runUntil(t: number): void {
    while (this.#heap.length > 0 && this.#heap[0].at <= t) {
      const s = this.#pop()!;
      if (s.cancelled) continue;
      this.#now = Math.max(this.#now, s.at);
      s.fn();
    }
    this.#now = Math.max(this.#now, t);
  }

  /**
   * Like {@link runUntil}, but lets promise continuations settle (a macrotask turn) after
   * each group of timers due at the same instant, so async protocol code behaves as it
   * would under a real clock. Use this in simulations that await anything.
   */
  async runForAsync(ms: number): Promise<void> {
    const end = this.#now + ms;
    await settle();
    while (this.#heap.length > 0 && this.#heap[0].at <= end) {
      const at = this.#heap[0].at;
      while (this.#heap.length > 0 && this.#heap[0].at === at) {
        const s = this.#pop()!;
        if (s.cancelled) continue;
        this.#now = Math.max(this.#now, s.at);
        s.fn();
      }
      await settle();
    }
    this.#now = Math.max(this.#now, end);
  }

  /** Runs the next due timer, if any; returns false when none is pending. */
  step(): boolean {
    while (this.#heap.length > 0) {
      const s = this.#pop()!;
      if (s.cancelled) continue;
      this.#now = Math.max(this.#now, s.at);
      s.fn();
      return true;
    }
    return false;
  }

  #less(a: Scheduled, b: Scheduled) {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }
  #push(s: Scheduled) {
    const h = this.#heap;
    h.push(s);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.#less(h[i], h[p])) break;
      [h[i], h[p]] = [h[p], h[i]];
      i = p;
    }
  }
  #pop(): Scheduled | undefined {
    const h = this.#heap;
    if (h.length === 0) return undefined;
    const top = h[0];
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < h.length && this.#less(h[l], h[m])) m = l;
        if (r < h.length && this.#less(h[r], h[m])) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m], h[i]];
        i = m;
      }
    }
    return top;
  }
}

/** Resolves after one macrotask turn, when every queued promise continuation has run. */
export function settle(): Promise<void> {
  // deno-lint-ignore no-explicit-any
  const si = (globalThis as any).setImmediate as ((fn: () => void) => void) | undefined;
  return new Promise((r) => (si ? si(r) : setTimeout(r, 0)));
}
