/**
 * The command-line entry: `mod.ts [command] [flags]`. Commands live one per file beside
 * this one and are loaded lazily so `signal` does not pull in the whole node, and `--help`
 * needs no permission at all.
 */
import { permissionHint } from "../runtime/permissions.ts";
import type { Command } from "./command.ts";

const commands: Record<string, () => Promise<Command>> = {
  node: async () => (await import("./node_command.ts")).nodeCommand,
  signal: async () => (await import("./signal.ts")).signalCommand,
  demo: async () => (await import("./demo.ts")).demoCommand,
};

export function usage(): string {
  return [
    "Shoal — an in-memory data grid for Deno and Bun over a WebRTC mesh",
    "",
    "Usage: deno task [command] [flags]   |   deno run -P mod.ts [command] [flags]   |   bun run mod.ts [command] [flags]",
    "",
    "Commands:",
    "  node     start a member (the default when no command is given)",
    "  signal   run a standalone signaling server",
    "  demo     run the failover demo: 3 members, a job, the master killed mid-job",
    "",
    "Run `mod.ts <command> --help` for the flags of a command.",
  ].join("\n");
}

export async function main(args: string[]): Promise<number> {
  const [first, ...rest] = args;
  if (first === "--help" || first === "-h" || first === "help") {
    console.log(usage());
    return 0;
  }
  const name = first && !first.startsWith("-") ? first : "node";
  const load = commands[name];
  if (!load) {
    console.error(`Unknown command "${name}".\n\n${usage()}`);
    return 2;
  }
  try {
    const cmd = await load();
    return await cmd.run(name === first ? rest : args);
  } catch (err) {
    const hint = permissionHint(err, name);
    if (hint === undefined) throw err;
    console.error(`error: ${hint}`);
    return 2;
  }
}
