/**
 * A small declarative flag parser for the CLI commands. Each flag may also come from an
 * environment variable (`SHOAL_` + the flag name upper-cased, dashes as underscores);
 * flags on the command line win over the environment. Pure: no I/O, no process access.
 */

/** The kinds of values a flag takes. `list` flags repeat on the command line. */
export type FlagKind = "string" | "int" | "boolean" | "list";

/** One flag of a command. */
export interface FlagSpec {
  /** Long name without dashes, e.g. `backup-count`. */
  name: string;
  kind: FlagKind;
  /** One line for `--help`. */
  description: string;
  /** Placeholder shown in `--help`, e.g. `HOST:PORT`. */
  valueName?: string;
  /** Default shown in `--help` (the parser itself does not apply it). */
  defaultText?: string;
  /** Inclusive bounds for `int` flags. */
  min?: number;
  max?: number;
  /** Allowed values for `string` flags. */
  choices?: readonly string[];
  /** Do not read this flag from the environment. @default false */
  noEnv?: boolean;
  /**
   * What separates a `list` flag's values in its environment variable. `--map` values hold
   * commas themselves (`NAME:K=V,K=V`), so its variable separates maps with `;`. @default ","
   */
  envSeparator?: string;
}

export type FlagValue = string | number | boolean | string[];
export type FlagValues = Record<string, FlagValue>;

/** Outcome of parsing: values, a usage error, or a request for help. */
export type FlagParseResult =
  | { kind: "ok"; values: FlagValues; positionals: string[] }
  | { kind: "error"; error: string }
  | { kind: "help" };

/** The environment variable read for a flag, e.g. `backup-count` → `SHOAL_BACKUP_COUNT`. */
export function envNameOf(flag: string, prefix = "SHOAL_"): string {
  return prefix + flag.toUpperCase().replace(/-/g, "_");
}

const trueWords = new Set(["1", "true", "yes", "on"]);
const falseWords = new Set(["0", "false", "no", "off"]);

function convert(spec: FlagSpec, raw: string, source: string): FlagValue | { error: string } {
  switch (spec.kind) {
    case "boolean": {
      const w = raw.trim().toLowerCase();
      if (trueWords.has(w)) return true;
      if (falseWords.has(w)) return false;
      return { error: `Invalid value "${raw}" for ${source}: expected true or false` };
    }
    case "int": {
      const s = raw.trim();
      if (!/^-?\d+$/.test(s)) return { error: `Invalid value "${raw}" for ${source}: expected a whole number` };
      const n = Number(s);
      if (!Number.isSafeInteger(n)) return { error: `Invalid value "${raw}" for ${source}: number too large` };
      if (spec.min !== undefined && n < spec.min) {
        return { error: `Invalid value ${n} for ${source}: must be at least ${spec.min}` };
      }
      if (spec.max !== undefined && n > spec.max) {
        return { error: `Invalid value ${n} for ${source}: must be at most ${spec.max}` };
      }
      return n;
    }
    case "string": {
      if (raw === "") return { error: `Missing value for ${source}` };
      if (spec.choices && !spec.choices.includes(raw)) {
        return { error: `Invalid value "${raw}" for ${source}: expected one of ${spec.choices.join(", ")}` };
      }
      return raw;
    }
    case "list":
      if (raw === "") return { error: `Missing value for ${source}` };
      return [raw];
  }
}

/**
 * Parses `args` against `specs`, filling in values from `env` for flags not given.
 * Accepts `--flag value`, `--flag=value`, bare boolean flags, `--` to end flags, and
 * `-h`/`--help`. List flags from the environment are comma-separated.
 *
 * @example
 * ```ts
 * const r = parseFlags([{ name: "slots", kind: "int", description: "job slots" }], ["--slots", "4"], {});
 * // r = { kind: "ok", values: { slots: 4 }, positionals: [] }
 * ```
 */
export function parseFlags(
  specs: readonly FlagSpec[],
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  envPrefix = "SHOAL_",
): FlagParseResult {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const values: FlagValues = {};
  const positionals: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") {
      positionals.push(...args.slice(i + 1));
      break;
    }
    if (arg === "-h" || arg === "--help") return { kind: "help" };
    if (!arg.startsWith("--") || arg === "--") {
      if (arg.startsWith("-") && arg.length > 1) return { kind: "error", error: `Unknown flag "${arg}"` };
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const spec = byName.get(name);
    if (!spec) return { kind: "error", error: `Unknown flag "--${name}"` };
    let raw: string;
    if (eq >= 0) raw = arg.slice(eq + 1);
    else if (spec.kind === "boolean") raw = "true";
    else {
      const next = args[i + 1];
      if (next === undefined || (next.startsWith("--") && next.length > 2)) {
        return { kind: "error", error: `Missing value for --${name}` };
      }
      raw = next;
      i++;
    }
    const v = convert(spec, raw, `--${name}`);
    if (typeof v === "object" && !Array.isArray(v)) return { kind: "error", error: v.error };
    if (spec.kind === "list") values[name] = [...((values[name] as string[] | undefined) ?? []), ...(v as string[])];
    else values[name] = v;
  }
  for (const spec of specs) {
    if (spec.noEnv || spec.name in values) continue;
    const envName = envNameOf(spec.name, envPrefix);
    const raw = env[envName];
    if (raw === undefined || raw === "") continue;
    if (spec.kind === "list") {
      const items = raw.split(spec.envSeparator ?? ",").map((s) => s.trim()).filter((s) => s !== "");
      if (items.length > 0) values[spec.name] = items;
      continue;
    }
    const v = convert(spec, raw, envName);
    if (typeof v === "object" && !Array.isArray(v)) return { kind: "error", error: v.error };
    values[spec.name] = v;
  }
  return { kind: "ok", values, positionals };
}

/** Formats the flag table for `--help`. */
export function formatFlagHelp(specs: readonly FlagSpec[], envPrefix = "SHOAL_"): string {
  const rows = specs.map((s) => {
    const left = `  --${s.name}${s.kind === "boolean" ? "" : ` ${s.valueName ?? (s.kind === "int" ? "N" : "VALUE")}`}`;
    const extras: string[] = [];
    if (s.kind === "list") extras.push("repeatable");
    if (s.defaultText !== undefined) extras.push(`default ${s.defaultText}`);
    if (!s.noEnv) {
      const sep = s.kind === "list" ? `, values separated by "${s.envSeparator ?? ","}"` : "";
      extras.push(`env ${envNameOf(s.name, envPrefix)}${sep}`);
    }
    return [left, `${s.description}${extras.length ? ` (${extras.join("; ")})` : ""}`] as const;
  });
  const width = Math.max(...rows.map(([l]) => l.length)) + 2;
  return rows.map(([l, r]) => l.padEnd(width) + r).join("\n");
}
