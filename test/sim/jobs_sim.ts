/**
 * A simulated cluster for job tests: real membership, real partitioned IMaps and real job
 * services per member, over the memory network in virtual time. A crash stops everything
 * of the member at once (as kill -9 does) and cuts it off the network; a stall blocks its
 * event loop for a while (SIGSTOP, a long GC), see Simulation.stall.
 */
import { Membership } from "../../src/cluster/membership.ts";
import { VirtualClock } from "../../src/core/clock.ts";
import { createLogger, type Logger, silentLogger } from "../../src/core/log.ts";
import { Random } from "../../src/core/random.ts";
import type { IMap } from "../../src/map/imap.ts";
import type { ConnectorRegistry } from "../../src/jobs/connector_registry.ts";
import { JobService, type JobTuning } from "../../src/jobs/job_service.ts";
import { MemoryNetwork, type MemoryTransport } from "../../src/transport/memory.ts";
import { MessageRouter } from "../../src/transport/router.ts";
import { holdWhileStalled, RunFailures } from "../../src/sim/simulation.ts";
import { StallableClock } from "../../src/sim/stallable_clock.ts";
import type { NodeId } from "../../src/transport/transport.ts";
import type { ServiceDeps } from "../../src/cluster/service_deps.ts";
import type { ShoalError } from "../../src/core/errors.ts";

/** The data layer of one member, as the job layer needs it. */
export interface MapLayer {
  getMap(name: string): IMap<unknown, unknown>;
  stop(): void;
  /** Split-brain protection of the member (the job service refuses submissions while it refuses). */
  gate?: () => ShoalError | null;
}

/** Builds a member's data layer from what the node hands its services (over the memory network). */
export type MapLayerFactory = (deps: ServiceDeps & { transport: MemoryTransport }) => MapLayer;

export interface SimMember {
  id: NodeId;
  transport: MemoryTransport;
  router: MessageRouter;
  membership: Membership;
  maps: MapLayer;
  jobs: JobService;
  alive: boolean;
  /** The member's view of the shared clock: everything of the member runs on it, so a stall blocks all of it. */
  clock: StallableClock;
}

export interface JobSimOptions {
  seed: number;
  mapLayer: MapLayerFactory;
  slots?: number;
  tuning?: JobTuning;
  registry?: () => ConnectorRegistry;
  verbose?: boolean;
  /** JobServiceOptions.historyMs of every member. @default the service's */
  historyMs?: number;
}

export class JobSim {
  readonly clock = new VirtualClock();
  readonly rng: Random;
  readonly net: MemoryNetwork;
  readonly members = new Map<NodeId, SimMember>();
  /** Message-handler exceptions of any member: `until`, `runUntil` and `run` throw once there is one. */
  readonly failures: RunFailures;
  #n = 0;

  constructor(readonly opts: JobSimOptions) {
    this.rng = new Random(opts.seed);
    this.failures = new RunFailures(opts.seed);
    this.net = new MemoryNetwork({ clock: this.clock, rng: this.rng.fork(), link: { delayMs: 1, jitterMs: 1 } });
  }

  #log(id: string): Logger {
    return this.opts.verbose ? createLogger("info", { member: id }) : silentLogger;
  }

  /** Starts a member; it joins through the oldest live member, or forms the cluster. */
  async addMember(): Promise<SimMember> {
    const id = `m${++this.#n}`;
    const transport = this.net.attach(id);
    const clock = new StallableClock(this.clock);
    holdWhileStalled(transport, clock);
    const router = new MessageRouter(transport);
    const rng = this.rng.fork();
    const log = this.#log(id);
    const membership = new Membership({
      self: id,
      transport,
      router,
      clock,
      rng,
      log,
      config: { cluster: "sim", secret: "sim-secret", name: id },
    });
    const deps = { self: id, view: membership, transport, router, clock, rng, log };
    const maps = this.opts.mapLayer(deps);
    const jobs = new JobService({
      ...deps,
      getMap: (name) => maps.getMap(name),
      slots: this.opts.slots ?? 4,
      registry: this.opts.registry?.(),
      tuning: this.opts.tuning,
      historyMs: this.opts.historyMs,
      gate: maps.gate,
    });
    this.failures.watch(router, id);
    const m: SimMember = { id, transport, router, membership, maps, jobs, alive: true, clock };
    this.members.set(id, m);
    const seeds = this.live().filter((x) => x.id !== id).map((x) => x.id);
    const started = membership.start(seeds);
    await this.runUntil(() => membership.joined, 30_000, () => started);
    jobs.start();
    return m;
  }

  live(): SimMember[] {
    return [...this.members.values()].filter((m) => m.alive);
  }

  master(): SimMember | undefined {
    const votes = this.live().map((m) => m.membership.master());
    const id = votes[0];
    return id && votes.every((v) => v === id) ? this.members.get(id) : undefined;
  }

  /** Blocks the member's event loop for `ms` from now: none of its timers fire and nothing it receives is handled. */
  stall(id: NodeId, ms: number): void {
    this.members.get(id)!.clock.stallFor(ms);
  }

  /** kill -9: the member stops at once and disappears from the network. */
  crash(id: NodeId): void {
    const m = this.members.get(id)!;
    m.alive = false;
    m.clock.stallFor(0);
    this.net.crash(id);
    m.jobs.stop();
    m.maps.stop();
    m.membership.stop();
  }

  /** Advances virtual time until `promise` settles (IMap calls need the clock to move). */
  async until<T>(promise: Promise<T>, maxMs = 120_000): Promise<T> {
    let done = false;
    const p = promise.finally(() => void (done = true));
    p.catch(() => {});
    const start = this.clock.now();
    await this.clock.runForAsync(0);
    while (!done) {
      if (this.clock.now() - start > maxMs) {
        throw new Error(`call not settled after ${maxMs} ms of virtual time (seed ${this.opts.seed})`);
      }
      await this.clock.runForAsync(5);
      this.failures.check();
    }
    this.failures.check();
    return p;
  }

  /** Advances virtual time in steps until `cond` holds; throws after `maxMs`. */
  async runUntil(
    cond: () => Promise<boolean> | boolean,
    maxMs: number,
    _keep?: () => unknown,
    stepMs = 50,
  ): Promise<number> {
    const start = this.clock.now();
    while (!(await this.until(Promise.resolve(cond())))) {
      if (this.clock.now() - start > maxMs) {
        throw new Error(`condition not met after ${maxMs} ms of virtual time (seed ${this.opts.seed})`);
      }
      await this.clock.runForAsync(stepMs);
    }
    return this.clock.now() - start;
  }

  async run(ms: number): Promise<void> {
    await this.clock.runForAsync(ms);
    this.failures.check();
  }

  stopAll(): void {
    for (const m of this.live()) this.crash(m.id);
  }
}
