/**
 * Members of a simulated IMap cluster: real Membership plus a DataGrid per node over one
 * MemoryNetwork in virtual time. Shared by the chaos simulation and the scenario tests.
 */
import type { Membership } from "../../src/cluster/membership.ts";
import type { DataGridConfig } from "../../src/map/data_grid.ts";
import { DataGrid } from "../../src/map/data_grid.ts";
import { simMembership } from "../../src/sim/cluster_sim.ts";
import { Simulation, type SimulationOptions } from "../../src/sim/simulation.ts";
import type { NodeId } from "../../src/transport/transport.ts";
import { partitionOfBytes } from "../../src/partition/partition_of.ts";
import { encodeValue } from "../../src/wire/codec.ts";

export interface ImapSimNode {
  id: NodeId;
  m: Membership;
  grid: DataGrid;
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
 * needed, min(backupCount + 1, data members in the master's view); `copies` is undefined when the
 * write is in no copy's recent log (not measured). Call it when the write's
 * acknowledgement reaches the client. The write is found in the recent log of any copy by
 * its (unique) value, then counted on every copy holding its dedupe record.
 */
export function ackCopies(
  nodes: ImapSimNode[],
  map: string,
  key: unknown,
  value: unknown,
  backupCount: number,
  /** Members whose master's view decides the copies needed. @default nodes */
  viewers: ImapSimNode[] = nodes,
): { copies: number | undefined; needed: number } {
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
