/**
 * What the job coordinator remembers about jobs outside its loop (coordinator.ts): the ids of
 * jobs that ended, so reports and scans for them change nothing, and the jobs whose last load
 * could not read their entry or a state record, with when it was tried, so loads are retried at
 * a bounded rate. Both are bounded; the oldest is forgotten first.
 */
import { setNewest } from "../core/bounded.ts";

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
