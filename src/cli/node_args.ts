/**
 * The flags of the `node` command and their translation into `NodeOptions`. Pure, so
 * every flag, environment variable and error can be unit-tested without starting a node.
 */
import { Defaults, type IceServer, logLevels, MAX_BACKUPS, type NodeOptions, OptionBounds } from "../config.ts";
import { isLoopbackHost, parseListenAddress } from "../http/listen_address.ts";
import { mapsConfigFromCli } from "../map/map_config.ts";
import { type FlagSpec, formatFlagHelp, parseFlags } from "./flags.ts";
import { parseIceUrl } from "./ice_url.ts";

const mergePolicies = ["latestUpdate", "putIfAbsent", "passThrough", "discard"] as const;

/** The `node` command's flags, in `--help` order. */
export const nodeFlags: readonly FlagSpec[] = [
  {
    name: "name",
    kind: "string",
    valueName: "NAME",
    description: "member name shown in logs and the dashboard",
    defaultText: "random",
  },
  {
    name: "cluster",
    kind: "string",
    valueName: "NAME",
    description: "cluster name; members of other clusters are refused",
    defaultText: Defaults.cluster,
  },
  {
    name: "secret",
    kind: "string",
    valueName: "SECRET",
    description: "cluster secret shared by all members",
    defaultText: "generated and printed",
  },
  {
    name: "previous-secret",
    kind: "string",
    valueName: "SECRET",
    description: "during a secret rotation, the old secret: joins and links under it are accepted too (README)",
  },
  {
    name: "join",
    kind: "list",
    valueName: "URL",
    description:
      "base URL (http://host:port) of any member or signaling server; none = start a new cluster with embedded signaling",
  },
  {
    name: "http",
    kind: "string",
    valueName: "HOST:PORT",
    description: "HTTP address for REST, dashboard and signaling; port 0 = any free port",
    defaultText: Defaults.http,
  },
  {
    name: "ice",
    kind: "list",
    valueName: "URL",
    description: "ICE server: stun:host:port or turn:user:pass@host:port",
  },
  {
    name: "ice-host-address",
    kind: "list",
    valueName: "ADDR",
    description: "extra host address offered as an ICE candidate",
  },
  {
    name: "backup-count",
    kind: "int",
    ...OptionBounds.backupCount,
    description: "synchronous backups per partition",
    defaultText: String(Defaults.backupCount),
  },
  {
    name: "async-backup-count",
    kind: "int",
    ...OptionBounds.asyncBackupCount,
    description: "asynchronous backups per partition",
    defaultText: String(Defaults.asyncBackupCount),
  },
  {
    name: "partition-count",
    kind: "int",
    ...OptionBounds.partitionCount,
    description: "number of partitions (same on every member)",
    defaultText: String(Defaults.partitionCount),
  },
  { name: "lite", kind: "boolean", description: "lite member: holds no data, owns no partitions" },
  {
    name: "token",
    kind: "string",
    valueName: "TOKEN",
    description: "bearer token for every HTTP data route, reads and writes (required off loopback)",
  },
  {
    name: "read-token",
    kind: "string",
    valueName: "TOKEN",
    description: "read-only bearer token: GET routes only (needs --token)",
  },
  {
    name: "open-metrics",
    kind: "boolean",
    description: "serve GET /metrics without a token (for a scraper on a trusted network)",
  },
  {
    name: "http-allowed-host",
    kind: "list",
    valueName: "NAME",
    description: "a host name clients reach this member's HTTP by besides its own (a reverse proxy's public name)",
  },
  {
    name: "tls-cert",
    kind: "string",
    valueName: "FILE",
    description: "PEM certificate chain: serve REST, dashboard and /signal over HTTPS/WSS (with --tls-key)",
  },
  {
    name: "tls-key",
    kind: "string",
    valueName: "FILE",
    description: "PEM private key of --tls-cert",
  },
  {
    name: "tls-ca",
    kind: "string",
    valueName: "FILE",
    description: "PEM certificate of a private CA to trust when joining an https:// or wss:// URL",
  },
  {
    name: "slots",
    kind: "int",
    ...OptionBounds.slots,
    description: "job slots this member offers",
    defaultText: String(Defaults.slots),
  },
  {
    name: "job-history-minutes",
    kind: "int",
    ...OptionBounds.jobHistoryMinutes,
    description: "minutes an ended job's records are kept before they are deleted (0: for ever)",
    defaultText: String(Defaults.jobHistoryMinutes),
  },
  {
    name: "merge-policy",
    kind: "string",
    valueName: "POLICY",
    choices: mergePolicies,
    description: `split-brain merge policy: ${mergePolicies.join(", ")}`,
    defaultText: Defaults.mergePolicy,
  },
  {
    name: "map-config",
    kind: "string",
    valueName: "FILE",
    description: 'per-map settings as JSON: {"sessions*": {"ttlMs": 60000, "maxSizePerMember": 20000}}',
  },
  {
    name: "map",
    kind: "list",
    valueName: "NAME:K=V,...",
    envSeparator: ";",
    description:
      "per-map settings, e.g. sessions*:ttlMs=60000,eviction=lru (keys: backupCount, asyncBackupCount, ttlMs, maxIdleMs, maxSizePerMember, maxBytesPerMember, eviction, minClusterSize); overrides --map-config",
  },
  {
    name: "min-cluster-size",
    kind: "int",
    ...OptionBounds.minClusterSize,
    description:
      "split-brain protection: serve data only while seeing (and holding a lease with) this many data members",
    defaultText: "0 (off)",
  },
  {
    name: "log-level",
    kind: "string",
    valueName: "LEVEL",
    choices: logLevels,
    description: `log level: ${logLevels.join(", ")}`,
    defaultText: Defaults.logLevel,
  },
];

