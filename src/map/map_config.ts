/**
 * Per-map configuration: settings keyed by map name patterns, matched as Hazelcast matches
 * its map configs, validated with zod, parsed from the CLI, and reduced to a canonical
 * summary and digest that members compare at join.
 *
 * Matching (Hazelcast's `MatchingPointConfigPatternMatcher`):
 * - a pattern without `*` matches that name only, and an exact match always wins;
 * - a pattern holds at most one `*`, which stands for any run of characters (also none);
 * - among the wildcard patterns that match, the one with the most literal characters wins;
 *   two winners with as many literal characters make the name ambiguous (an error);
 * - the pattern `default`, if given, applies to every name nothing else matches.
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { z } from "zod";

/** Names starting with \u0001 are the grid's own (lock records, queues); user maps cannot take them and listings skip them. */
export const isInternalMap = (name: string): boolean => name.startsWith("\u0001");
/** Internal map holding the locks of map `m` is `LOCK_MAP_PREFIX + m` (locks.ts). */
export const LOCK_MAP_PREFIX = "\u0001lock:";
/**
 * Key of a lock map's high-water record: the highest token of the lock records the partition
 * removed (locks.ts). No CBOR value encodes to this byte alone, so no key's record can be it.
 */
export const LOCK_HIGH_WATER = new Uint8Array([0xff]);

/** Longest TTL or max-idle accepted (about 68 years, fits a uint32 of seconds). */
export const MAX_EXPIRY_MS = 2 ** 31 * 1000;
/** Most patterns one configuration holds. */
export const MAX_MAP_PATTERNS = 1024;
/** Largest per-map minimum cluster size accepted. */
export const MAX_MIN_CLUSTER_SIZE = 1024;

export const evictionPolicies = ["none", "lru", "lfu", "random"] as const;
export type EvictionPolicy = (typeof evictionPolicies)[number];

const durationMs = z.number().int().min(0).max(MAX_EXPIRY_MS);
const count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

/** Settings of the maps one pattern matches. Unset = the node's default (backups) or none. */
export const MapSettingsSchema = z.strictObject({
  /** Synchronous backups (0–6). @default the node's `backupCount` */
  backupCount: z.number().int().min(0).max(6).optional(),
  /** Asynchronous backups (0–6). @default the node's `asyncBackupCount` */
  asyncBackupCount: z.number().int().min(0).max(6).optional(),
  /** Time to live of an entry from its last write; 0 = forever. @default 0 */
  ttlMs: durationMs.optional(),
  /** An entry expires when neither read nor written for this long; 0 = never. @default 0 */
  maxIdleMs: durationMs.optional(),
  /** Most entries of this map whose primary is one member; 0 = no limit. @default 0 */
  maxSizePerMember: count.optional(),
  /** Most bytes (keys + values + 64 per entry) of this map's primaries on one member; 0 = no limit. @default 0 */
  maxBytesPerMember: count.optional(),
  /** What goes when a member is over its limit. @default "lru" when a limit is set, else "none" */
  eviction: z.enum(evictionPolicies).optional(),
  /**
   * Split-brain protection for this map, overriding the member-wide `minClusterSize`: the
   * data members (and lease quorum) an operation on it needs; 0 or 1 = off for this map.
   * @default the node's `minClusterSize`
   */
  minClusterSize: z.number().int().min(0).max(MAX_MIN_CLUSTER_SIZE).optional(),
}).superRefine((s, ctx) => {
  if ((s.backupCount ?? 0) + (s.asyncBackupCount ?? 0) > 6) {
    ctx.addIssue({ code: "custom", message: "backupCount plus asyncBackupCount must be at most 6" });
  }
  if (s.eviction === "none" && ((s.maxSizePerMember ?? 0) > 0 || (s.maxBytesPerMember ?? 0) > 0)) {
    ctx.addIssue({
      code: "custom",
      path: ["eviction"],
      message: 'a size limit needs an eviction policy ("lru", "lfu" or "random"), not "none"',
    });
  }
});
export type MapSettings = z.infer<typeof MapSettingsSchema>;

