/**
 * Split-brain merge policies: what happens to an entry of the smaller side of a healed split
 * when it is merged into the larger cluster. Pure decisions, applied by the primary of the
 * larger cluster (so a merge is one more write: ordered, replicated, deduplicated).
 *
 * Each side of a key is either an entry (a value and the stamp of its last update) or a
 * removal remembered by a tombstone (the stamp of the removal; see tombstones.ts). Stamps
 * come from a hybrid logical clock (hlc.ts), so "later" means later in the partition's
 * history as each side continued it, not whichever wall clock ran ahead.
 *
 * - `latestUpdate` (default): the later of the two wins, entry or removal; on a tie the
 *   larger cluster's state stays. A removal on either side beats an older entry on the
 *   other, so a removed key does not come back (while its tombstone is kept).
 * - `putIfAbsent` (Hazelcast's default): the merging entry is added only where the larger
 *   cluster has no entry and did not remove the key after the merging entry's update.
 *   Nothing the larger cluster holds is ever replaced; the smaller side's removals are
 *   not merged.
 * - `passThrough`: the merging entry always wins (overwrites or adds); the smaller side's
 *   removals are not merged.
 * - `discard`: the larger cluster wins; nothing of the smaller side is merged.
 * - a custom policy ({@link CustomMergePolicy}): its `mergingWins` decides per key. Every
 *   member must be configured with the same one (it runs on whichever member is primary).
 */

/** Names accepted in the `mergePolicy` setting. */
export type MergePolicyName = "latestUpdate" | "putIfAbsent" | "passThrough" | "discard";

export const MERGE_POLICIES: readonly MergePolicyName[] = ["latestUpdate", "putIfAbsent", "passThrough", "discard"];

/** Wire codes of the policies that send anything (`custom`: the primary's configured custom policy). */
export const MergePolicyCode = { latestUpdate: 1, passThrough: 2, putIfAbsent: 3, custom: 4 } as const;

/**
 * Whether running a merge chunk under policy `pol` a second time changes nothing the first run
 * did not: under latestUpdate an entry keeps its own stamp, under putIfAbsent it is added only
 * where nothing newer is (passThrough and custom policies could overwrite a newer write).
 */
export function mergeRunsTwice(pol: unknown): boolean {
  return pol === MergePolicyCode.latestUpdate || pol === MergePolicyCode.putIfAbsent;
}

/** One side of a key in a merge. `value: null` = removed at `at` (a tombstone). */
export interface MergeSide {
  value: Uint8Array | null;
  /** Stamp of the last update or of the removal. */
  at: number;
}

/**
 * A user-supplied merge policy. `mergingWins` must be a pure, deterministic function of its
 * arguments (it may run again on a retry, and on any member).
 * @example
 * ```ts
 * // Keep the longer value; removals of the smaller side are ignored.
 * const longest: CustomMergePolicy = {
 *   name: "longest",
 *   mergingWins: (existing, merging) =>
 *     merging.value !== null && (existing?.value == null || merging.value.byteLength > existing.value.byteLength),
 * };
 * ```
 */
export interface CustomMergePolicy {
  /** Shown in logs and compared between members. */
  name: string;
  /**
   * Whether the smaller side's state of a key replaces the larger cluster's.
   * @param existing the larger cluster's entry or tombstone; undefined when it knows nothing of the key
   * @param merging the smaller side's entry or tombstone
   */
  mergingWins(existing: MergeSide | undefined, merging: MergeSide): boolean;
}

/** The `mergePolicy` setting: a built-in policy by name, or a custom one. */
export type MergePolicySetting = MergePolicyName | CustomMergePolicy;

/**
 * Whether the merging side of a key replaces the larger cluster's.
 * @param policy wire code ({@link MergePolicyCode})
 * @param existing the larger cluster's entry or tombstone, undefined when it has neither
 * @param merging the smaller side's entry or tombstone
 * @param custom the custom policy of this member (used for code `custom`; without one nothing merges)
 * @example
 * ```ts
 * const v = new Uint8Array([1]);
 * mergeWins(MergePolicyCode.latestUpdate, { value: v, at: 100 }, { value: v, at: 200 }); // true: newer
 * mergeWins(MergePolicyCode.latestUpdate, { value: null, at: 300 }, { value: v, at: 200 }); // false: removed later
 * mergeWins(MergePolicyCode.putIfAbsent, { value: v, at: 100 }, { value: v, at: 200 }); // false: present
 * ```
 */
export function mergeWins(
  policy: number,
  existing: MergeSide | undefined,
  merging: MergeSide,
  custom?: CustomMergePolicy,
): boolean {
  if (policy === MergePolicyCode.custom) return custom ? custom.mergingWins(existing, merging) === true : false;
  if (policy === MergePolicyCode.latestUpdate) {
    if (existing === undefined) return merging.value !== null;
    return merging.at > existing.at;
  }
  if (merging.value === null) return false;
  if (policy === MergePolicyCode.passThrough) return true;
  if (policy === MergePolicyCode.putIfAbsent) {
    return existing === undefined || (existing.value === null && existing.at < merging.at);
  }
  return false;
}

/** The wire code of a policy setting, or null for `discard` (nothing is sent). */
export function mergePolicyCode(setting: MergePolicySetting): number | null {
  if (typeof setting !== "string") return MergePolicyCode.custom;
  return setting === "discard" ? null : MergePolicyCode[setting];
}

/** The name of a policy setting (for logs and settings comparison). */
export function mergePolicyName(setting: MergePolicySetting): string {
  return typeof setting === "string" ? setting : `custom:${setting.name}`;
}

/**
 * Validates a policy from configuration: a built-in name or a custom policy object.
 * @throws RangeError for an unknown name or a malformed custom policy
 */
export function checkMergePolicy(setting: string | CustomMergePolicy): MergePolicySetting {
  if (typeof setting !== "string") {
    if (typeof setting?.mergingWins !== "function" || typeof setting.name !== "string" || setting.name === "") {
      throw new RangeError("Cannot use custom merge policy: needs a non-empty name and a mergingWins function");
    }
    return setting;
  }
  if (!(MERGE_POLICIES as readonly string[]).includes(setting)) {
    throw new RangeError(
      `Cannot use merge policy ${JSON.stringify(setting)}: must be one of ${MERGE_POLICIES.join(", ")}`,
    );
  }
  return setting as MergePolicyName;
}
