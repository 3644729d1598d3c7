/**
 * Hybrid logical clock stamps for map writes, so `latestUpdate` orders writes by what
 * happened after what, not by whose wall clock runs ahead.
 *
 * A stamp is a number of milliseconds: the physical part is the wall clock, the logical
 * counter lives in the fraction, in steps of {@link HLC_TICK} (2⁻¹⁰ ms; exact in a double
 * below 2⁴³ ms, the year 2248). The primary of a partition stamps each write with
 * `nextStamp(wallClock, newest stamp the partition holds)`: never below the wall clock,
 * always above every stamp already in the partition's history (which its replicas carry,
 * so a new primary after a failover or a side of a split continues above everything the
 * partition saw, even when its clock runs behind). The stamp stays within the write rate
 * times one tick of the fastest wall clock that wrote to the partition, so it still
 * reads as a time (TTL, `updatedAt`).
 */
import { z } from "zod";

/** The wire schema of a stamp: non-negative milliseconds, fraction allowed. */
export const stampSchema = () => z.number().min(0).max(Number.MAX_SAFE_INTEGER);

/** One logical step: 2⁻¹⁰ ms. */
export const HLC_TICK = 1 / 1024;

/**
 * The stamp of the next write.
 * @param wallMs this member's clock
 * @param last the newest stamp the partition holds (0 when none)
 * @example
 * ```ts
 * nextStamp(1000, 400); // 1000: the wall clock is ahead
 * nextStamp(1000, 1000); // 1000 + 1/1024: same millisecond, one logical step later
 * nextStamp(900, 1000.5); // 1000.5 + 1/1024: this clock runs behind; causality wins
 * ```
 */
export function nextStamp(wallMs: number, last: number): number {
  const wall = Math.floor(wallMs);
  return wall > last ? wall : last + HLC_TICK;
}
