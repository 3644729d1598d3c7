/** What a node hands its services: membership (all but the view), and partitions, invocation, maps and jobs above it. */
import type { Clock } from "../core/clock.ts";
import type { Logger } from "../core/log.ts";
import type { Random } from "../core/random.ts";
import type { MessageRouter } from "../transport/router.ts";
import type { NodeId, Transport } from "../transport/transport.ts";
import type { ClusterView } from "./view.ts";

export interface ServiceDeps {
  self: NodeId;
  view: ClusterView;
  transport: Transport;
  router: MessageRouter;
  clock: Clock;
  rng: Random;
  log: Logger;
}
