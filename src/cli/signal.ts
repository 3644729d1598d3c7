/**
 * `mod.ts signal --http HOST:PORT`: a standalone signaling server. Prints one JSON line
 * `{"event":"ready","url":…}` on stdout once listening; runs until SIGINT/SIGTERM.
 */
import { createLogger } from "../core/log.ts";
import { permissionHint } from "../runtime/permissions.ts";
import { onSignal, writeStdoutLine } from "../runtime/process.ts";
import { createSignalingServer } from "../signaling/server.ts";
import type { Command } from "./command.ts";
import { type FlagSpec, formatFlagHelp, parseFlags } from "./flags.ts";

/** The `signal` command's flags (read from the command line only: SHOAL_* variables are a member's). */
const signalFlags: FlagSpec[] = [
  {
    name: "http",
    kind: "string",
    valueName: "HOST:PORT",
    description: "listen address; port 0 picks a free port",
    defaultText: "127.0.0.1:5700",
    noEnv: true,
  },
  {
    name: "max-sockets-per-ip",
    kind: "int",
    min: 1,
    max: 1_000_000,
    description: "open sockets allowed per client IP",
    defaultText: "64",
    noEnv: true,
  },
  {
    name: "log-level",
    kind: "string",
    valueName: "LEVEL",
    choices: ["debug", "info", "warn", "error", "silent"],
    description: "debug | info | warn | error | silent",
    defaultText: "info",
    noEnv: true,
  },
];

const help = [
  "Usage: mod.ts signal [--http HOST:PORT] [--max-sockets-per-ip N] [--log-level LEVEL]",
  "",
  "Runs a standalone signaling server (the bootstrap that introduces a node to its first member).",
  "",
  "Flags:",
  formatFlagHelp([...signalFlags, {
    name: "help",
    kind: "boolean",
    description: "show this help (also -h)",
    noEnv: true,
  }]),
].join("\n");

/**
 * Parses `HOST:PORT` (IPv6 hosts in brackets: `[::1]:7000`).
 * @returns the host and port
 * @throws RangeError on anything else
 */
export function parseHostPort(s: string): { hostname: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:\s]+)):(\d{1,5})$/.exec(s);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new RangeError(`Invalid address "${s}": expected HOST:PORT, e.g. 127.0.0.1:5700`);
  return { hostname: m[1] ?? m[2], port };
}

/** The `signal` command. */
export const signalCommand = {
  summary: "run a standalone signaling server",
  async run(args: string[]): Promise<number> {
    // The same parser as the node command's: decimal whole numbers only (Number() took "0x10",
    // "1e3" and "5.0" before, found by an internal review), a repeated flag's last value.
    const r = parseFlags(signalFlags, args, {});
    if (r.kind === "help") {
      console.log(help);
      return 0;
    }
    const error = r.kind === "error"
      ? r.error
      : r.positionals.length > 0
      ? `Unexpected argument "${r.positionals[0]}"`
      : undefined;
    if (error !== undefined || r.kind !== "ok") {
      console.error(`Error: ${error}\n\n${help}`);
      return 2;
    }
    const http = (r.values.http as string | undefined) ?? "127.0.0.1:5700";
    const maxSocketsPerIp = (r.values["max-sockets-per-ip"] as number | undefined) ?? 64;
    const level = (r.values["log-level"] as string | undefined) ?? "info";
    let addr;
    try {
      addr = parseHostPort(http);
    } catch (err) {
      console.error(`Error: ${(err as Error).message}`);
      return 2;
    }
    const log = createLogger(level as "info", { component: "signal" });
    let server;
    try {
      server = await createSignalingServer({ hostname: addr.hostname, port: addr.port, maxSocketsPerIp, log });
    } catch (err) {
      console.error(`Error: ${permissionHint(err, "signal") ?? (err as Error).message}`);
      return 1;
    }
    writeStdoutLine(
      JSON.stringify({ event: "ready", url: server.url, signal: server.url.replace(/^http/, "ws") + "/signal" }),
    );
    log.info("signal.listening", { url: server.url });
    await new Promise<void>((resolve) => {
      onSignal("SIGINT", resolve);
      onSignal("SIGTERM", resolve);
    });
    await server.close();
    return 0;
  },
} satisfies Command;