/** Why `p` is not a valid map name pattern (1–256 characters, at most one `*`, no control characters), or null. */
export function patternProblem(p: string): string | null {
  if (p.length < 1 || p.length > 256) return "a map name pattern has 1 to 256 characters";
  if (p.indexOf("*") !== p.lastIndexOf("*")) return "a map name pattern holds at most one *";
  // deno-lint-ignore no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(p)) return "control characters are not allowed in a map name pattern";
  return null;
}

/** `startNode({ maps })`: settings per map name pattern. */
export const MapsConfigSchema = z.record(z.string(), MapSettingsSchema).superRefine((r, ctx) => {
  const keys = Object.keys(r);
  if (keys.length > MAX_MAP_PATTERNS) {
    ctx.addIssue({ code: "custom", message: `at most ${MAX_MAP_PATTERNS} map patterns` });
  }
  for (const k of keys) {
    const problem = patternProblem(k);
    if (problem) ctx.addIssue({ code: "custom", path: [k], message: problem });
  }
});
export type MapsConfig = z.infer<typeof MapsConfigSchema>;

/** The settings a map runs with, every field filled in. */
export interface ResolvedMapSettings {
  /** The pattern that matched, or null when none did (all defaults). */
  pattern: string | null;
  backupCount: number | null;
  asyncBackupCount: number | null;
  ttlMs: number;
  maxIdleMs: number;
  maxSizePerMember: number;
  maxBytesPerMember: number;
  eviction: EvictionPolicy;
  /** Split-brain protection for this map; null = the node's `minClusterSize`. */
  minClusterSize: number | null;
}

function formatIssues(e: z.ZodError, where: string): string {
  return e.issues.map((i) => {
    const path = i.path.map(String);
    const at = path.length === 0
      ? where
      : `${where} "${path[0]}"${path.length > 1 ? ` field ${path.slice(1).join(".")}` : ""}`;
    return `${at}: ${i.message}`;
  }).join("; ");
}

/**
 * Validates a maps configuration (from `startNode` or a JSON file).
 * @returns the configuration, or an error naming the pattern and field
 */
export function parseMapsConfig(input: unknown, where = "map config"): { maps: MapsConfig } | { error: string } {
  const r = MapsConfigSchema.safeParse(input);
  if (!r.success) return { error: `Invalid ${formatIssues(r.error, where)}` };
  return { maps: r.data };
}

function fill(pattern: string | null, s: MapSettings | undefined): ResolvedMapSettings {
  const limited = (s?.maxSizePerMember ?? 0) > 0 || (s?.maxBytesPerMember ?? 0) > 0;
  return {
    pattern,
    backupCount: s?.backupCount ?? null,
    asyncBackupCount: s?.asyncBackupCount ?? null,
    ttlMs: s?.ttlMs ?? 0,
    maxIdleMs: s?.maxIdleMs ?? 0,
    maxSizePerMember: s?.maxSizePerMember ?? 0,
    maxBytesPerMember: s?.maxBytesPerMember ?? 0,
    eviction: s?.eviction ?? (limited ? "lru" : "none"),
    minClusterSize: s?.minClusterSize ?? null,
  };
}

/** Whether `pattern` (at most one `*`) matches `name`. */
export function patternMatches(pattern: string, name: string): boolean {
  const star = pattern.indexOf("*");
  if (star < 0) return pattern === name;
  const prefix = pattern.slice(0, star);
  const suffix = pattern.slice(star + 1);
  return name.length >= prefix.length + suffix.length && name.startsWith(prefix) && name.endsWith(suffix);
}

/**
 * The pattern that configures map `name`, or null when none does.
 * @throws RangeError when two wildcard patterns match equally well
 */
export function matchPattern(patterns: Iterable<string>, name: string): string | null {
  let best: string | null = null;
  let bestLen = -1;
  let tie: string | null = null;
  let fallback = false;
  for (const p of patterns) {
    if (p === name) return p;
    if (p === "default") {
      fallback = true;
      continue;
    }
    if (!p.includes("*") || !patternMatches(p, name)) continue;
    const len = p.length - 1;
    if (len > bestLen) (best = p, bestLen = len, tie = null);
    else if (len === bestLen) tie = p;
  }
  if (tie !== null) {
    throw new RangeError(`Cannot configure map "${name}": patterns "${best}" and "${tie}" match it equally well`);
  }
  return best ?? (fallback ? "default" : null);
}

