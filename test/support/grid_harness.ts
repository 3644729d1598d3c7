/**
 * Several data-grid members over a MemoryNetwork in virtual time, for tests and the
 * simulator. Membership comes from a {@link TestCluster} the harness controls.
 */
import { VirtualClock } from "../../src/core/clock.ts";
import { silentLogger } from "../../src/core/log.ts";
import { Random } from "../../src/core/random.ts";
import { DataGrid, type DataGridConfig } from "../../src/map/data_grid.ts";
import { MemoryNetwork, type MemoryTransport } from "../../src/transport/memory.ts";
import { MessageRouter } from "../../src/transport/router.ts";
import { TestCluster } from "./test_cluster_view.ts";

export interface GridMember {
  id: string;
  grid: DataGrid;
  transport: MemoryTransport;
  router: MessageRouter;
  lite: boolean;
}

export interface GridHarnessOptions {
  seed?: number;
  config?: Partial<DataGridConfig>;
  loss?: number;
  delayMs?: number;
  jitterMs?: number;
  encode?: boolean;
}

export class GridHarness {
  readonly clock = new VirtualClock();
  readonly rng: Random;
  readonly net: MemoryNetwork;
  readonly cluster = new TestCluster();
  readonly members = new Map<string, GridMember>();
  readonly config: DataGridConfig;
  handlerErrors: unknown[] = [];

  constructor(opts: GridHarnessOptions = {}) {
    this.rng = new Random(opts.seed ?? 1);
    this.net = new MemoryNetwork({
      clock: this.clock,
      rng: this.rng.fork(),
      link: { loss: opts.loss ?? 0, delayMs: opts.delayMs ?? 1, jitterMs: opts.jitterMs ?? 0 },
      encode: opts.encode ?? true,
      connectDelayMs: 1,
    });
    this.config = {
      partitionCount: 31,
      backupCount: 1,
      asyncBackupCount: 0,
      lite: false,
      invoke: { attemptTimeoutMs: 500, callTimeoutMs: 20_000 },
      ...opts.config,
    };
  }

  /** Starts a member, links it to every live member and publishes the new member list. */
  async add(id: string, lite = false, publish = true): Promise<GridMember> {
    const transport = this.net.attach(id);
    const router = new MessageRouter(transport);
    router.onHandlerError = (_kind, err) => this.handlerErrors.push(err);
    const view = this.cluster.add(id, lite);
    const grid = new DataGrid({
      self: id,
      view,
      transport,
      router,
      clock: this.clock,
      rng: this.rng.fork(),
      log: silentLogger,
      config: { ...this.config, lite },
    });
    const m: GridMember = { id, grid, transport, router, lite };
    for (const other of this.members.values()) if (other.transport.alive) void transport.connect(other.id);
    this.members.set(id, m);
    await this.clock.runForAsync(5);
    if (publish) this.cluster.publish();
    return m;
  }

  /** kill -9: the member stops at once; others learn of it after `detectMs` (then the view updates). */
  crash(id: string, detectMs = 1000): void {
    const m = this.members.get(id);
    if (!m) return;
    this.net.crash(id);
    m.grid.stop();
    this.members.delete(id);
    this.clock.setTimer(detectMs, () => {
      this.cluster.remove(id);
      this.cluster.publish();
    });
  }

  live(): GridMember[] {
    return [...this.members.values()];
  }

  async run(ms: number): Promise<void> {
    await this.clock.runForAsync(ms);
  }

  /** Runs until `promise` settles (or `maxMs` of virtual time pass). */
  async until<T>(promise: Promise<T>, maxMs = 60_000): Promise<T> {
    let done = false;
    const p = promise.finally(() => void (done = true));
    p.catch(() => {});
    for (let t = 0; t < maxMs && !done; t += 10) await this.clock.runForAsync(10);
    return p;
  }

  stop(): void {
    for (const m of this.members.values()) m.grid.stop();
  }
}
