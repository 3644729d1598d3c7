/** Node configuration: the options of `startNode()`, mirrored by CLI flags and SHOAL_* env vars. */
import type { MapsConfig } from "./map/map_config.ts";
import type { ProcessorTable } from "./map/entry_processor.ts";
import type { MergePolicySetting } from "./map/merge_policy.ts";
import type { IceServer } from "./transport/ice_server.ts";

export type { IceServer };

export interface NodeOptions {
  /** Human name for logs and the dashboard. @default a short random name */
  name?: string;
  /** Cluster name; nodes of other clusters are refused. @default "shoal" */
  cluster?: string;
  /**
   * Cluster secret (HMAC keys for join and signaling). Required: `startNode` refuses to start
   * without one (`INVALID_ARGUMENT`); only the CLI's `node` command generates and prints one
   * when `--secret` is left out. @default none (required)
   */
  secret?: string;
  /**
   * During a secret rotation, the previous cluster secret: joins, merges and links signed with
   * it are accepted too, while this member signs with `secret` (and with this one only towards
   * a member that refused `secret`). See README "Rotating the cluster secret". @default none
   */
  previousSecret?: string;
  /** Base URLs of members or signaling servers to join; none = embedded signaling, new cluster. */
  join?: string[];
  /** HTTP listen address `host:port`, or false for none. @default "127.0.0.1:5701" */
  http?: string | false;
  /** STUN/TURN servers. Always explicit: an empty list means host candidates only. @default [] */
  iceServers?: IceServer[];
  /** Extra host addresses for ICE (network-namespace labs). @default [] */
  iceAdditionalHostAddresses?: string[];
  /** Synchronous backups per partition (0–6, with `asyncBackupCount` at most 6). @default 1 */
  backupCount?: number;
  /** Asynchronous backups per partition (0–6, with `backupCount` at most 6). @default 0 */
  asyncBackupCount?: number;
  /** Number of partitions (1–65536); must be the same on every member. @default 271 */
  partitionCount?: number;
  /** Lite member: no data, owns no partitions. @default false */
  lite?: boolean;
  /** Bearer token required on every HTTP data route, reads and writes (see SECURITY.md). @default none */
  token?: string;
  /** Read-only bearer token: GET routes only; writes with it get 403. Needs `token`. @default none */
  readToken?: string;
  /** Serve `GET /metrics` without a token, for scrapers on a trusted network. @default false */
  openMetrics?: boolean;
  /**
   * Host names clients reach this member's HTTP by besides its own address (a reverse proxy's
   * public name): accepted in `Host` on a member listening on loopback, and as the origin of a
   * browser's writes (src/http/origin_check.ts). @default none
   */
  httpAllowedHosts?: string[];
  /** PEM certificate chain file: serve REST, dashboard and `/signal` over HTTPS/WSS (with `tlsKey`). @default none */
  tlsCert?: string;
  /** PEM private key file of `tlsCert`. @default none */
  tlsKey?: string;
  /** PEM file of a private CA to trust when joining an `https://` or `wss://` URL. @default system roots */
  tlsCa?: string;
  /** Job slots this member offers (0–1024). @default 4 */
  slots?: number;
  /**
   * Minutes an ended job (FINISHED, FAILED, CANCELED) stays in the job maps and listings
   * before the coordinator deletes its records (SeaTunnel's `history-job-expire-minutes`).
   * 0 keeps ended jobs for ever; at most 5,256,000 (ten years). The master's setting applies.
   * @default 1440 (a day)
   */
  jobHistoryMinutes?: number;
  /**
   * What the smaller side of a healed split brain does with its entries: `latestUpdate`
   * (the later update or removal wins, by hybrid logical clock), `putIfAbsent` (only keys
   * the larger side lacks are added), `passThrough` (the smaller side's entry wins) or
   * `discard` (the larger side wins; the smaller side's changes are dropped). A custom
   * policy object works in code (`startNode`), not on the command line.
   * @default "latestUpdate"
   */
  mergePolicy?: MergePolicySetting;
  /**
   * Per-map settings by map name pattern (`"sessions*"`; Hazelcast's wildcard rules, see
   * src/map/map_config.ts): `backupCount`, `asyncBackupCount`, `ttlMs`, `maxIdleMs`,
   * `maxSizePerMember`, `maxBytesPerMember`, `eviction` ("lru" | "lfu" | "random" | "none"),
   * `minClusterSize`. Must be the same on every member. CLI: `--map-config FILE` and `--map NAME:key=value,...`.
   * @default {}
   */
  maps?: MapsConfig;
  /**
   * Split-brain protection: a member that sees fewer data members than this, or whose lease
   * with that many has run out, answers every data operation (map reads and writes, job
   * submission) with the retryable error `QUORUM` (HTTP 503). Set it to a majority of the
   * data members (3 of 4 or 5). 0 = off (AP: both sides of a split serve). At most 4096.
   * @default 0
   */
  minClusterSize?: number;
  /**
   * Entry processors by name (`map.executeOnKey(key, name, arg)`), run on the key's primary.
   * Every member must register the same names (built-ins: increment, append, setIfGreater,
   * merge, delete-if-equals, append-once). @default none beyond the built-ins
   */
  processors?: ProcessorTable;
  /** @default "info" */
  logLevel?: "debug" | "info" | "warn" | "error" | "silent";
}

