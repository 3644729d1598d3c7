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