/** A node's (or one map's) backup counts. */
export interface BackupCounts {
  backupCount: number;
  asyncBackupCount: number;
}

/** The backup counts map pattern `s` resolves to on a node with these defaults. */
function resolvedBackups(s: MapSettings, defaults: BackupCounts): BackupCounts {
  return {
    backupCount: s.backupCount ?? defaults.backupCount,
    asyncBackupCount: s.asyncBackupCount ?? defaults.asyncBackupCount,
  };
}

/**
 * Why these map configs cannot run on a node with these default backup counts, or null:
 * a pattern that sets one count takes the other from the node, and the two must total at
 * most 6.
 */
export function backupCountProblem(maps: Readonly<MapsConfig>, defaults: BackupCounts): string | null {
  for (const [p, s] of Object.entries(maps)) {
    const r = resolvedBackups(s, defaults);
    if (r.backupCount + r.asyncBackupCount > 6) {
      return `map config "${p}": backupCount ${r.backupCount} plus asyncBackupCount ${r.asyncBackupCount} (the node's where unset) exceeds 6`;
    }
  }
  return null;
}

/**
 * The backup counts of the partition table (as Hazelcast sizes its partition replicas): as
 * many sync backups as the most any map has, and replicas up to the largest total over the
 * node's defaults and every map config. Each map then replicates to the first of them only
 * (see replication_levels.ts).
 */
export function partitionBackups(maps: Readonly<MapsConfig>, defaults: BackupCounts): BackupCounts {
  let sync = defaults.backupCount;
  let total = defaults.backupCount + defaults.asyncBackupCount;
  for (const s of Object.values(maps)) {
    const r = resolvedBackups(s, defaults);
    sync = Math.max(sync, r.backupCount);
    total = Math.max(total, r.backupCount + r.asyncBackupCount);
  }
  return { backupCount: sync, asyncBackupCount: total - sync };
}

/** Whether every map resolves to the node's default backup counts (no map replicates differently). */
export function uniformBackups(maps: Readonly<MapsConfig>, defaults: BackupCounts): boolean {
  return Object.values(maps).every((s) => {
    const r = resolvedBackups(s, defaults);
    return r.backupCount === defaults.backupCount && r.asyncBackupCount === defaults.asyncBackupCount;
  });
}

/** Most map names whose resolved settings one `MapConfigs` caches. */
const CACHE_LIMIT = 4096;

/** A validated maps configuration with a cache of resolved settings per map name. */
export class MapConfigs {
  readonly maps: Readonly<MapsConfig>;
  #cache = new Map<string, ResolvedMapSettings>();

  /**
   * The node's backup counts, which maps without their own take; undefined = those of the
   * partition service the map service runs with.
   */
  readonly defaults: BackupCounts | undefined;

  /** @throws RangeError when `maps` is invalid, or a map's backups total more than 6 */
  constructor(maps: unknown = {}, defaults?: BackupCounts) {
    const r = parseMapsConfig(maps);
    if ("error" in r) throw new RangeError(r.error);
    this.maps = r.maps;
    this.defaults = defaults;
    const problem = defaults ? backupCountProblem(r.maps, defaults) : null;
    if (problem) throw new RangeError(problem);
  }

