/**
 * The `node` command (the default): parses flags, starts a member, prints one JSON line
 * `{"event":"ready",…}` on stdout, and shuts down gracefully on SIGINT/SIGTERM (a second
 * signal exits at once). Exit codes: 0 after a clean shutdown, 1 when the node cannot
 * start or stop cleanly, 2 for usage errors.
 */
import { readFileSync } from "node:fs";
import { Defaults, type NodeOptions } from "../config.ts";
import { ShoalError } from "../core/errors.ts";
import { createLogger } from "../core/log.ts";
import { exit } from "../runtime/process.ts";
import { permissionHint } from "../runtime/permissions.ts";
import { runtimeSettings } from "../runtime/tune.ts";
import { membersLacking, type ShoalNode } from "../node_api.ts";
import type { Command } from "./command.ts";
import { parseNodeArgs } from "./node_args.ts";
import { currentDir, onStopSignal, processEnv, runtimeName, type StopSignal, writeStdoutLine } from "./process_io.ts";

/** Starts a node from options; `startNode` from `src/node.ts` in production. */
export type StartNodeFn = (options: NodeOptions) => Promise<ShoalNode>;

/** A pending stop request: `stopped` resolves on the first signal. */
export interface StopWaiter {
  stopped: Promise<StopSignal>;
  dispose(): void;
}

/** What the command touches outside itself; tests replace any of it. */
export interface NodeCommandDeps {
  env: Record<string, string | undefined>;
  stdout(line: string): void;
  stderr(line: string): void;
  start: StartNodeFn;
  /** Begins listening for stop signals; `onForce` runs on a second signal. */
  waitForStop(onForce: () => void): StopWaiter;
  exit(code: number): void;
  randomSecret(): string;
  /** How to launch `mod.ts` here, e.g. `bun run mod.ts`; used in the join hint. */
  launcher: string;
  /** @default 30000 */
  shutdownTimeoutMs: number;
  /** Reads a text file (`--map-config`, `.env` files). */
  readText(path: string): string;
  /** The working directory (where Bun looks for `.env` files). */
  cwd: string;
}

/**
 * The SHOAL_* variables set in the `.env` files of directory `dir` that Bun loads by itself
 * (`.env`, `.env.<NODE_ENV>`, `.env.local`, `.env.<NODE_ENV>.local`; NODE_ENV defaults to
 * development), by file. Deno reads none of them, so the same files configure a Bun member and
 * not a Deno member started the same way (found by an internal review): the node command warns.
 */
export function dotenvSettings(
  dir: string,
  nodeEnv: string | undefined,
  readText: (path: string) => string,
): Array<{ file: string; variables: string[] }> {
  const env = nodeEnv || "development";
  const out: Array<{ file: string; variables: string[] }> = [];
  for (const file of [".env", `.env.${env}`, ".env.local", `.env.${env}.local`]) {
    let text: string;
    try {
      text = readText(`${dir.replace(/\/$/, "")}/${file}`);
    } catch {
      continue; // absent or unreadable: Bun skips it too
    }
    const names = [...text.matchAll(/^[ \t]*(?:export[ \t]+)?(SHOAL_[A-Z0-9_]+)[ \t]*=/gm)].map((m) => m[1]);
    if (names.length > 0) out.push({ file, variables: [...new Set(names)] });
  }
  return out;
}