export const Defaults = {
  cluster: "shoal",
  http: "127.0.0.1:5701",
  backupCount: 1,
  asyncBackupCount: 0,
  partitionCount: 271,
  slots: 4,
  jobHistoryMinutes: 1440,
  logLevel: "info",
  mergePolicy: "latestUpdate",
  minClusterSize: 0,
} as const;

/** The log levels, quietest last. */
export const logLevels = ["debug", "info", "warn", "error", "silent"] as const;

/**
 * The whole-number options' ranges, shared by `startNode` and the CLI's flags (src/cli/node_args.ts),
 * so that the library accepts exactly what the command line does.
 */
export const OptionBounds = {
  backupCount: { min: 0, max: 6 },
  asyncBackupCount: { min: 0, max: 6 },
  partitionCount: { min: 1, max: 65536 },
  slots: { min: 0, max: 1024 },
  jobHistoryMinutes: { min: 0, max: 5_256_000 },
  minClusterSize: { min: 0, max: 4096 },
} as const;

/** Sync plus async backups per partition at most. */
export const MAX_BACKUPS = 6;

/**
 * What is wrong with the numeric options and the log level of `options`, or null. `startNode`
 * took them unchecked: `partitionCount: 0` started a member on which every map call failed
 * with an untyped error, a negative or fractional one failed deep inside, and a negative
 * `slots` or `jobHistoryMinutes` or an unknown `logLevel` were taken silently, though the CLI
 * refuses them all (found by an internal review).
 * @example
 * ```ts
 * import { nodeOptionsProblem } from "./config.ts";
 * nodeOptionsProblem({ partitionCount: 0 }); // "partitionCount must be a whole number from 1 to 65536, got 0"
 * nodeOptionsProblem({ partitionCount: 7 }); // null
 * ```
 */
export function nodeOptionsProblem(options: NodeOptions): string | null {
  for (const [name, { min, max }] of Object.entries(OptionBounds)) {
    const v = options[name as keyof typeof OptionBounds];
    if (v === undefined) continue;
    if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
      return `${name} must be a whole number from ${min} to ${max}, got ${
        typeof v === "string" ? JSON.stringify(v) : v
      }`;
    }
  }
  const backups = (options.backupCount ?? Defaults.backupCount) +
    (options.asyncBackupCount ?? Defaults.asyncBackupCount);
  if (backups > MAX_BACKUPS) {
    return `backupCount plus asyncBackupCount must be at most ${MAX_BACKUPS}, got ${backups}`;
  }
  const level = options.logLevel;
  if (level !== undefined && !(logLevels as readonly unknown[]).includes(level)) {
    return `logLevel must be one of ${logLevels.join(", ")}, got ${JSON.stringify(level)}`;
  }
  return null;
}
