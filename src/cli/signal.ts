/**
 * `mod.ts signal --http HOST:PORT`: a standalone signaling server. Prints one JSON line
 * `{"event":"ready","url":…}` on stdout once listening; runs until SIGINT/SIGTERM.
 */
import { createLogger } from "../core/log.ts";
import { permissionHint } from "../runtime/permissions.ts";
import { onSignal, writeStdoutLine } from "../runtime/process.ts";
import { createSignalingServer } from "../signaling/server.ts";
import type { Command } from "./command.ts";

const help = [
  "Usage: mod.ts signal [--http HOST:PORT] [--max-sockets-per-ip N] [--log-level LEVEL]",
  "",
  "Runs a standalone signaling server (the bootstrap that introduces a node to its first member).",
  "",
  "Flags:",
  "  --http HOST:PORT          listen address; port 0 picks a free port (default 127.0.0.1:5700)",
  "  --max-sockets-per-ip N    open sockets allowed per client IP (default 64)",
  "  --log-level LEVEL         debug | info | warn | error | silent (default info)",
  "  -h, --help                show this help",
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
    let http = "127.0.0.1:5700";
    let maxSocketsPerIp = 64;
    let level = "info";
    for (let i = 0; i < args.length; i++) {
      const a = args[i];
      const [flag, inline] = a.includes("=")
        ? [a.slice(0, a.indexOf("=")), a.slice(a.indexOf("=") + 1)]
        : [a, undefined];
      const value = () => {
        const v = inline ?? args[++i];
        if (v === undefined || (inline === undefined && v.startsWith("--"))) {
          throw new RangeError(`Flag ${flag} needs a value`);
        }
        return v;
      };
      try {
        switch (flag) {
          case "-h":
          case "--help":
            console.log(help);
            return 0;
          case "--http":
            http = value();
            break;
          case "--max-sockets-per-ip": {
            const v = value();
            maxSocketsPerIp = Number(v);
            if (!Number.isInteger(maxSocketsPerIp) || maxSocketsPerIp < 1) {
              throw new RangeError(`Invalid --max-sockets-per-ip "${v}": expected a positive integer`);
            }
            break;
          }
          case "--log-level":
            level = value();
            if (!["debug", "info", "warn", "error", "silent"].includes(level)) {
              throw new RangeError(`Invalid --log-level "${level}"`);
            }
            break;
          default:
            throw new RangeError(`Unknown flag "${a}" for signal`);
        }
      } catch (err) {
        console.error(`Error: ${(err as Error).message}\n\n${help}`);
        return 2;
      }
    }
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
