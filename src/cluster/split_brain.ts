/**
 * Split-brain resolution rules. When the masters of two groups with the same cluster name
 * meet, the smaller group merges into the larger; on a tie the group whose master id sorts
 * first wins. Both masters evaluate the same pure function, so they agree whenever they
 * see the same lists; the winner re-checks on the merge request and refuses if it
 * disagrees, so two groups never merge into each other at once.
 *
 * A group whose list still holds the other group's master, while the other's list no longer
 * holds it, has a stale view of the members both list: they were taken for gone and moved
 * on to the other group (a paused master that wakes up still lists everyone, although the
 * others declared it dead and elected a new master). Those shared members count for the
 * other group only. Without this, a woken master would count the members that left it and
 * win, and the cluster that kept serving would be merged into the stale one.
 */
import type { NodeId } from "../transport/transport.ts";

export interface GroupSummary {
  /** Live members of the group. */
  size: number;
  /** Its master. */
  master: NodeId;
  /** The ids of its members, when known (older members send only the size). */
  members?: readonly NodeId[];
}

/**
 * The members a group counts in a merge decision: its size, less the members it shares
 * with the other group when its view of them is the stale one (see the module comment).
 */
export function effectiveSize(a: GroupSummary, b: GroupSummary): number {
  if (!a.members || !b.members) return a.size;
  const aListsB = a.members.includes(b.master), bListsA = b.members.includes(a.master);
  if (!aListsB || bListsA) return a.size;
  const theirs = new Set(b.members);
  return a.members.filter((id) => !theirs.has(id)).length;
}

/**
 * Which of two groups survives a merge.
 * @returns "a" if group `a` wins (b merges into a), "b" otherwise
 * @example
 * mergeWinner({ size: 3, master: "x" }, { size: 5, master: "y" }); // "b"
 * // A woken master still lists the four members that elected "n4" meanwhile: they count for n4.
 * mergeWinner(
 *   { size: 5, master: "n0", members: ["n0", "n1", "n2", "n3", "n4"] },
 *   { size: 4, master: "n4", members: ["n1", "n2", "n3", "n4"] },
 * ); // "b"
 */
export function mergeWinner(a: GroupSummary, b: GroupSummary): "a" | "b" {
  const sa = effectiveSize(a, b), sb = effectiveSize(b, a);
  if (sa !== sb) return sa > sb ? "a" : "b";
  return a.master < b.master ? "a" : "b";
}
