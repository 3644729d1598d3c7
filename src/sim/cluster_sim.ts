/**
 * Membership in the simulator: a factory for simulated members and the checks that the
 * cluster tests and benches use (one view, one master, who knows about a crash).
 */
import { Membership } from "../cluster/membership.ts";
import type { MembershipConfig } from "../cluster/config.ts";
import type { ClusterEvent } from "../cluster/view.ts";
import type { NodeId } from "../transport/transport.ts";
import { SimSignaling } from "./sim_signaling.ts";
import { type SimNodeContext, Simulation, type SimulationOptions } from "./simulation.ts";

/** A simulated member: its Membership plus the events it saw. */
export interface SimMember {
  id: NodeId;
  m: Membership;
  events: ClusterEvent[];
  /** Start outcome: undefined while joining, then "ok" or the error. */
  started?: "ok" | Error;
  /** Its signaling endpoints and paths (simulations with the signaling model only). */
  signal?: SimSignaling;
  stop(): void;
}

export interface ClusterSimOptions extends SimulationOptions {
  /** Overrides for every member's membership config. */
  config?: Partial<MembershipConfig>;
  /** Keep at most this many events per member (memory bound for big runs). @default 200 */
  maxEvents?: number;
}

/** The Membership of a simulated node in cluster "sim" (extra settings override the defaults). */
export function simMembership(ctx: SimNodeContext, config: Partial<MembershipConfig> = {}): Membership {
  return new Membership({
    self: ctx.id,
    transport: ctx.transport,
    router: ctx.router,
    clock: ctx.clock,
    rng: ctx.rng,
    log: ctx.log,
    config: { cluster: "sim", secret: "sim-secret", name: ctx.id, runtime: "sim", ...config },
  });
}

/** A simulation whose nodes are members of cluster "sim". */
export function clusterSimulation(opts: ClusterSimOptions): Simulation<SimMember> {
  const maxEvents = opts.maxEvents ?? 200;
  return new Simulation<SimMember>(opts, (ctx) => {
    const m = simMembership(ctx, opts.config);
    const signal = opts.signaling ? new SimSignaling(ctx.transport.net, ctx.id, m, ctx.clock, ctx.log) : undefined;
    const node: SimMember = {
      id: ctx.id,
      m,
      events: [],
      ...(signal ? { signal } : {}),
      stop: () => {
        signal?.stop();
        m.stop();
      },
    };
    m.subscribe((e) => {
      if (node.events.length >= maxEvents) node.events.shift();
      node.events.push(e);
    });
    return node;
  });
}

/** Starts a member with the given seeds without awaiting (time must run for it to finish). */
export function startMember(n: SimMember, seeds: NodeId[]): void {
  n.m.start(seeds).then(
    () => void (n.started = "ok"),
    (e) => void (n.started = e instanceof Error ? e : new Error(String(e))),
  );
}

/**
 * Whether the given live members agree on one view: the same master, member-list version
 * and member ids, and that member set is exactly `expected` (when given).
 * @returns null when converged, else a short description of the first disagreement
 */
export function viewDisagreement(nodes: SimMember[], expected?: NodeId[]): string | null {
  if (nodes.length === 0) return null;
  const ref = nodes[0].m;
  if (!ref.joined) return `${nodes[0].id} has not joined`;
  const refIds = ref.members().map((x) => x.id).join(",");
  if (expected) {
    const want = [...expected].sort().join(",");
    const have = ref.members().map((x) => x.id).sort().join(",");
    if (want !== have) return `${nodes[0].id} sees ${ref.members().length} members, expected ${expected.length}`;
  }
  for (const n of nodes) {
    const m = n.m;
    if (!m.joined) return `${n.id} has not joined`;
    if (m.master() !== ref.master()) return `${n.id} sees master ${m.master()}, ${nodes[0].id} sees ${ref.master()}`;
    if (m.memberListVersion !== ref.memberListVersion) {
      return `${n.id} has list version ${m.memberListVersion}, ${nodes[0].id} has ${ref.memberListVersion}`;
    }
    if (m.members().map((x) => x.id).join(",") !== refIds) return `${n.id} member list differs from ${nodes[0].id}'s`;
  }
  return null;
}

/** Distinct masters among the given members. */
/**
 * A cluster of `n` members, all joined through the first one, with one agreed view and a
 * full mesh of links, then left to run 2–3 s (seeded) so timers are past their start-up.
 */
export async function formLinkedCluster(seed: number, n: number): Promise<Simulation<SimMember>> {
  const sim = clusterSimulation({ seed, encode: false, link: { delayMs: 1, jitterMs: 1 } });
  startMember(sim.spawn(), []);
  await sim.run(5);
  for (let i = 1; i < n; i++) startMember(sim.spawn(), [sim.liveIds()[0]]);
  await sim.until(() => viewDisagreement(sim.liveNodes(), sim.liveIds()) === null, 30_000, 50);
  await sim.until(() => sim.liveNodes().every((x) => x.m.links().length === n - 1), 30_000, 50);
  await sim.run(2000 + sim.rng.next() * 1000);
  return sim;
}

export function mastersOf(nodes: SimMember[]): NodeId[] {
  return [...new Set(nodes.map((n) => n.m.master()).filter((x): x is NodeId => !!x))];
}

/** Members (among `nodes`) that still list `id` as live. */
export function stillListing(nodes: SimMember[], id: NodeId): NodeId[] {
  return nodes.filter((n) => n.m.member(id) !== undefined).map((n) => n.id);
}

/**
 * Stands in for the signaling server's room listing: every `everyMs`, each live member
 * learns a few random live node ids (as node.ts feeds the room's peer list into
 * `addCandidates`), which is how separated groups find each other when no link survives.
 * @returns a function that stops it
 */
export function emulateSignalingRoom(sim: Simulation<SimMember>, everyMs = 5000, perRound = 4): () => void {
  let on = true;
  const rng = sim.rng.fork();
  const tick = () => {
    if (!on) return;
    const ids = sim.liveIds();
    for (const id of ids) {
      const n = sim.node(id)!;
      if (!n.m.joined) continue;
      n.m.addCandidates(Array.from({ length: Math.min(perRound, ids.length) }, () => rng.pick(ids)));
    }
    sim.clock.setTimer(everyMs, tick);
  };
  sim.clock.setTimer(everyMs, tick);
  return () => void (on = false);
}
