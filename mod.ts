/**
 * Shoal: an in-memory data grid for Deno and Bun. Nodes meet through a tiny signaling
 * server, form a WebRTC data-channel mesh, and share a partitioned map with synchronous
 * backups.
 *
 * @example
 * ```ts
 * // deno run -A mod.ts signal --http 127.0.0.1:7000
 * // bun run mod.ts --help
 * ```
 *
 * @module
 */
export { startNode } from "./src/node.ts";
export type { Node } from "./src/node.ts";
export type { IceServer, NodeOptions } from "./src/config.ts";
export type { IMap } from "./src/map/imap.ts";
export type { ClusterEvent, ClusterView, MemberInfo } from "./src/cluster/view.ts";
export { IndeterminateResultError, ShoalError, TimeoutError } from "./src/core/errors.ts";
export type { ShoalErrorCode } from "./src/core/errors.ts";

if (import.meta.main) {
  const { main } = await import("./src/cli/main.ts");
  // deno-lint-ignore no-explicit-any
  const g = globalThis as any;
  const argv: string[] = g.Deno ? g.Deno.args : g.process.argv.slice(2);
  const code = await main(argv);
  // Lingering sockets or timers must not keep a finished command alive.
  if (g.Deno) g.Deno.exit(code);
  else g.process.exit(code);
}
