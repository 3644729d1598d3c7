/**
 * Lifeguard suspicion: a suspected member is declared dead when its suspicion times out,
 * and the timeout shrinks from `max` towards `min` as independent members confirm the
 * suspicion (hashicorp/memberlist `suspicion.go`).
 */
import type { Clock, Timer } from "../core/clock.ts";
import type { NodeId } from "../transport/transport.ts";

/**
 * The time left before a suspicion expires, given `n` independent confirmations out of
 * the `k` expected, `elapsedMs` since it started, and the `minMs`/`maxMs` bounds. The
 * timeout falls logarithmically with confirmations: `max − log(n+1)/log(k+1) × (max − min)`,
 * never below `min`. A negative result means the suspicion has already expired.
 *
 * @example
 * remainingSuspicionTime(0, 3, 0, 2000, 30000); // 30000
 * remainingSuspicionTime(3, 3, 4000, 2000, 30000); // -2000
 */
export function remainingSuspicionTime(n: number, k: number, elapsedMs: number, minMs: number, maxMs: number): number {
  const frac = Math.log(n + 1) / Math.log(k + 1);
  const raw = maxMs - frac * (maxMs - minMs);
  let timeout = Math.floor(raw);
  if (!(timeout >= minMs)) timeout = minMs; // also catches NaN when k = 0
  return timeout - elapsedMs;
}

/**
 * The suspicion bounds for a cluster of `n` members. Suspect and dead notices are sent to
 * every member directly over the mesh, so unlike memberlist the minimum carries no log(n)
 * dissemination factor.
 * @returns `{ minMs, maxMs, k }` where `k` is the number of confirmations expected
 */
export function suspicionBounds(
  n: number,
  o: { suspicionMult: number; suspicionMaxTimeoutMult: number; probeIntervalMs: number },
): { minMs: number; maxMs: number; k: number } {
  let k = o.suspicionMult - 2;
  if (n - 2 < k) k = 0;
  if (k < 0) k = 0;
  const minMs = o.suspicionMult * o.probeIntervalMs;
  return { minMs, maxMs: o.suspicionMaxTimeoutMult * minMs, k };
}

/** One running suspicion: a timer that fires sooner with every new confirmation. */
export class Suspicion {
  readonly #confirmers = new Set<NodeId>();
  readonly #start: number;
  #timer: Timer;
  #notBefore = -Infinity;

  /**
   * @param from the member whose suspicion started this (it does not count as a confirmation)
   * @param k confirmations expected before the timeout reaches `minMs`
   * @param onTimeout called once when the suspicion expires
   */
  constructor(
    readonly clock: Clock,
    from: NodeId,
    readonly k: number,
    readonly minMs: number,
    readonly maxMs: number,
    readonly onTimeout: () => void,
  ) {
    this.#start = clock.now();
    this.#confirmers.add(from);
    const first = k < 1 ? minMs : maxMs;
    this.#timer = clock.setTimer(first, onTimeout);
  }

  /** When the suspicion started (clock time). */
  get startedAt(): number {
    return this.#start;
  }

  /** Independent confirmations so far (the first accuser excluded). */
  get confirmations(): number {
    return this.#confirmers.size - 1;
  }

  /**
   * Records a confirmation from `from`; returns true if it was new (and then re-arms the
   * timer with the shorter timeout).
   */
  confirm(from: NodeId): boolean {
    if (this.confirmations >= this.k) return false;
    if (this.#confirmers.has(from)) return false;
    this.#confirmers.add(from);
    const remaining = remainingSuspicionTime(
      this.confirmations,
      this.k,
      this.clock.now() - this.#start,
      this.minMs,
      this.maxMs,
    );
    this.#timer.cancel();
    this.#timer = this.clock.setTimer(Math.max(0, remaining, this.#notBefore - this.clock.now()), this.onTimeout);
    return true;
  }

  /**
   * Postpones the expiry to `ms` from now (a verdict that must wait: the suspect was heard
   * from, or this member's own event loop was stalled). Later confirmations re-arm the timer
   * from the formula again, but never earlier than this.
   */
  postpone(ms: number): void {
    this.#notBefore = this.clock.now() + ms;
    this.#timer.cancel();
    this.#timer = this.clock.setTimer(ms, this.onTimeout);
  }

  cancel(): void {
    this.#timer.cancel();
  }
}
