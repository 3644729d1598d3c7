/**
 * Several data-grid members over a MemoryNetwork in virtual time, for tests and the
 * simulator. Membership comes from a {@link TestCluster} the harness controls.
 */
import { VirtualClock } from "../../src/core/clock.ts";
import { silentLogger } from "../../src/core/log.ts";
import { Random } from "../../src/core/random.ts";
import { DataGrid, type DataGridConfig } from "../../src/map/data_grid.ts";
import type { ProcessorTable } from "../../src/map/entry_processor.ts";
import { MemoryNetwork, type MemoryTransport } from "../../src/transport/memory.ts";
import { MessageRouter } from "../../src/transport/router.ts";
import { partitionOf } from "../../src/partition/partition_of.ts";
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
  /** Entry processors every member registers. */
  processors?: ProcessorTable;
}

export class GridHarness {
  readonly clock = new VirtualClock();
  readonly rng: Random;
  readonly net: MemoryNetwork;
  readonly cluster = new TestCluster();
  readonly members = new Map<string, GridMember>();
  readonly config: DataGridConfig;
  readonly processors: ProcessorTable | undefined;
  handlerErrors: unknown[] = [];

  constructor(opts: GridHarnessOptions = {}) {
    this.rng = new Random(opts.seed ?? 1);
    this.processors = opts.processors;
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
      processors: this.processors,
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

  /** Runs `stepMs` at a time until `pred` holds or `maxMs` of virtual time pass; returns `pred()`. */
  async runUntil(pred: () => boolean, maxMs: number, stepMs = 50): Promise<boolean> {
    for (let t = 0; t < maxMs && !pred(); t += stepMs) await this.clock.runForAsync(stepMs);
    return pred();
  }

  stop(): void {
    for (const m of this.members.values()) m.grid.stop();
  }
}

/**
 * Null when each of the first `partitionCount` partitions has `replicas` agreeing copies
 * (same lineage, sequence and digest, the first one primary), no migration is in flight and
 * every live member holds the master's table; otherwise what is still missing.
 */
export function incompleteReplication(h: GridHarness, partitionCount: number, replicas = 2): string | null {
  const members = h.live();
  const master = members.find((m) => m.grid.partitions.masterActive);
  if (!master) return "no active master";
  const t = master.grid.partitions.table;
  if (t.migrations.size > 0) return `${t.migrations.size} migrations in flight`;
  for (const m of members) {
    if (
      m.grid.partitions.table.version !== t.version
    ) return `${m.id} holds table ${m.grid.partitions.table.version}, master ${t.version}`;
  }
  for (let p = 0; p < partitionCount; p++) {
    const row = t.replicas[p];
    if (row.length !== replicas) return `partition ${p} has ${row.length} replicas`;
    const reps = row.map((id) => h.members.get(id)?.grid.maps.debugReplicas().find((r) => r.p === p));
    if (reps.some((r) => !r)) return `partition ${p}: a replica holds nothing`;
    const [a, ...rest] = reps as NonNullable<(typeof reps)[number]>[];
    if (!a.primary) return `partition ${p}: ${row[0]} is not primary`;
    for (const b of rest) {
      const want = a.digests?.[b.level] ?? a.digest; // per-map backup counts: the maps of b's level
      if (a.seq !== b.seq || want[0] !== b.digest[0] || want[1] !== b.digest[1] || a.lineage !== b.lineage) {
        return `partition ${p}: replicas disagree (${a.lineage}/${a.seq} vs ${b.lineage}/${b.seq})`;
      }
    }
  }
  return null;
}

/** The replicas (primary first) of `key`'s partition in the table of the first live member (n0 while it lives). */
export function replicasOf(h: GridHarness, key: string): readonly string[] {
  return h.live()[0].grid.partitions.table.replicas[partitionOf(key, h.config.partitionCount)];
}

/** A live member that holds no replica of `key`'s partition (neither its primary nor a backup). */
export function bystanderOf(h: GridHarness, key: string) {
  const replicas = replicasOf(h, key);
  return h.live().find((m) => !replicas.includes(m.id))!;
}

/**
 * Puts `count` entries `k<i>` → `value-<i>-xxx…` (`pad` x's: values big enough that a
 * partition's snapshot takes several chunks) into map "m" through member `via`.
 * @returns the entries
 */
export async function putPadded(
  h: GridHarness,
  via: string,
  count: number,
  pad: number,
): Promise<Array<[string, string]>> {
  const entries: Array<[string, string]> = Array.from(
    { length: count },
    (_, i) => [`k${i}`, `value-${i}-${"x".repeat(pad)}`],
  );
  await h.until(h.members.get(via)!.grid.getMap<string, string>("m").putAll(entries));
  return entries;
}

/** Whether every partition is fully replicated and `via`'s summary shows `owners` members owning partitions. */
export function migratedTo(h: GridHarness, owners: number, via = "a"): boolean {
  return incompleteReplication(h, h.config.partitionCount) === null &&
    Object.keys(h.members.get(via)!.grid.partitionSummary().owners).length === owners;
}

/** A harness with `n` data members n0…n{n-1} over `partitionCount` partitions, run 3 s so the table settles. */
export async function startGrid(
  n: number,
  partitionCount: number,
  opts: GridHarnessOptions = {},
): Promise<GridHarness> {
  const h = new GridHarness({ ...opts, config: { partitionCount, ...opts.config } });
  for (let i = 0; i < n; i++) await h.add(`n${i}`);
  await h.run(3000);
  return h;
}

/** {@link startGrid} with the partition count fixed: how a test file starts its clusters. */
export function gridStarter(partitionCount: number): (n: number, opts?: GridHarnessOptions) => Promise<GridHarness> {
  return (n, opts = {}) => startGrid(n, partitionCount, opts);
}
