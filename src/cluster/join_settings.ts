/**
 * Cluster-wide settings compared when a member joins. A member whose settings differ from
 * the cluster's cannot work in it (a different partition count makes every table invalid
 * on it; a different merge policy makes the two sides of a healed split keep different
 * entries), so the master refuses it with a message that names the setting, both values and
 * the flag that sets it, and the joiner exits instead of reporting itself ready.
 *
 * The settings travel in the join request as a small record (key → value); each key has a
 * {@link JoinSettingField} describing it for the message. Features that add cluster-wide
 * settings (minimum cluster size, map configurations, registered processors) add a field and
 * a value; nothing else changes.
 */
import { z } from "zod";

/** A value of one setting: numbers and names as they are, structured settings as canonical JSON. */
export type JoinSettingValue = string | number | boolean;

/** Describes one cluster-wide setting for the refusal message. */
export interface JoinSettingField {
  /** Key in the join request (short: it travels in every join). */
  key: string;
  /** What the message calls it, e.g. "partition count". */
  label: string;
  /** Where a user changes it, e.g. "--partition-count". */
  flag: string;
  /**
   * Names the difference more precisely than the two values can (e.g. which map and which
   * field of a map configuration); null falls back to the values.
   */
  explain?: (joiner: JoinSettingValue | undefined, cluster: JoinSettingValue | undefined) => string | null;
}

/** The settings every member sends; other features append theirs (see {@link JoinSettings}). */
export const CORE_JOIN_FIELDS: readonly JoinSettingField[] = [
  { key: "pv", label: "protocol version", flag: "run the same Shoal version on every member" },
  { key: "pc", label: "partition count", flag: "--partition-count" },
  { key: "bc", label: "backup count", flag: "--backup-count" },
  { key: "abc", label: "async backup count", flag: "--async-backup-count" },
  { key: "mp", label: "merge policy", flag: "--merge-policy" },
];

/** One member's cluster-wide settings: the values, and the fields that describe them. */
export interface JoinSettings {
  values: Record<string, JoinSettingValue>;
  fields: readonly JoinSettingField[];
}

/** At most this many settings travel in a join request. */
export const MAX_JOIN_SETTINGS = 32;

/** Wire form of the settings in a join request (validated like every message field). */
export const JoinSettingsSchema = z.record(
  z.string().min(1).max(32),
  z.union([z.string().max(4096), z.number().finite(), z.boolean()]),
).refine((r) => Object.keys(r).length <= MAX_JOIN_SETTINGS, { message: `at most ${MAX_JOIN_SETTINGS} settings` });

/**
 * The settings of a member from its configuration.
 * @param extra settings other features add (their field and value each)
 */
export function joinSettings(
  core: {
    protocolVersion: number;
    partitionCount: number;
    backupCount: number;
    asyncBackupCount: number;
    mergePolicy: string;
  },
  extra: ReadonlyArray<{ field: JoinSettingField; value: JoinSettingValue }> = [],
): JoinSettings {
  const values: Record<string, JoinSettingValue> = {
    pv: core.protocolVersion,
    pc: core.partitionCount,
    bc: core.backupCount,
    abc: core.asyncBackupCount,
    mp: core.mergePolicy,
  };
  const fields = [...CORE_JOIN_FIELDS];
  for (const { field, value } of extra) {
    if (values[field.key] !== undefined) throw new RangeError(`Cannot add join setting ${field.key}: already defined`);
    values[field.key] = value;
    fields.push(field);
  }
  return { values, fields };
}

const show = (v: JoinSettingValue | undefined) =>
  v === undefined ? "(not set)" : typeof v === "string" ? JSON.stringify(v) : String(v);

/**
 * Why a joiner with settings `joiner` cannot join a cluster with settings `cluster`, or null
 * when every setting matches. A setting only one side has differs too (the other side's
 * value is "(not set)"). The first difference in the cluster's field order is named.
 * @returns e.g. `partition count 100 differs from the cluster's 271 (--partition-count)`
 */
export function settingsMismatch(
  cluster: JoinSettings,
  joiner: Readonly<Record<string, JoinSettingValue>>,
): string | null {
  const fields = [...cluster.fields];
  for (const key of Object.keys(joiner)) {
    if (!fields.some((f) => f.key === key)) {
      fields.push({ key, label: `setting ${key}`, flag: "not known to the cluster" });
    }
  }
  for (const f of fields) {
    const mine = cluster.values[f.key];
    const theirs = Object.hasOwn(joiner, f.key) ? joiner[f.key] : undefined;
    if (mine === theirs) continue;
    const precise = f.explain?.(theirs, mine);
    if (precise) return `${precise} (${f.flag})`;
    return `${f.label} ${show(theirs)} differs from the cluster's ${show(mine)} (${f.flag})`;
  }
  return null;
}

/** The settings as one string in key order, for the join request's proof. */
export function canonicalSettings(values: Readonly<Record<string, JoinSettingValue>>): string {
  return JSON.stringify(Object.keys(values).sort().map((k) => [k, values[k]]));
}

/** The message a refused joiner exits with. */
export function refusalMessage(cluster: string, reason: string): string {
  return `Cannot join cluster ${JSON.stringify(cluster)}: ${reason}`;
}
