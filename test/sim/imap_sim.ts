/**
 * Members of a simulated IMap cluster: real Membership plus a DataGrid per node over one
 * MemoryNetwork in virtual time. Shared by the chaos simulation and the scenario tests.
 */
import type { Membership } from "../../src/cluster/membership.ts";
import type { Clock } from "../../src/core/clock.ts";
import type { Random } from "../../src/core/random.ts";
import type { DataGridConfig } from "../../src/map/data_grid.ts";
import { DataGrid } from "../../src/map/data_grid.ts";
import { simMembership } from "../../src/sim/cluster_sim.ts";
import { Simulation, type SimulationOptions } from "../../src/sim/simulation.ts";
import type { NodeId } from "../../src/transport/transport.ts";
import type { MemoryTransport } from "../../src/transport/memory.ts";
import { partitionOfBytes } from "../../src/partition/partition_of.ts";
import { encodeValue } from "../../src/wire/codec.ts";
import { History } from "../support/history_checker.ts";

export interface ImapSimNode {
  id: NodeId;
  m: Membership;
  grid: DataGrid;
  /** This node's clock: stalled with the node (timers set on it wait for the stall's end). */
  clock: Clock;
  /** This node's transport (a test may wrap its `send` to lose chosen messages). */
  transport: MemoryTransport;
  alive: boolean;
  stop(): void;
}

export interface ImapSimOptions extends SimulationOptions {
  grid: Partial<DataGridConfig> & { partitionCount: number };
  /** Whether the node with this id is a lite member (holds no data). @default none is */
  isLite?: (id: NodeId) => boolean;
  /** Called for every node built (subscribe to events, install error hooks). */
  onNode?: (n: ImapSimNode, handlerError: (kind: number, err: unknown) => void) => void;
  /** Collects handler errors of every node. */
  problems?: string[];
}

/** A simulation whose nodes are IMap members of cluster "sim". */
export function imapSimulation(opts: ImapSimOptions): Simulation<ImapSimNode> {
  return new Simulation<ImapSimNode>(opts, (ctx) => {
    const lite = opts.isLite?.(ctx.id) ?? false;
    const m = simMembership(ctx, { lite });
    const grid = new DataGrid({
      self: ctx.id,
      view: m,
      transport: ctx.transport,
      router: ctx.router,
      clock: ctx.clock,
      rng: ctx.rng.fork(),
      log: ctx.log,
      config: { backupCount: 1, asyncBackupCount: 0, lite, ...opts.grid },
    });
    ctx.router.onHandlerError = (kind, err) =>
      opts.problems?.push(`handler error in ${kind} on ${ctx.id}: ${String((err as Error)?.stack ?? err)}`);
    const node: ImapSimNode = {
      id: ctx.id,
      m,
      grid,
      clock: ctx.clock,
      transport: ctx.transport,
      alive: true,
      stop() {
        node.alive = false;
        grid.stop();
        m.stop();
      },
    };
    opts.onNode?.(node, (kind, err) => opts.problems?.push(`handler error in ${kind} on ${ctx.id}: ${String(err)}`));
    return node;
  });
}

/** An IMap simulation with `n` members started (the first alone, the others joining it) and settled with full replicas. */
export async function formedImapSimulation(opts: ImapSimOptions, n: number): Promise<Simulation<ImapSimNode>> {
  const sim = imapSimulation(opts);
  const first = sim.spawn();
  void first.m.start([]);
  for (let i = 1; i < n; i++) void sim.spawn().m.start([first.id]);
  await sim.until(() => fullReplicas(sim.liveNodes()), 60_000, 50, () => "cluster did not form");
  return sim;
}

/** Whether every given member sees exactly these members, one master, and a full table with no migration. */
export function fullReplicas(nodes: ImapSimNode[]): boolean {
  if (nodes.length === 0) return false;
  const ids = nodes.map((n) => n.id).sort().join(",");
  const master = nodes[0].m.master();
  return nodes.every((n) => {
    const s = n.grid.partitionSummary();
    return n.m.master() === master && n.m.members().map((x) => x.id).sort().join(",") === ids &&
      n.grid.partitions.table.version > 0 &&
      s.replicasMissing === 0 && s.migrating === 0;
  });
}

