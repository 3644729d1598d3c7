/**
 * Signaling endpoints in the simulator, for a member of a network built with the signaling
 * model (`MemoryNetworkOptions.signaling`): every member serves an endpoint at
 * `mem://<id>` (its URL in the member list), is registered there and at the endpoint it
 * joined through, and runs the same {@link SignalPaths} as a real node, whose connections
 * are registrations at other members' endpoints. A link opened without a relay needs an
 * endpoint where both ends are registered and whose member is alive, so a member whose
 * seed dies must find another path, as a real one must.
 */
import type { Clock, Timer } from "../core/clock.ts";
import type { Logger } from "../core/log.ts";
import type { Membership } from "../cluster/membership.ts";
import { type EndpointConnection, SIGNAL_PATH_TICK_MS, SignalPaths } from "../cluster/signal_paths.ts";
import type { MemoryNetwork } from "../transport/memory.ts";
import type { NodeId } from "../transport/transport.ts";

const PREFIX = "mem://";

/** The signaling URL of simulated member `id`. */
export function simSignalingUrl(id: NodeId): string {
  return `${PREFIX}${id}`;
}

/** Time to open a connection to an endpoint (a WebSocket handshake on loopback). */
const OPEN_MS = 3;

/** A registration at the endpoint of member `endpoint`. */
interface SimConnection extends EndpointConnection {
  readonly endpoint: NodeId;
}

/** One member's signaling: its own endpoint, the one it joined through, and its paths to others. */
export class SimSignaling {
  readonly paths: SignalPaths<SimConnection>;
  readonly #fixed: SimConnection[];
  #timer: Timer | null = null;

  constructor(
    readonly net: MemoryNetwork,
    readonly self: NodeId,
    readonly m: Membership,
    readonly clock: Clock,
    log: Logger,
  ) {
    this.#fixed = [this.#connection(self)];
    m.setUrls([simSignalingUrl(self)]);
    this.paths = new SignalPaths({
      self,
      log,
      members: () => m.members(),
      isLinked: (id) => net.node(self)?.isLinked(id) ?? false,
      fixed: () => this.#fixed,
      suspectServer: (conn) => m.memberState(conn.endpoint)?.status === "suspect",
      open: (url) => this.#open(url),
      retryLink: (id, serverLost) => m.retryLink(id, serverLost),
      serverOf: (conn) => conn.endpoint,
      endpointClosed: (id) => m.endpointClosed(id),
      now: () => clock.now(),
    });
    // As node.ts picks (SignalPaths.route), an answer going back where its request came from.
    const connectionAt = (endpoint: NodeId) =>
      this.#fixed.find((c) => c.endpoint === endpoint) ?? this.paths.connectionAt(simSignalingUrl(endpoint));
    net.setSignalRoute(self, {
      route: (to, arrivedAt) => this.paths.route(to, arrivedAt ? connectionAt(arrivedAt) ?? null : null)?.endpoint,
      sent: (to, endpoint) => {
        const c = connectionAt(endpoint);
        if (c) this.paths.sent(to, c);
      },
    });
    m.subscribe((e) => {
      if (e.type === "memberRemoved") this.paths.memberRemoved(e.member, e.reason);
    });
    const tick = () => {
      this.paths.tick();
      this.#timer = clock.setTimer(SIGNAL_PATH_TICK_MS, tick);
    };
    this.#timer = clock.setTimer(SIGNAL_PATH_TICK_MS, tick);
  }

  /**
   * Registers this member at the endpoint of `endpoint` (its join URL), as a node opens its
   * join URL before it starts.
   * @returns the members registered there (the seeds), or throws when the endpoint is down
   */
  joinThrough(endpoint: NodeId): NodeId[] {
    if (!this.net.register(this.self, endpoint)) {
      throw new Error(`Cannot reach the signaling endpoint of ${endpoint}`);
    }
    this.#fixed.unshift(this.#connection(endpoint));
    return this.net.peersAt(endpoint).filter((id) => id !== this.self);
  }

  stop(): void {
    this.#timer?.cancel();
    this.paths.stop();
  }

  #connection(endpoint: NodeId): SimConnection {
    const net = this.net;
    const self = this.self;
    return {
      endpoint,
      get connected() {
        return net.registeredAt(self, endpoint) && !!net.node(endpoint)?.alive;
      },
      peers: () => net.peersAt(endpoint).filter((id) => id !== self),
      close: () => net.unregister(self, endpoint),
    };
  }

  #open(url: string): Promise<SimConnection> {
    return new Promise((resolve, reject) => {
      const endpoint = url.startsWith(PREFIX) ? url.slice(PREFIX.length) : "";
      this.clock.setTimer(OPEN_MS, () => {
        if (endpoint && this.net.register(this.self, endpoint)) resolve(this.#connection(endpoint));
        else reject(new Error(`Cannot open the signaling endpoint ${url}`));
      });
    });
  }
}
