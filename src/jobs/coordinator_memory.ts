/**
 * What the job coordinator remembers about jobs outside its loop (coordinator.ts): the ids of
 * jobs that ended, so reports and scans for them change nothing, and the jobs whose last load
 * could not read their entry or a state record, with when it was tried, so loads are retried at
 * a bounded rate. Both are bounded; the oldest is forgotten first.
 */
import { setNewest } from "../core/bounded.ts";
import type { Logger } from "../core/log.ts";

/**
 * Most coordinator terms ever claimed: each takeover claims one more (a failing takeover retries
 * every 500 ms, 2^32 claims take 68 years), so a stored term past it was not claimed but written.
 */
export const maxCoordinatorTerm = 2 ** 32;

/**
 * The term a takeover claims over the coordinator record's `stored` term: one more, unless the
 * stored term lies past {@link maxCoordinatorTerm}. The coordinator record sits in an ordinary map:
 * a member holding the secret wrote it at 2^53 - 1, the next claim was 2^53, which no job message
 * carries (the wire's bound), and one more rounds back to it, so no job ran again. Then the claim
 * starts over from this member's own last term: records stamped since under higher terms are
 * rewritten, since the coordinator record then holds this member's term (job_records.ts `#fenced`).
 */
export function nextCoordinatorTerm(stored: number, own: number, log: Logger): number {
  if (Number.isSafeInteger(stored) && stored >= 0 && stored < maxCoordinatorTerm) return stored + 1;
  log.warn("jobs.coordinator.forged_term", { stored, own, bound: maxCoordinatorTerm });
  return own + 1;
}

/** Ended job ids remembered. */
const maxTerminalRemembered = 10_000;
/** Most jobs remembered as not loadable (their last load attempt failed). */
const maxUnloadableRemembered = 1000;

export class CoordinatorMemory {
  /** Ended job id → when it ended (ms; the insertion order is the order they were learned). */
  readonly #terminal = new Map<string, number>();
  /** Jobs whose last load found their entry or a state record unreadable → when it was tried. */
  readonly #unloadable = new Map<string, number>();

  /** Whether job `id` ended (as far as this coordinator knows). */
  ended(id: string): boolean {
    return this.#terminal.has(id);
  }

  /** Job `id` ended at `at` (ms). */
  rememberEnded(id: string, at: number): void {
    setNewest(this.#terminal, id, at, maxTerminalRemembered);
  }

  /** Job `id`'s records are gone: nothing is left to remember. */
  forgetEnded(id: string): void {
    this.#terminal.delete(id);
  }

  /** Up to `max` remembered ended jobs that ended at or before `before`, in the order learned. */
  endedBefore(before: number, max: number): string[] {
    const out: string[] = [];
    for (const [id, at] of this.#terminal) {
      if (out.length >= max) break;
      if (at <= before) out.push(id);
    }
    return out;
  }

  /** When a load of job `id` was last tried and failed (undefined: never, or it loaded since). */
  loadTriedAt(id: string): number | undefined {
    return this.#unloadable.get(id);
  }

  /** Marks a load as tried at `now`; {@link loaded} clears the mark once the job is in the loop. */
  loadTried(id: string, now: number): void {
    setNewest(this.#unloadable, id, now, maxUnloadableRemembered);
  }

  loaded(id: string): void {
    this.#unloadable.delete(id);
  }

  /** A new term: every load may be tried at once. */
  forgetLoadTries(): void {
    this.#unloadable.clear();
  }
}