/** `--help` text of the `node` command. */
export function nodeHelp(): string {
  return [
    "Usage: mod.ts [node] [flags]",
    "",
    "Starts a Shoal member. With no --join it serves the signaling endpoint itself and forms",
    'a one-member cluster that others can join. Prints one JSON line with "event":"ready"',
    "on stdout when it is ready; logs go to stderr as JSON lines.",
    "",
    "Flags:",
    formatFlagHelp(nodeFlags),
    "  --help              show this help",
    "",
    "Examples:",
    "  bun run mod.ts node --name a --http 127.0.0.1:5701",
    "  SHOAL_SECRET=… deno run -A mod.ts node --name b --join http://127.0.0.1:5701 --http 127.0.0.1:0",
  ].join("\n");
}

/** Result of parsing the `node` command line. */
export type NodeArgsResult = { options: NodeOptions } | { error: string } | { help: string };

const maxNameLength = 64;

function checkName(flag: string, v: string): string | undefined {
  if (v.length > maxNameLength) return `Invalid --${flag}: at most ${maxNameLength} characters`;
  // deno-lint-ignore no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(v)) return `Invalid --${flag}: control characters are not allowed`;
  return undefined;
}

/** Validates and normalises a `--join` URL (trailing slashes removed). */
export function parseJoinUrl(s: string): string | { error: string } {
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    return { error: `Bad --join URL "${s}": expected a base URL like http://127.0.0.1:5701` };
  }
  if (!["http:", "https:", "ws:", "wss:"].includes(u.protocol)) {
    return { error: `Bad --join URL "${s}": scheme must be http, https, ws or wss` };
  }
  if (u.username || u.password) {
    return { error: `Bad --join URL "${s}": credentials do not belong in the URL; use --secret` };
  }
  if (u.search || u.hash) return { error: `Bad --join URL "${s}": no query or fragment expected` };
  return u.href.replace(/\/+$/, "");
}

/**
 * Parses the `node` command's arguments (flags win over `SHOAL_*` environment variables)
 * into `NodeOptions`. Options not given stay undefined so `startNode` applies its defaults,
 * except `cluster` and `http`, which are always set.
 *
 * @example
 * ```ts
 * parseNodeArgs(["--backup-count", "2", "--lite"], { SHOAL_SECRET: "s" });
 * // { options: { cluster: "shoal", http: "127.0.0.1:5701", secret: "s", backupCount: 2, lite: true } }
 * ```
 */
