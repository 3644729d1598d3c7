/**
 * The guard every per-instance werift patch opens with (packet_path.ts, sack_bundling.ts,
 * webrtc_peer.ts): a patch claims an object once, only when werift's internals look as the
 * patch expects, and each outcome is counted, so an upgrade of werift that changes them falls
 * back to werift's own code and shows in the figures instead of breaking.
 */

/**
 * Claims `obj` for one patch: marks it with `mark` (set to `value`) and counts it tuned when
 * `expected` holds and no earlier call marked it; counts it untuned when `expected` fails on an
 * unmarked object; an object already marked is left alone and not counted again.
 * @param expected whether `obj` has the shape the patch relies on
 * @param count called with `true` for a claim, `false` for an object left untuned
 * @returns whether the caller should patch `obj` now
 */
export function claimInstance(
  // deno-lint-ignore no-explicit-any
  obj: any,
  mark: string,
  expected: boolean,
  count: (tuned: boolean) => void,
  value: unknown = true,
): boolean {
  if (obj?.[mark]) return false;
  if (!expected) {
    count(false);
    return false;
  }
  obj[mark] = value;
  count(true);
  return true;
}
