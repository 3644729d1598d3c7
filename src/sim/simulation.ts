/**
 * A generic, seeded simulator: N nodes built by a factory over one MemoryNetwork in virtual
 * time, with crashes, restarts (under a new id), partitions, heals, loss, asymmetric
 * links and stalls (a node whose event loop is blocked). Protocol layers (membership,
 * partitions, maps) plug in through the factory; the same seed gives the same run.
 *
 * A run fails loudly: an exception thrown by any node's message handler (which the router
 * catches so that a real node survives it) is recorded, and the next `run`/`until` throws
 * it, naming the seed. Wrapped in `withSeed`, the test then prints the replay command.
 */
import { settle, VirtualClock } from "../core/clock.ts";
import { StallableClock } from "./stallable_clock.ts";
import { createLogger, type Logger, silentLogger } from "../core/log.ts";
import { Random } from "../core/random.ts";
import { type LinkConditions, MemoryNetwork, type MemoryTransport } from "../transport/memory.ts";
import { MessageRouter } from "../transport/router.ts";
import type { NodeId } from "../transport/transport.ts";

/** What the factory gets to build one node. */
export interface SimNodeContext {
  id: NodeId;
  transport: MemoryTransport;
  router: MessageRouter;
  /** The shared virtual clock as this node sees it: stalled together with the node. */
  clock: StallableClock;
  /** This node's own generator, forked from the simulation seed. */
  rng: Random;
  log: Logger;
}

/** The part of a node the simulator drives; everything else is up to the factory. */
export interface SimNode {
  /** Called when the node crashes (kill -9): stop timers, handle nothing more. */
  stop?(): void;
}

export interface SimulationOptions {
  seed: number;
  /** Default link conditions. @default { delayMs: 1 } */
  link?: Partial<LinkConditions>;
  /** Round-trip every message through the codec (slower; validates everything). @default false */
  encode?: boolean;
  /** @default 5 */
  connectDelayMs?: number;
  /** After a crash, when peers see linkDown; null = never. @default null */
  crashLinkDownAfterMs?: number | null;
  /** Model signaling endpoints (see `MemoryNetworkOptions.signaling`). @default false */
  signaling?: boolean;
  /** Granularity at which promise continuations are let run. @default 1 */
  tickMs?: number;
  /** Log level for node loggers. @default "silent" */
  logLevel?: "debug" | "info" | "warn" | "error" | "silent";
}

/**
 * Failures of one seeded run that the code under test swallows on purpose: message-handler
 * exceptions (the router counts and reports them so that a real node survives a bug).
 * Any one fails the run.
 */
export class RunFailures {
  readonly list: string[] = [];

  constructor(readonly seed: number) {}