  /**
   * The settings map `name` runs with.
   * @throws RangeError when the name is ambiguous (see `matchPattern`)
   */
  resolve(name: string): ResolvedMapSettings {
    let s = this.#cache.get(name);
    if (s) return s;
    const p = matchPattern(Object.keys(this.maps), name);
    s = fill(p, p === null ? undefined : this.maps[p]);
    if (this.#cache.size >= CACHE_LIMIT) this.#cache.clear();
    this.#cache.set(name, s);
    return s;
  }

  /** Whether any pattern sets a limit or expiry (lets the map service skip work when none does). */
  get hasExpiryOrLimits(): boolean {
    return Object.values(this.maps).some((s) =>
      (s.ttlMs ?? 0) > 0 || (s.maxIdleMs ?? 0) > 0 || (s.maxSizePerMember ?? 0) > 0 || (s.maxBytesPerMember ?? 0) > 0
    );
  }

  /**
   * The largest per-map `minClusterSize` override (0 when none): leases are kept while it or
   * the member-wide setting is above 1.
   */
  get maxMinClusterSize(): number {
    return Math.max(0, ...Object.values(this.maps).map((s) => s.minClusterSize ?? 0));
  }

  /**
   * The minimum cluster size operations on `name` need: its pattern's override, else
   * `memberWide`. An ambiguous name (see `matchPattern`) gets `memberWide`: its operations
   * fail on that name anyway.
   */
  minClusterSizeFor(name: string, memberWide: number): number {
    try {
      return this.resolve(name).minClusterSize ?? memberWide;
    } catch {
      return memberWide;
    }
  }

  /** See `canonicalMapsConfig`. */
  get canonical(): string {
    return canonicalMapsConfig(this.maps);
  }

  /** See `mapsConfigDigest`. */
  get digest(): string {
    return mapsConfigDigest(this.maps);
  }
}

const FIELDS = [
  "backupCount",
  "asyncBackupCount",
  "ttlMs",
  "maxIdleMs",
  "maxSizePerMember",
  "maxBytesPerMember",
  "eviction",
  "minClusterSize",
] as const;

/**
 * A canonical JSON summary of a maps configuration: patterns sorted, every field filled in
 * (defaults explicit, `null` = the node's default), so two configurations that configure
 * every map the same way give the same string whatever order or spelling they were written in.
 */
export function canonicalMapsConfig(maps: Readonly<MapsConfig>): string {
  const out: Array<[string, Array<string | number | null>]> = [];
  for (const p of Object.keys(maps).sort()) {
    const r = fill(p, maps[p]);
    out.push([p, FIELDS.map((f) => r[f])]);
  }
  return JSON.stringify(out);
}

/** SHA-256 of `canonicalMapsConfig`, hex (64 characters). Equal digests = equal configurations. */
export function mapsConfigDigest(maps: Readonly<MapsConfig>): string {
  const h = sha256(new TextEncoder().encode(canonicalMapsConfig(maps)));
  return Array.from(h, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The first difference between two members' maps configurations, as a message naming the
 * map pattern and the field, or null when they agree. Takes canonical summaries (as
 * `canonicalMapsConfig` returns them) so it can compare a summary received over the wire.
 *
 * @example
 * ```ts
 * mapConfigDifference(canonicalMapsConfig({ "s*": { ttlMs: 1 } }), canonicalMapsConfig({ "s*": { ttlMs: 2 } }), "b");
 * // 'map config "s*": ttlMs is 1 on this member but 2 on b'
 * ```
 */
export function mapConfigDifference(local: string, remote: string, remoteName = "the other member"): string | null {
  if (local === remote) return null;
  let a: Map<string, unknown[]>;
  let b: Map<string, unknown[]>;
  try {
    a = new Map(JSON.parse(local));
    b = new Map(JSON.parse(remote));
  } catch {
    return `map configs differ: the summary from ${remoteName} is malformed`;
  }
  for (const p of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    const x = a.get(p);
    const y = b.get(p);
    if (!x) return `map config "${p}" is set on ${remoteName} but not on this member`;
    if (!y) return `map config "${p}" is set on this member but not on ${remoteName}`;
    for (let i = 0; i < FIELDS.length; i++) {
      if (x[i] !== y[i]) {
        const show = (v: unknown) => v === null ? "the node default" : JSON.stringify(v);
        return `map config "${p}": ${FIELDS[i]} is ${show(x[i])} on this member but ${show(y[i])} on ${remoteName}`;
      }
    }
  }
  return `map configs differ (${remoteName})`;
}

const numericFields = new Set<string>(FIELDS.filter((f) => f !== "eviction"));

/**
 * Parses one `--map NAME:key=value,...` flag (e.g. `sessions*:ttlMs=60000,eviction=lru`) into
 * its pattern and raw settings (validated by `parseMapsConfig` once all flags are merged).
 */
export function parseMapFlag(s: string): { pattern: string; settings: Record<string, unknown> } | { error: string } {
  const colon = s.lastIndexOf(":");
  if (colon <= 0) return { error: `Bad --map "${s}": expected NAME:key=value,... (e.g. sessions*:ttlMs=60000)` };
  const pattern = s.slice(0, colon);
  const settings: Record<string, unknown> = {};
  const rest = s.slice(colon + 1);
  if (rest.trim() === "") return { error: `Bad --map "${s}": no settings after the colon` };
  for (const part of rest.split(",")) {
    const eq = part.indexOf("=");
    if (eq <= 0) return { error: `Bad --map "${s}": "${part}" is not key=value` };
    const key = part.slice(0, eq).trim();
    const raw = part.slice(eq + 1).trim();
    if (!(FIELDS as readonly string[]).includes(key)) {
      return { error: `Bad --map "${s}": unknown setting "${key}" (known: ${FIELDS.join(", ")})` };
    }
    if (key in settings) return { error: `Bad --map "${s}": "${key}" is given twice` };
    if (numericFields.has(key)) {
      if (!/^\d+$/.test(raw)) return { error: `Bad --map "${s}": ${key} must be a whole number, not "${raw}"` };
      settings[key] = Number(raw);
    } else settings[key] = raw;
  }
  return { pattern, settings };
}

/**
 * Merges a JSON maps file (already parsed) and `--map` flags into one validated
 * configuration; a flag's settings override the file's for the same pattern, field by field.
 */
export function mapsConfigFromCli(file: unknown, flags: readonly string[]): { maps: MapsConfig } | { error: string } {
  const merged: Record<string, Record<string, unknown>> = {};
  if (file !== undefined) {
    const r = parseMapsConfig(file, "--map-config");
    if ("error" in r) return r;
    for (const [p, s] of Object.entries(r.maps)) merged[p] = { ...s };
  }
  const seen = new Set<string>();
  for (const f of flags) {
    const r = parseMapFlag(f);
    if ("error" in r) return r;
    if (seen.has(r.pattern)) {
      return { error: `Bad --map: "${r.pattern}" is given twice; put all its settings in one flag` };
    }
    seen.add(r.pattern);
    merged[r.pattern] = { ...merged[r.pattern], ...r.settings };
  }
  return parseMapsConfig(merged, "--map");
}

/** Longest canonical summary sent as is in a join request; longer ones are sent as their digest. */
export const MAX_JOIN_SUMMARY_CHARS = 4000;

/**
 * The maps configuration as a cluster-wide join setting (field and value), for the join
 * check: the canonical summary, or `sha256:<digest>` when the summary is longer than
 * {@link MAX_JOIN_SUMMARY_CHARS}. Two members agree exactly when their values are equal;
 * when both are summaries, `mapConfigDifference(cluster, joiner, name)` names the first map
 * pattern and field that differ.
 */
export function mapConfigJoinSetting(
  maps: Readonly<MapsConfig>,
): {
  field: {
    key: string;
    label: string;
    flag: string;
    explain: (joiner: unknown, cluster: unknown) => string | null;
  };
  value: string;
} {
  const canonical = canonicalMapsConfig(maps);
  // Both summaries in full (not hashed): name the map pattern and the field that differ.
  const explain = (joiner: unknown, cluster: unknown) =>
    typeof joiner === "string" && typeof cluster === "string" && joiner.startsWith("[") && cluster.startsWith("[")
      ? mapConfigDifference(joiner, cluster, "the cluster")
      : null;
  return {
    field: { key: "mc", label: "map configuration", flag: "--map-config / --map", explain },
    value: canonical.length <= MAX_JOIN_SUMMARY_CHARS ? canonical : `sha256:${mapsConfigDigest(maps)}`,
  };
}