/**
 * For the history checker's invariant-10 assertion (see checkAckCopies): how many of `nodes`
 * hold the write that set `key` of `map` to `value`, and how many copies it
 * needed, min(backupCount + 1, data members in the master's view) with the map's own
 * backupCount (its map config's, else the node's; `backupCount` overrides it); `copies` is undefined when the
 * write is in no copy's recent log (not measured). Call it when the write's
 * acknowledgement reaches the client. The write is found in the recent log of any copy by
 * its (unique) value, then counted on every copy holding its dedupe record.
 */
export function ackCopies(
  nodes: ImapSimNode[],
  map: string,
  key: unknown,
  value: unknown,
  backupCount: number | undefined,
  /** Members whose master's view decides the copies needed. @default nodes */
  viewers: ImapSimNode[] = nodes,
): { copies: number | undefined; needed: number } {
  backupCount ??= nodes[0].grid.maps.backupCountsOf(map).backupCount;
  const k = encodeValue(key), v = encodeValue(value);
  const p = partitionOfBytes(k, nodes[0].grid.partitions.config.partitionCount);
  let call: string | undefined;
  for (const n of nodes) if ((call = n.grid.maps.debugCallOf(p, map, k, v)) !== undefined) break;
  // Not in any recent log (a retry answered from a dedupe record that arrived in a snapshot,
  // whose copies keep no log): not measured.
  const copies = call === undefined ? undefined : nodes.filter((n) => n.grid.maps.debugHoldsCall(p, call!)).length;
  return { copies, needed: copiesNeeded(viewers.length > 0 ? viewers : nodes, backupCount) };
}

/**
 * min(backupCount + 1, data members in the master's view). A write's acknowledgement may
 * reach its client in the same instant as a new member reaches the view, so the simulations
 * hold a write to the smaller of this figure at its invocation and at its acknowledgement.
 */
export function copiesNeeded(viewers: ImapSimNode[], backupCount: number): number {
  const master = viewers.find((n) => n.m.isMaster()) ?? viewers[0];
  const data = master ? master.m.members().filter((m) => !m.lite).length : 1;
  return Math.min(backupCount + 1, Math.max(1, data));
}

export interface SimLoadOptions {
  /** The map the clients use. */
  map: string;
  /** Keys `k0` … `k<keys - 1>`, unless `keyNames` is given. */
  keys: number;
  /** The keys to use instead of `k0` …, drawn the same way. @default none */
  keyNames?: string[];
  /** A draw below `put` is a put, below `get` a get, else a remove. */
  mix: { put: number; get: number };
  /** Pause after each operation: a random whole number of ms below this. */
  pauseMs: number;
  /** Extra pause after a failed operation. @default 0 */
  failurePauseMs?: number;
  /**
   * Hand each request to the member through its own (stallable) event loop, as a REST
   * request waits in the socket of a stopped process. @default false
   */
  throughEventLoop?: boolean;
  /** Half of the puts carry this time to live (the history checker models their expiry). @default none */
  ttlMs?: number;
  /** Called with every outcome: the error, or undefined on success. */
  onOutcome?: (node: ImapSimNode, kind: "put" | "get" | "remove", err: unknown) => void;
  /**
   * Whether an error means the operation surely did not run (recorded as refused, not as
   * failed). @default never
   */
  refused?: (err: unknown) => boolean;
  /**
   * Record, for every acknowledged put, the copies holding it and the copies it needed
   * (invariant 10, see checkAckCopies): every member ever spawned counts (crashed ones frozen
   * as they were), and `viewers` (the live members) decide the copies needed, with the
   * map's own backupCount unless `backupCount` is given.
   */
  copies?: { backupCount?: number; viewers: () => ImapSimNode[]; unmeasured?: () => void };
}

/**
 * Clients recording a history of put / get / remove, one per member started, each looping
 * until {@link SimLoad.stop}. Draws from `rng` in a fixed order per operation, so a seed
 * replays the same load.
 */
