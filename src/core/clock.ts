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

/** Timers in (time, insertion) order: a binary min-heap. */
class TimerHeap {
  #h: Scheduled[] = [];

  get size(): number {
    return this.#h.length;
  }

  /** The earliest timer, if any. */
  peek(): Scheduled | undefined {
    return this.#h[0];
  }

  push(s: Scheduled): void {
    const h = this.#h;
    let i = h.length;
    h.push(s);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!less(s, h[p])) break;
      h[i] = h[p];
      i = p;
    }
    h[i] = s;
  }

  pop(): Scheduled | undefined {
    const h = this.#h;
    if (h.length === 0) return undefined;
    const top = h[0];
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      this.#down(0);
    }
    return top;
  }

  /** Drops the cancelled timers (order kept). */
  compact(): void {
    this.#h = this.#h.filter((s) => !s.cancelled);
    for (let i = (this.#h.length >> 1) - 1; i >= 0; i--) this.#down(i);
  }

  #down(i: number): void {
    const h = this.#h, n = h.length, s = h[i];
    for (;;) {
      const l = 2 * i + 1, r = l + 1;
      let m = l;
      if (l >= n) break;
      if (r < n && less(h[r], h[l])) m = r;
      if (!less(h[m], s)) break;
      h[i] = h[m];
      i = m;
    }
    h[i] = s;
  }
}

function less(a: Scheduled, b: Scheduled): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

/** A discrete-event clock: timers fire in (time, insertion) order when advanced. */
export class VirtualClock implements Clock {
  #now: number;
  #seq = 0;
  #heap = new TimerHeap();

  constructor(start = 1_700_000_000_000) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimer(ms: number, fn: () => void): Timer {
    const s: Scheduled = { at: this.#now + Math.max(0, ms), seq: this.#seq++, fn, cancelled: false };
    this.#heap.push(s);
    return { cancel: () => void (s.cancelled = true) };
  }

  /** Number of pending (possibly cancelled) timers. */
  get pending(): number {
    return this.#heap.size;
  }

  /** Runs every timer due at or before `now + ms`, then sets the time to `now + ms`. */
  advance(ms: number): void {
    this.runUntil(this.#now + ms);
  }

  /** Runs timers in order until `t` (inclusive). */
  runUntil(t: number): void {
    while (this.#heap.size > 0 && this.#heap.peek()!.at <= t) {
      const s = this.#heap.pop()!;
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
    while (this.#heap.size > 0 && this.#heap.peek()!.at <= end) {
      const at = this.#heap.peek()!.at;
      while (this.#heap.size > 0 && this.#heap.peek()!.at === at) {
        const s = this.#heap.pop()!;
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
    while (this.#heap.size > 0) {
      const s = this.#heap.pop()!;
      if (s.cancelled) continue;
      this.#now = Math.max(this.#now, s.at);
      s.fn();
      return true;
    }
    return false;
  }
}

/**
 * Many short-lived timers on one timer of `clock`: the one for the earliest deadline. For
 * timers set and cancelled per operation (an invoker's attempt and ack waits: two per
 * call), where a runtime timer each costs more than the bookkeeping here (Deno 2.9: ~2.6 µs
 * per `setTimeout` and `clearTimeout` pair, Bun 0.26; bench/RESULTS.md). A timer fires at
 * the same time and in the same (time, insertion) order as with `clock.setTimer`; one set
 * while others fire waits for the next turn, as it would. A cancelled timer is only marked,
 * and dropped when it comes up or when the marked ones are the majority; once none is live,
 * all are dropped and the clock's timer cleared, so an idle queue keeps nothing awake.
 */
export class TimerQueue implements Clock {
  readonly #clock: Clock;
  #heap = new TimerHeap();
  #seq = 0;
  /** Timers in the heap neither cancelled nor fired. */
  #live = 0;
  /** The clock's timer, for the deadline `#armedAt`. */
  #armed: Timer | null = null;
  #armedAt = Infinity;
  #firing = false;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  now(): number {
    return this.#clock.now();
  }

  /** Timers waiting, cancelled ones not yet dropped included. */
  get pending(): number {
    return this.#heap.size;
  }

  setTimer(ms: number, fn: () => void): Timer {
    const t = new QueuedTimer(this.#clock.now() + Math.max(0, ms), this.#seq++, fn, this.#cancel);
    this.#heap.push(t);
    this.#live++;
    if (!this.#firing && t.at < this.#armedAt) this.#arm(t.at);
    return t;
  }

  /** A live timer was cancelled (QueuedTimer.cancel). */
  readonly #cancel = (): void => {
    this.#live--;
    if (this.#live === 0 && !this.#firing) {
      // Nothing left to wait for: no wake-up, and nothing keeps the process alive.
      this.#heap = new TimerHeap();
      this.#disarm();
    } else if (this.#heap.size > 64 && (this.#heap.size - this.#live) * 2 > this.#heap.size) this.#heap.compact();
  };

  #disarm(): void {
    this.#armed?.cancel();
    this.#armed = null;
    this.#armedAt = Infinity;
  }

  #arm(at: number): void {
    this.#armed?.cancel();
    this.#armedAt = at;
    this.#armed = this.#clock.setTimer(at - this.#clock.now(), this.#fire);
  }

  readonly #fire = (): void => {
    this.#armed = null;
    this.#armedAt = Infinity;
    const now = this.#clock.now();
    /** Timers set from here on wait for the next turn, as a runtime timer set now would. */
    const before = this.#seq;
    this.#firing = true;
    try {
      for (let s = this.#heap.peek(); s !== undefined && s.at <= now && s.seq < before; s = this.#heap.peek()) {
        this.#heap.pop();
        if (s.cancelled) continue;
        s.cancelled = true; // fired: a later cancel() is a no-op
        this.#live--;
        s.fn();
      }
    } finally {
      this.#firing = false;
      let next = this.#heap.peek();
      while (next?.cancelled) {
        this.#heap.pop();
        next = this.#heap.peek();
      }
      if (next !== undefined) this.#arm(next.at);
    }
  };
}

/** A timer of a {@link TimerQueue}: its heap entry. */
class QueuedTimer implements Scheduled, Timer {
  cancelled = false;
  constructor(
    readonly at: number,
    readonly seq: number,
    readonly fn: () => void,
    readonly onCancel: () => void,
  ) {}

  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.onCancel();
  }
}

/** Resolves after one macrotask turn, when every queued promise continuation has run. */
export function settle(): Promise<void> {
  // deno-lint-ignore no-explicit-any
  const si = (globalThis as any).setImmediate as ((fn: () => void) => void) | undefined;
  return new Promise((r) => (si ? si(r) : setTimeout(r, 0)));
}