  /**
   * Records every exception of `router`'s message handlers on node `id`. Call it after the
   * node's own code has set `onHandlerError` (that handler still runs).
   */
  watch(router: MessageRouter, id: NodeId): void {
    const own = router.onHandlerError;
    router.onHandlerError = (kind, err) => {
      this.list.push(
        `handler error in ${kind} on ${id}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
      );
      own(kind, err);
    };
  }

  /** @throws Error naming the seed and the first failure, when there is any */
  check(): void {
    if (this.list.length === 0) return;
    const more = this.list.length > 1 ? ` (and ${this.list.length - 1} more)` : "";
    throw new Error(`Simulation with seed ${this.seed} failed: ${this.list[0]}${more}`);
  }
}

export class Simulation<N extends SimNode> {
  readonly seed: number;
  readonly clock: VirtualClock;
  readonly rng: Random;
  readonly net: MemoryNetwork;
  /** Message-handler exceptions so far; `run` and `until` throw once there is one. */
  readonly failures: RunFailures;
  readonly #factory: (ctx: SimNodeContext) => N;
  readonly #tickMs: number;
  readonly #logLevel: SimulationOptions["logLevel"];
  readonly #nodes = new Map<NodeId, N>();
  readonly #clocks = new Map<NodeId, StallableClock>();
  readonly #crashed = new Set<NodeId>();
  #counter = 0;

  constructor(opts: SimulationOptions, factory: (ctx: SimNodeContext) => N) {
    this.seed = opts.seed;
    this.rng = new Random(opts.seed);
    this.clock = new VirtualClock();
    this.failures = new RunFailures(opts.seed);
    this.net = new MemoryNetwork({
      clock: this.clock,
      rng: this.rng.fork(),
      link: { delayMs: 1, ...opts.link },
      encode: opts.encode ?? false,
      connectDelayMs: opts.connectDelayMs ?? 5,
      crashLinkDownAfterMs: opts.crashLinkDownAfterMs ?? null,
      signaling: opts.signaling ?? false,
    });
    this.net.frozen = (id) => this.isStalled(id);
    this.#factory = factory;
    this.#tickMs = opts.tickMs ?? 1;
    this.#logLevel = opts.logLevel ?? "silent";
  }

  /** Creates a node with a fresh id (ids sort in creation order). */
  spawn(id: NodeId = `n${String(this.#counter++).padStart(5, "0")}`): N {
    const transport = this.net.attach(id);
    const clock = new StallableClock(this.clock);
    holdWhileStalled(transport, clock);
    const router = new MessageRouter(transport);
    const log = this.#logLevel === "silent"
      ? silentLogger
      : createLogger(this.#logLevel, { node: id }, undefined, () => this.clock.now());
    const node = this.#factory({ id, transport, router, clock, rng: this.rng.fork(), log });
    this.failures.watch(router, id);
    this.#nodes.set(id, node);
    this.#clocks.set(id, clock);
    return node;
  }

  /**
   * Blocks a node's event loop for `ms` from now (CPU starvation, a long GC pause, a long
   * synchronous task): none of its timers fire and nothing it receives is handled until
   * the stall ends. Then its overdue timers fire first, in order, and only after them the
   * frames and link events that arrived meanwhile, as in a real event loop that runs
   * expired timers before polling for I/O. The node sends nothing while stalled; frames it
   * would relay wait too. With `inputFirst` the held input is handed over before the overdue
   * timers instead (real event loops differ in this order after a SIGCONT).
   */
  stall(id: NodeId, ms: number, opts: { inputFirst?: boolean } = {}): void {
    this.#clocks.get(id)?.stallFor(ms, opts.inputFirst ?? false);
  }

  /** Whether a node is stalled right now. */
  isStalled(id: NodeId): boolean {
    return this.#clocks.get(id)?.stalled ?? false;
  }

  node(id: NodeId): N | undefined {
    return this.#nodes.get(id);
  }

  /** Every node ever spawned, crashed ones included. */
  all(): Map<NodeId, N> {
    return this.#nodes;
  }

  /** Ids of nodes not crashed, in creation order. */
  liveIds(): NodeId[] {
    return [...this.#nodes.keys()].filter((id) => !this.#crashed.has(id));
  }

  liveNodes(): N[] {
    return this.liveIds().map((id) => this.#nodes.get(id)!);
  }

  isCrashed(id: NodeId): boolean {
    return this.#crashed.has(id);
  }

  /** kill -9: the node stops at once and its links go silent. */
  crash(id: NodeId): void {
    if (this.#crashed.has(id)) return;
    this.#crashed.add(id);
    this.#clocks.get(id)?.stallFor(0);
    this.#nodes.get(id)?.stop?.();
    this.net.crash(id);
  }

  /** Crash then a new node (new id) in its place; returns the new node. */
  restart(id: NodeId): N {
    this.crash(id);
    return this.spawn();
  }

  /** Splits the network into groups that cannot reach each other. */
  partition(groups: NodeId[][]): void {
    this.net.partition(groups);
  }

  heal(): void {
    this.net.heal();
  }

  /** Sets the loss probability on every existing and future link. */
  setLoss(loss: number): void {
    (this.net.defaults as LinkConditions).loss = loss;
  }

  /** Blocks (or unblocks) the direction a → b only: an asymmetric link failure. */
  blockOneWay(a: NodeId, b: NodeId, blocked = true): void {
    this.net.setLink(a, b, { blocked });
  }

  setLink(a: NodeId, b: NodeId, c: Partial<LinkConditions>): void {
    this.net.setLink(a, b, c);
  }

  /**
   * Advances virtual time by `ms`, letting promise continuations run every tick.
   * @throws Error when a message handler threw (see {@link RunFailures})
   */
  async run(ms: number): Promise<void> {
    const end = this.clock.now() + ms;
    this.failures.check();
    while (this.clock.now() < end) {
      this.clock.runUntil(Math.min(end, this.clock.now() + this.#tickMs));
      await settle();
      this.failures.check();
    }
  }

  /**
   * Runs until `pred()` holds, checking every `checkEveryMs`.
   * @returns the virtual time it took
   * @throws Error when `timeoutMs` passes first (with `describe()` in the message), or a
   *   message handler threw
   */
  async until(pred: () => boolean, timeoutMs: number, checkEveryMs = 50, describe?: () => string): Promise<number> {
    const start = this.clock.now();
    this.failures.check();
    while (!pred()) {
      if (this.clock.now() - start >= timeoutMs) {
        throw new Error(`Condition not met within ${timeoutMs} ms of virtual time${describe ? `: ${describe()}` : ""}`);
      }
      await this.run(checkEveryMs);
    }
    return this.clock.now() - start;
  }
}

/**
 * Makes a node's transport hold what it receives (frames, link up/down) while its clock is
 * stalled, and hand it over in arrival order once the stall's overdue timers have run.
 */
export function holdWhileStalled(transport: MemoryTransport, clock: StallableClock): void {
  const receive = transport.receive.bind(transport);
  transport.receive = (from, payload, size) => {
    if (clock.stalled) clock.hold(() => receive(from, payload, size));
    else receive(from, payload, size);
  };
  const setHandlers = transport.setHandlers.bind(transport);
  transport.setHandlers = (h) =>
    setHandlers({
      message: h.message,
      linkUp: (peer) => clock.stalled ? clock.hold(() => h.linkUp(peer)) : h.linkUp(peer),
      linkDown: (peer, reason) => clock.stalled ? clock.hold(() => h.linkDown(peer, reason)) : h.linkDown(peer, reason),
    });
}