export class SimLoad {
  readonly history = new History();
  #writing = true;
  #seq = 0;
  #clients: Promise<void>[] = [];

  constructor(readonly sim: Simulation<ImapSimNode>, readonly rng: Random, readonly o: SimLoadOptions) {}

  /** Starts a client on `node`. */
  start(node: ImapSimNode, mix: SimLoadOptions["mix"] = this.o.mix): void {
    this.#clients.push(this.#client(node, mix));
  }

  /** Stops issuing operations; resolves once every client's last operation settled (time must run). */
  stop(): Promise<void> {
    this.#writing = false;
    return Promise.all(this.#clients).then(() => {});
  }

  async #client(node: ImapSimNode, mix: SimLoadOptions["mix"]): Promise<void> {
    const { sim, rng, o } = this;
    const sleep = (ms: number) => new Promise<void>((r) => sim.clock.setTimer(ms, r));
    const map = node.grid.getMap<string, string>(o.map);
    while (this.#writing && node.alive) {
      const key = o.keyNames ? o.keyNames[rng.int(o.keyNames.length)] : `k${rng.int(o.keys)}`;
      const r = rng.next();
      const kind = r < mix.put ? "put" : r < mix.get ? "get" : "remove";
      const value = kind === "put" ? `${node.id}-${this.#seq++}` : undefined;
      // Drawn only when TTLs are asked for, so runs without them replay as before.
      const ttlMs = kind === "put" && o.ttlMs && this.rng.next() < 0.5 ? o.ttlMs : undefined;
      const op = this.history.invoke(key, kind, sim.clock.now(), value, node.id, ttlMs);
      const neededAtInvoke = o.copies
        ? copiesNeeded(o.copies.viewers(), o.copies.backupCount ?? node.grid.maps.backupCountsOf(o.map).backupCount)
        : 0;
      const call = () =>
        kind === "put"
          ? map.put(key, value!, ttlMs !== undefined ? { ttlMs } : undefined)
          : kind === "get"
          ? map.get(key)
          : map.remove(key);
      let err: unknown = undefined;
      try {
        const res = o.throughEventLoop
          ? await new Promise<string | undefined>((resolve, reject) =>
            node.clock.setTimer(0, () => call().then(resolve, reject))
          )
          : await call();
        this.history.ok(op, sim.clock.now(), res);
        if (kind === "put" && o.copies) {
          const c = ackCopies([...sim.all().values()], o.map, key, value, o.copies.backupCount, o.copies.viewers());
          if (c.copies !== undefined) this.history.copies(op, c.copies, Math.min(neededAtInvoke, c.needed));
          else o.copies.unmeasured?.();
        }
      } catch (e) {
        err = e ?? new Error("failed");
        if (o.refused?.(err)) this.history.refused(op);
        else this.history.fail(op);
      }
      o.onOutcome?.(node, kind, err);
      if (err !== undefined && o.failurePauseMs) await sleep(o.failurePauseMs);
      await sleep(rng.int(o.pauseMs));
    }
  }
}

/**
 * Runs virtual time until `p` settles (checking every `stepMs`, for at most 60 s).
 * @param stepMs virtual ms between two checks @default 5
 * @returns what `p` resolves to; rejects as it does
 */
export async function settle<T>(sim: Simulation<ImapSimNode>, p: Promise<T>, stepMs = 5): Promise<T> {
  let done = false;
  const q = p.finally(() => void (done = true));
  q.catch(() => {});
  await sim.until(() => done, 60_000, stepMs);
  return q;
}

/** Runs until every given member sees one cluster of exactly them with full replicas and no merge left to do. */
export function untilHealed(sim: Simulation<ImapSimNode>, nodes: ImapSimNode[], timeoutMs = 120_000): Promise<number> {
  return sim.until(
    () => fullReplicas(nodes) && nodes.every((n) => n.grid.merge.idle),
    timeoutMs,
    50,
    () => "no single cluster with full replicas after the heal",
  );
}
