/**
 * The merge rule both masters of a split evaluate (split_brain.ts) and the claim check
 * re-evaluates with the members that confirmed (merge_check.ts): a pure function of two
 * group summaries, so both sides agree whenever they see the same lists.
 */
import type { NodeId } from "../transport/transport.ts";

export interface GroupSummary {
  /** Live members of the group. */
  size: number;
  /** Its master. */
  master: NodeId;
  /** The ids of its members, when known (older members send only the size). */
  members?: readonly NodeId[];
  /** With split-brain protection on: whether its master holds a quorum now (absent when off or unknown). */
  quorum?: boolean;
  /** Its member list's version (absent when unknown). */
  version?: number;
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
 * Which of two groups survives a merge: the one whose master holds a quorum when exactly one
 * does (both must report it), else the larger by {@link effectiveSize}, else the one whose
 * member list has the higher version (more history: a member restarted alone with no `--join`
 * forms a group at version 1, and as the lower id it won the tie against the member that
 * held all the data, which under `discard` then dropped every entry; found by an internal
 * review), else the lower master id.
 * @returns "a" if group `a` wins (b merges into a), "b" otherwise
 * @example
 * mergeWinner({ size: 3, master: "x" }, { size: 5, master: "y" }); // "b"
 * // A woken master still lists the four members that elected "n4" meanwhile: they count for n4.
 * mergeWinner(
 *   { size: 5, master: "n0", members: ["n0", "n1", "n2", "n3", "n4"] },
 *   { size: 4, master: "n4", members: ["n1", "n2", "n3", "n4"] },
 * ); // "b"
 * // Under protection the group whose master holds a quorum wins, even when it counts fewer.
 * mergeWinner({ size: 3, master: "n0", quorum: false }, { size: 3, master: "n2", quorum: true }); // "b"
 */
export function mergeWinner(a: GroupSummary, b: GroupSummary): "a" | "b" {
  if (a.quorum !== undefined && b.quorum !== undefined && a.quorum !== b.quorum) return a.quorum ? "a" : "b";
  const sa = effectiveSize(a, b), sb = effectiveSize(b, a);
  if (sa !== sb) return sa > sb ? "a" : "b";
  if (a.version !== undefined && b.version !== undefined && a.version !== b.version) {
    return a.version > b.version ? "a" : "b";
  }
  return a.master < b.master ? "a" : "b";
}