export function parseNodeArgs(
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  /** Reads a file named by a flag (`--map-config`); throws when it cannot. */
  readText?: (path: string) => string,
): NodeArgsResult {
  const r = parseFlags(nodeFlags, args, env);
  if (r.kind === "help") return { help: nodeHelp() };
  if (r.kind === "error") return { error: r.error };
  if (r.positionals.length > 0) return { error: `Unexpected argument "${r.positionals[0]}"` };
  const v = r.values;
  const options: NodeOptions = { cluster: Defaults.cluster, http: Defaults.http };

  for (const flag of ["name", "cluster"] as const) {
    const s = v[flag] as string | undefined;
    if (s === undefined) continue;
    const err = checkName(flag, s);
    if (err) return { error: err };
    options[flag] = s;
  }
  if (v.secret !== undefined) options.secret = v.secret as string;
  if (v["previous-secret"] !== undefined) {
    if (options.secret === undefined) return { error: "--previous-secret needs --secret (the new secret)" };
    if (v["previous-secret"] === options.secret) return { error: "--previous-secret must differ from --secret" };
    options.previousSecret = v["previous-secret"] as string;
  }
  if (v.token !== undefined) options.token = v.token as string;
  if (v["read-token"] !== undefined) {
    if (options.token === undefined) {
      return { error: "--read-token needs --token: without it every write would be open to anyone" };
    }
    if (v["read-token"] === options.token) return { error: "--read-token must differ from --token" };
    options.readToken = v["read-token"] as string;
  }
  if (v["open-metrics"] !== undefined) options.openMetrics = v["open-metrics"] as boolean;
  if (v["http-allowed-host"] !== undefined) {
    const hosts = v["http-allowed-host"] as string[];
    const bad = hosts.find((h) => !/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(h) || h.length > 253);
    if (bad !== undefined) return { error: `--http-allowed-host ${JSON.stringify(bad)} is not a host name` };
    options.httpAllowedHosts = hosts.map((h) => h.toLowerCase());
  }
  if ((v["tls-cert"] === undefined) !== (v["tls-key"] === undefined)) {
    return { error: "TLS needs both --tls-cert FILE and --tls-key FILE" };
  }
  if (v["tls-cert"] !== undefined) options.tlsCert = v["tls-cert"] as string;
  if (v["tls-key"] !== undefined) options.tlsKey = v["tls-key"] as string;
  if (v["tls-ca"] !== undefined) options.tlsCa = v["tls-ca"] as string;

  if (v.join !== undefined) {
    const urls: string[] = [];
    for (const s of v.join as string[]) {
      const u = parseJoinUrl(s);
      if (typeof u !== "string") return u;
      if (!urls.includes(u)) urls.push(u);
    }
    options.join = urls;
  }

  const http = (v.http as string | undefined) ?? Defaults.http;
  const addr = parseListenAddress(http);
  if ("error" in addr) return addr;
  if (!isLoopbackHost(addr.host) && options.token === undefined) {
    return {
      error: `Refusing to serve HTTP on ${http} without a token: anyone who can reach it could write. ` +
        `Pass --token (or SHOAL_TOKEN), or listen on a loopback address such as 127.0.0.1:5701.`,
    };
  }
  options.http = http;

  if (v.ice !== undefined) {
    const servers: IceServer[] = [];
    for (const s of v.ice as string[]) {
      const ice = parseIceUrl(s);
      if ("error" in ice) return ice;
      servers.push(ice);
    }
    options.iceServers = servers;
  }
  if (v["ice-host-address"] !== undefined) options.iceAdditionalHostAddresses = v["ice-host-address"] as string[];
  if (v["backup-count"] !== undefined) options.backupCount = v["backup-count"] as number;
  if (v["async-backup-count"] !== undefined) options.asyncBackupCount = v["async-backup-count"] as number;
  if ((options.backupCount ?? Defaults.backupCount) + (options.asyncBackupCount ?? 0) > MAX_BACKUPS) {
    return { error: `Invalid backup counts: --backup-count plus --async-backup-count must be at most ${MAX_BACKUPS}` };
  }
  if (v["partition-count"] !== undefined) options.partitionCount = v["partition-count"] as number;
  if (v.lite !== undefined) options.lite = v.lite as boolean;
  if (v.slots !== undefined) options.slots = v.slots as number;
  if (v["job-history-minutes"] !== undefined) options.jobHistoryMinutes = v["job-history-minutes"] as number;
  if (v["merge-policy"] !== undefined) options.mergePolicy = v["merge-policy"] as NodeOptions["mergePolicy"];
  if (v["min-cluster-size"] !== undefined) options.minClusterSize = v["min-cluster-size"] as number;
  if (v["log-level"] !== undefined) options.logLevel = v["log-level"] as NodeOptions["logLevel"];
  if (v["map-config"] !== undefined || v.map !== undefined) {
    let file: unknown;
    const path = v["map-config"] as string | undefined;
    if (path !== undefined) {
      if (!readText) return { error: "Cannot read --map-config here" };
      let text: string;
      try {
        text = readText(path);
      } catch (e) {
        return { error: `Cannot read --map-config ${path}: ${e instanceof Error ? e.message : String(e)}` };
      }
      try {
        file = JSON.parse(text);
      } catch (e) {
        return { error: `Invalid --map-config ${path}: not JSON (${e instanceof Error ? e.message : String(e)})` };
      }
    }
    const maps = mapsConfigFromCli(file, (v.map as string[] | undefined) ?? []);
    if ("error" in maps) return maps;
    options.maps = maps.maps;
  }
  return { options };
}
