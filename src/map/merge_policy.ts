/**
 * Split-brain merge policies: what happens to an entry of the smaller side of a healed split
 * when it is merged into the larger cluster. Pure decisions, applied by the primary of the
 * larger cluster (so a merge is one more write: ordered, replicated, deduplicated).
 *
 * - `latestUpdate` (default): the entry whose last update is later wins; on a tie the
 *   larger cluster's entry stays. An entry the larger cluster does not hold is added.
 * - `passThrough`: the merging entry always wins (overwrites or adds).
 * - `discard`: the larger cluster wins; nothing of the smaller side is merged.
 *
 * No policy can see deletions: a map keeps no tombstones, so a key removed on one side
 * during the split is indistinguishable from one never written there (see ARCHITECTURE.md, "Split-brain merge of data").
 */

/** Names accepted in the `mergePolicy` setting. */
export type MergePolicyName = "latestUpdate" | "passThrough" | "discard";

export const MERGE_POLICIES: readonly MergePolicyName[] = ["latestUpdate", "passThrough", "discard"];

/** Wire codes of the policies that send anything. */
export const MergePolicyCode = { latestUpdate: 1, passThrough: 2 } as const;

/**
 * Whether a merging entry replaces the larger cluster's entry for the same key.
 * @param policy wire code ({@link MergePolicyCode})
 * @param existingUpdatedAt the larger cluster's entry's last update, or undefined when it holds none
 * @param mergingUpdatedAt the merging entry's last update
 * @example
 * ```ts
 * mergeWins(MergePolicyCode.latestUpdate, 100, 200); // true: the merging entry is newer
 * mergeWins(MergePolicyCode.latestUpdate, 200, 200); // false: ties keep the existing entry
 * ```
 */
export function mergeWins(policy: number, existingUpdatedAt: number | undefined, mergingUpdatedAt: number): boolean {
  if (existingUpdatedAt === undefined) return true;
  if (policy === MergePolicyCode.passThrough) return true;
  if (policy === MergePolicyCode.latestUpdate) return mergingUpdatedAt > existingUpdatedAt;
  return false;
}

/** Validates a policy name from configuration. @throws RangeError for an unknown name */
export function checkMergePolicy(name: string): MergePolicyName {
  if (!(MERGE_POLICIES as readonly string[]).includes(name)) {
    throw new RangeError(
      `Cannot use merge policy ${JSON.stringify(name)}: must be one of ${MERGE_POLICIES.join(", ")}`,
    );
  }
  return name as MergePolicyName;
}
