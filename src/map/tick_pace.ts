/**
 * The pace of the map layer's tick (map_service.ts). The tick runs every `tickMs` (50 ms) while
 * anything it drives is under way: a follower not confirmed or behind, a migration, a catch-up,
 * a snapshot transfer, held requests, expiring records, touches, eviction limits. When its last
 * run found none of these, nothing but the next anti-entropy round (every antiEntropyMs) is due,
 * so it sleeps until then. Any message, call or change that reaches the map layer ({@link
 * TickPace.wake}) brings the tick back within `tickMs`: work that starts while it sleeps waits
 * no longer than it would have at the usual pace.
 */
import type { NodeId } from "../transport/transport.ts";
import type { Clock, Timer } from "../core/clock.ts";
import { held, type MapContext, type PrimaryState } from "./map_context.ts";

/**
 * Whether the tick of primary `prim` (primary.ts `tick`, `checkMigration`) has nothing to do now
 * but anti-entropy: every live follower confirmed, holding every write, not held, without a
 * snapshot under way; no migration, handoff, fence or write waiting for acks.
 */
export function primaryQuiet(
  ctx: MapContext,
  prim: PrimaryState,
  now: number,
  live: ReadonlySet<NodeId>,
  snapshotsOut: ReadonlyMap<string, unknown>,
): boolean {
  if (prim.catchUp || prim.migration || prim.handoff || prim.fence || prim.waiters.length > 0) return false;
  const d = ctx.data.get(prim.p);
  if (!d) return false;
  for (const f of prim.followers.values()) {
    if (!live.has(f.id)) continue;
    if (!f.confirmed || f.acked < d.seq || f.stream || held(f, now) || snapshotsOut.has(`${prim.p}|${f.id}`)) {
      return false;
    }
  }
  return true;
}

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
