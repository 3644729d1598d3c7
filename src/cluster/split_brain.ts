/**
 * Split-brain resolution rules. When the masters of two groups with the same cluster name
 * meet, the smaller group merges into the larger; on a tie the group whose master id sorts
 * first wins. Both masters evaluate the same pure function, so they agree whenever they
 * see the same sizes; the winner re-checks on the merge request and refuses if it
 * disagrees, so two groups never merge into each other at once.
 */
import type { NodeId } from "../transport/transport.ts";

export interface GroupSummary {
  /** Live members of the group. */
  size: number;
  /** Its master. */
  master: NodeId;
}

/**
 * Which of two groups survives a merge.
 * @returns "a" if group `a` wins (b merges into a), "b" otherwise
 * @example
 * mergeWinner({ size: 3, master: "x" }, { size: 5, master: "y" }); // "b"
 */
export function mergeWinner(a: GroupSummary, b: GroupSummary): "a" | "b" {
  if (a.size !== b.size) return a.size > b.size ? "a" : "b";
  return a.master < b.master ? "a" : "b";
}