/** 32 random bytes as hex, from the platform's CSPRNG. */
export function generateSecret(): string {
  const b = crypto.getRandomValues(new Uint8Array(32));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

function defaultLauncher(): string {
  let mod = new URL("../../mod.ts", import.meta.url).pathname;
  const cwd = currentDir();
  if (cwd && mod.startsWith(cwd.replace(/\/$/, "") + "/")) mod = mod.slice(cwd.replace(/\/$/, "").length + 1);
  const rt = runtimeName();
  // -P reads the permission set from deno.json, which Deno finds from the working directory.
  const denoFlags = mod.startsWith("/") ? "-A" : "-P";
  return rt === "deno" ? `deno run ${denoFlags} ${mod}` : `bun run ${mod}`;
}

async function loadStartNode(): Promise<StartNodeFn> {
  // Imported on use, so `--help` and argument errors load neither werift nor cbor-x.
  const { startNode } = await import("../node.ts");
  return startNode;
}

function defaultDeps(): NodeCommandDeps {
  return {
    env: processEnv(),
    stdout: (line) => writeStdoutLine(line),
    stderr: (line) => console.error(line),
    readText: (path) => readFileSync(path, "utf8"),
    cwd: currentDir() ?? ".",
    start: async (options) => (await loadStartNode())(options),
    waitForStop(onForce) {
      let resolve!: (s: StopSignal) => void;
      const stopped = new Promise<StopSignal>((r) => (resolve = r));
      let count = 0;
      const dispose = onStopSignal((s) => {
        count++;
        if (count === 1) resolve(s);
        else onForce();
      });
      return { stopped, dispose };
    },
    exit: (code) => exit(code),
    randomSecret: generateSecret,
    launcher: defaultLauncher(),
    shutdownTimeoutMs: 30_000,
  };
}

function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:@=,+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * The command line that starts a second member joining `httpUrl`: with the settings a joiner
 * must share with the cluster (join_settings.ts), or the master refuses it. Before, only
 * `--cluster` was carried, and the printed line was refused for a first member started with,
 * say, `--partition-count 31` (found by an internal review).
 */
export function joinCommand(launcher: string, options: NodeOptions, httpUrl: string): string {
  const parts = [`SHOAL_SECRET=${shellQuote(options.secret ?? "")}`, launcher, "node"];
  const flag = (name: string, value: unknown, byDefault: unknown) => {
    if (value !== undefined && value !== byDefault) parts.push(`--${name}`, shellQuote(String(value)));
  };
  flag("cluster", options.cluster, Defaults.cluster);
  flag("partition-count", options.partitionCount, Defaults.partitionCount);
  flag("backup-count", options.backupCount, Defaults.backupCount);
  flag("async-backup-count", options.asyncBackupCount, Defaults.asyncBackupCount);
  if (typeof options.mergePolicy === "string") flag("merge-policy", options.mergePolicy, Defaults.mergePolicy);
  flag("min-cluster-size", options.minClusterSize, Defaults.minClusterSize);
  for (const [pattern, settings] of Object.entries(options.maps ?? {})) {
    const kv = Object.entries(settings).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`);
    if (kv.length > 0) parts.push("--map", shellQuote(`${pattern}:${kv.join(",")}`));
  }
  parts.push("--join", shellQuote(httpUrl), "--http", "127.0.0.1:0");
  return parts.join(" ");
}

/** Turns a start failure into one clear sentence for stderr. */
export function describeStartError(err: unknown, options: NodeOptions): string {
  const hint = permissionHint(err, "node");
  if (hint !== undefined) return hint;
  // deno-lint-ignore no-explicit-any
  const e = err as any;
  const message = String(e?.message ?? err);
  if (
    e?.code === "EADDRINUSE" || e?.name === "AddrInUse" || /EADDRINUSE|address already in use|in use/i.test(message)
  ) {
    return `Cannot listen on ${options.http}: the address is already in use. Pick another --http port, or port 0 for any free port.`;
  }
  if (e?.code === "EACCES" || e?.name === "PermissionDenied") {
    return `Cannot listen on ${options.http}: permission denied (${message}).`;
  }
  if (err instanceof ShoalError) {
    switch (err.code) {
      case "AUTH_FAILED":
        return `Cannot join cluster "${options.cluster}": ${message}. Check --secret (SHOAL_SECRET) and --cluster.`;
      case "REFUSED":
        // Membership names the cluster and the reason (e.g. a setting that differs) itself.
        return message.startsWith("Cannot join cluster")
          ? message
          : `Cannot join cluster "${options.cluster}": refused: ${message}`;
      case "UNREACHABLE":
        return `Cannot reach ${
          (options.join ?? []).join(", ") || "the cluster"
        }: ${message}. Is a member or signaling server listening there?`;
      case "TIMEOUT":
        return `Cannot join cluster "${options.cluster}": timed out: ${message}`;
      default:
        return `Cannot start node (${err.code}): ${message}`;
    }
  }
  return `Cannot start node: ${message}`;
}

/** How long the ready line waits for links to every member. */
const READY_LINK_WAIT_MS = 5_000;

/**
 * Waits until `node` has a link, direct or relayed, to every member of its view (at most
 * `timeoutMs`).
 * @returns the ids of the members it still has no link to (empty when linked to all)
 */
export async function linkedToAll(node: ShoalNode, timeoutMs: number): Promise<string[]> {
  const lacking = () => membersLacking(node);
  const end = Date.now() + timeoutMs;
  while (lacking().length > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  return lacking();
}

/**
 * Runs the `node` command to completion and returns its exit code.
 *
 * @param args the arguments after the command name
 * @param overrides replacements for process access (tests)
 */
export async function runNodeCommand(args: string[], overrides: Partial<NodeCommandDeps> = {}): Promise<number> {
  const deps: NodeCommandDeps = { ...defaultDeps(), ...overrides };
  const parsed = parseNodeArgs(args, deps.env, deps.readText);
  if ("help" in parsed) {
    deps.stdout(parsed.help);
    return 0;
  }
  if ("error" in parsed) {
    deps.stderr(`error: ${parsed.error}\nRun with --help for the list of flags.`);
    return 2;
  }
  const options = parsed.options;
  const secretGenerated = options.secret === undefined;
  if (secretGenerated) {
    if (options.join && options.join.length > 0) {
      deps.stderr("error: --join needs the cluster's secret: pass --secret or set SHOAL_SECRET.");
      return 2;
    }
    options.secret = deps.randomSecret();
  }

  // Listen before starting so a signal during a slow join still stops cleanly.
  let forced = false;
  const waiter = deps.waitForStop(() => {
    forced = true;
    deps.stderr("error: second signal, exiting without a graceful shutdown");
    deps.exit(130);
  });
  try {
    let node: ShoalNode;
    try {
      node = await Promise.race([
        deps.start(options),
        waiter.stopped.then((s) => {
          throw new Error(`interrupted by ${s} while starting`);
        }),
      ]);
    } catch (err) {
      deps.stderr(`error: ${describeStartError(err, options)}`);
      return 1;
    }
    // Ready once linked (directly or relayed) to every member, or say which ones are missing.
    const lacks = await linkedToAll(node, READY_LINK_WAIT_MS);
    const ready: Record<string, unknown> = {
      event: "ready",
      member: node.id,
      name: node.name,
      cluster: node.clusterName,
      http: node.httpUrl ?? null,
      master: node.cluster.master() ?? null,
    };
    const hint = secretGenerated && node.httpUrl ? joinCommand(deps.launcher, options, node.httpUrl) : undefined;
    if (hint) ready.join = hint;
    if (lacks.length > 0) ready.lacks = lacks;
    const settings = runtimeSettings();
    if (settings.length > 0) ready.runtimeSettings = settings;
    deps.stdout(JSON.stringify(ready));
    if (hint) deps.stdout(`# No --secret given; generated one. To add a member, run:\n#   ${hint}`);

    const log = createLogger(options.logLevel ?? "info", { member: node.id }, deps.stderr);
    const dotenv = dotenvSettings(deps.cwd, deps.env.NODE_ENV, deps.readText);
    if (dotenv.length > 0) {
      const bun = runtimeName() === "bun";
      log.warn("node.dotenv.found", {
        files: dotenv,
        runtime: runtimeName(),
        effect: bun
          ? "Bun read these into the environment (unless started with --no-env-file); a Deno member does not"
          : "Deno does not read .env files: these settings are not applied here, while a Bun member applies them",
        advice: "set SHOAL_* variables in the environment (or pass flags) so every member gets the same settings",
      });
    }
    const signal = await waiter.stopped;
    if (forced) return 130;
    log.info("node.shutdown.requested", { signal });
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        node.shutdown(),
        new Promise((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`shutdown took longer than ${deps.shutdownTimeoutMs} ms`)),
            deps.shutdownTimeoutMs,
          );
        }),
      ]);
    } catch (err) {
      deps.stderr(`error: Cannot shut down cleanly: ${(err as Error)?.message ?? err}`);
      return 1;
    } finally {
      clearTimeout(timer);
    }
    log.info("node.shutdown.done", {});
    return 0;
  } finally {
    waiter.dispose();
  }
}

/** The `node` command entry for `main.ts`. */
export const nodeCommand: Command = {
  summary: "start a member (the default command)",
  run: (args) => runNodeCommand(args),
};
