/**
 * Shoal: an in-memory data grid for Deno and Bun. Nodes meet through a tiny signaling
 * server, form a WebRTC data-channel mesh, and share a partitioned map with synchronous
 * backups.
 *
 * @example
 * ```ts
 * // deno run -P mod.ts signal --http 127.0.0.1:7000   (or: deno task signal …)
 * // bun run mod.ts --help
 * ```
 *
 * @module
 */
import type { Node } from "./src/node.ts";
import type { NodeOptions } from "./src/config.ts";

export type { Node } from "./src/node.ts";
export type { IceServer, NodeOptions } from "./src/config.ts";
export type { IMap } from "./src/map/imap.ts";
export type { EntryProcessor, ProcessorEntry, ProcessorTable } from "./src/map/entry_processor.ts";
export type { LockOptions } from "./src/map/imap.ts";
export type { IQueue, QueueOptions, WaitOptions } from "./src/map/queue.ts";
export type { ITopic, SubscribeOptions, TopicEvent, TopicSubscription } from "./src/map/topic.ts";
export type { ClusterEvent, ClusterView, MemberInfo } from "./src/cluster/view.ts";
export { IndeterminateResultError, ShoalError, TimeoutError } from "./src/core/errors.ts";
export type { ShoalErrorCode } from "./src/core/errors.ts";

/**
 * Starts a member and joins the cluster named by `options.join`, or starts a one-member
 * cluster (serving the signaling endpoint itself) when no join URL is given. `src/node.ts`
 * (werift, cbor-x) is loaded on the first call, so that `mod.ts --help` runs under Deno
 * without any permission.
 *
 * @param options node configuration; see {@link NodeOptions}
 * @returns the running member once it has joined
 * @throws ShoalError AUTH_FAILED (wrong secret), REFUSED (wrong cluster), UNREACHABLE (join URL), INVALID_ARGUMENT
 * @example
 * ```ts
 * const node = await startNode({ secret: "s3cret", http: "127.0.0.1:0" });
 * console.log(node.httpUrl, node.cluster.master());
 * await node.shutdown();
 * ```
 */
export async function startNode(options: NodeOptions = {}): Promise<Node> {
  const node = await import("./src/node.ts");
  return node.startNode(options);
}

if (import.meta.main) {
  // Under Bun this may replace the process (same PID) by one with the engine settings of src/runtime/tune.ts.
  const { tuneRuntime } = await import("./src/runtime/tune.ts");
  const { args, exit, writeStderrLine } = await import("./src/runtime/process.ts");
  tuneRuntime(writeStderrLine);
  const { main } = await import("./src/cli/main.ts");
  const code = await main(args());
  // Lingering sockets or timers must not keep a finished command alive.
  exit(code);
}
