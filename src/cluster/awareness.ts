/**
 * Lifeguard local health ("awareness", as in hashicorp/memberlist awareness.go): a score
 * that rises when this member misses acks, gets no nacks from the members that probed for
 * it, or has to refute a suspicion about itself, and falls with every ack. A high score
 * means this member is the likelier culprit, so it probes more slowly and waits longer
 * before its own verdicts instead of accusing others.
 */

/**
 * Stretches a timeout or interval by a local-health score: `timeoutMs × (score + 1)`.
 * @example
 * scaleTimeout(400, 0); // 400 (healthy)
 * scaleTimeout(400, 2); // 1200
 */
export function scaleTimeout(timeoutMs: number, score: number): number {
  return timeoutMs * (score + 1);
}

/** The score, kept within [0, max]. */
export class Awareness {
  #score = 0;

  /** @param max the highest score (config `awarenessMax`) */
  constructor(readonly max: number) {}

  /** 0 is healthy. */
  get score(): number {
    return this.#score;
  }

  /**
   * Adds `delta` (negative to lower), clamped to [0, max].
   * @returns the new score
   */
  applyDelta(delta: number): number {
    this.#score = Math.min(this.max, Math.max(0, this.#score + delta));
    return this.#score;
  }

  /** `timeoutMs` stretched by the current score (see {@link scaleTimeout}). */
  scaleTimeout(timeoutMs: number): number {
    return scaleTimeout(timeoutMs, this.#score);
  }
}

/**
 * Notices stalls of this member's own event loop (CPU starvation, a long GC pause): a timer
 * that fires later than `thresholdMs` after its time. Whatever the member received
 * meanwhile (acks, refutations) may still wait unread behind the overdue timers, so its
 * verdicts wait `graceMs` after a stall.
 */
export class StallDetector {
  #seenAt = -Infinity;

  constructor(readonly thresholdMs: number, readonly graceMs: number) {}

  /**
   * Called before a timer callback with the time it was due.
   * @returns how late it fired when that reveals a new stall, else null
   */
  note(due: number, now: number): number | null {
    const lateMs = now - due;
    if (lateMs <= this.thresholdMs) return null;
    const newStall = this.#seenAt < due;
    this.#seenAt = now;
    return newStall ? lateMs : null;
  }

  /** Whether a stall was noticed within the last `graceMs`. */
  stalledRecently(now: number): boolean {
    return now - this.#seenAt < this.graceMs;
  }
}
