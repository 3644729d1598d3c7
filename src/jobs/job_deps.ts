/** What the job layer's parts (coordinator, worker) get from the member's JobService. */
import type { ServiceDeps } from "../cluster/service_deps.ts";
import type { IMap } from "../map/imap.ts";
import type { NodeId } from "../transport/transport.ts";
import type { Message } from "../wire/message.ts";

/**
 * The node's {@link ServiceDeps} minus the transport and router, which the JobService keeps:
 * its parts read and write job state through the member's maps and send through it.
 */
export interface JobDeps extends Omit<ServiceDeps, "transport" | "router"> {
  /** The named map of the member's data grid. */
  getMap: (name: string) => IMap<unknown, unknown>;
  /** Sends a job message to a member; to this member it is delivered asynchronously too. */
  send: (to: NodeId, msg: Message) => void;
}
