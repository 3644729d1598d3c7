/**
 * The IMap chaos simulation: 5–7 members (real Membership over a MemoryNetwork in virtual
 * time, 5 % loss) with random crashes (never more than `backupCount` before re-replication
 * completes), restarts under new ids, joins, and clients writing and reading throughout.
 * Every step checks the replica invariants; at the end every partition must be back to full
 * replica count with agreeing replicas, and the recorded history must show no lost
 * acknowledged write and be linearizable per key.
 */
import type { EntryEvent, GapEvent } from "../../src/map/entry_events.ts";
import type { MapsConfig } from "../../src/map/map_config.ts";
import type { ReplicaDebug } from "../../src/map/map_service.ts";
import type { NodeId } from "../../src/transport/transport.ts";
import { checkAckCopies, checkLinearizable, checkNoLostWrites, type History } from "../support/history_checker.ts";
import { type ImapSimNode, imapSimulation, SimLoad } from "./imap_sim.ts";

export interface ChaosOptions {
  seed: number;
  /** @default 31 */
  partitionCount?: number;
  /** The chaos map's backups, and the most crashes before re-replication. @default 1 */
  backupCount?: number;
  /** Per-map settings of every member (e.g. other maps with more backups than the chaos map). @default none */
  maps?: MapsConfig;
  /** Virtual time of chaos (crashes, joins, writes). @default 15000 */
  chaosMs?: number;
  /** @default 0.05 */
  loss?: number;
  /** Keys the clients use. @default 8 */
  keys?: number;
  /** Round-trip every message through the frame codec. @default every tenth seed */
  encode?: boolean;
  /** Print table and replica changes of this partition (debugging). */
  tracePartition?: number;
  /** Print a line per event. @default false */
  verbose?: boolean;
  /**
   * Half of the puts carry this time to live; the history checker models their expiry
   * (history_checker.ts). @default none
   */
  ttlMs?: number;
  /**
   * Register an entry listener on the first member before the clients start (that member is
   * never crashed) and check at the end that it heard every acknowledged put exactly once,
   * in order per key, unless it was told of a gap. @default false
   */
  listen?: boolean;
  /** Node log level (debugging). @default "silent" */
  logLevel?: "debug" | "info" | "warn" | "error" | "silent";
}

export interface ChaosResult {
  seed: number;
  ok: boolean;
  problems: string[];
  stats: {
    crashes: number;
    restarts: number;
    joins: number;
    opsOk: number;
    opsFailed: number;
    ackedWrites: number;
    /** Acknowledged puts whose copies could not be counted (in no copy's recent log). */
    copiesUnmeasured: number;
    invariantChecks: number;
    /** Live nodes outside the cluster at the end (expelled by membership, not re-admitted). */
    outside: number;
    /** Live members declared dead by membership (false positives). */
    falsePositives: number;
    /** Split-brain merge events (membership merged a side back; its entries were re-applied). */
    mergeEvents: number;
    /**
     * Steps at which two members acted as master at once (membership split the cluster).
     * A split run is AP (both sides serve), so the per-key checks do not apply to it.
     */
    splitSteps: number;
    virtualMs: number;
    recoveryMs: number;
  };
}

const STEP_MS = 100;

export async function runChaos(opts: ChaosOptions): Promise<ChaosResult> {
  const P = opts.partitionCount ?? 31;
  const backupCount = opts.backupCount ?? 1;
  const chaosMs = opts.chaosMs ?? 15_000;
  const nKeys = opts.keys ?? 8;
  const problems: string[] = [];
  const stats: ChaosResult["stats"] = {
    crashes: 0,
    restarts: 0,
    joins: 0,
    opsOk: 0,
    opsFailed: 0,
    ackedWrites: 0,
    copiesUnmeasured: 0,
    invariantChecks: 0,
    falsePositives: 0,
    mergeEvents: 0,
    splitSteps: 0,
    outside: 0,
    virtualMs: 0,
    recoveryMs: 0,
  };
  const say = (s: string) => opts.verbose && console.log(`[${sim.clock.now() - t0}] ${s}`);

  // Every tenth run round-trips each message through the codec and its schema (slower).
  const encode = opts.encode ?? opts.seed % 10 === 0;
  const sim = imapSimulation({
    seed: opts.seed,
    link: { delayMs: 1, jitterMs: 1 },
    encode,
    tickMs: 10,
    logLevel: opts.logLevel,
    // Odd seeds: backups ack writes straight to the caller; even seeds: through the primary.
    grid: {
      partitionCount: P,
      backupCount,
      asyncBackupCount: 0,
      lite: false,
      invoke: { attemptTimeoutMs: 400, callTimeoutMs: 15_000 },
      map: { directBackupAcks: opts.seed % 2 === 1 },
      maps: opts.maps,
    },
    problems,
    onNode: (node) => {
      node.m.subscribe((e) => {
        if (e.type === "memberRemoved" && e.reason === "dead" && !sim.isCrashed(e.member.id)) stats.falsePositives++;
        if (e.type === "merge") stats.mergeEvents++;
      });
      if (opts.verbose) {
        node.m.subscribe((e) => {
          if (e.type === "masterChanged" || e.type === "memberRemoved") {
            console.log(
              `[${sim.clock.now() - 1_700_000_000_000}] ${node.id} ${e.type} ${
                e.type === "masterChanged" ? e.master : e.member.id
              }`,
            );
          }
        });
      }
    },
  });
  const rng = sim.rng.fork();
  const t0 = sim.clock.now();
  const alive = () => sim.liveNodes().filter((n) => n.alive);
  // Members of the cluster: live nodes the (oldest) master lists. A node membership expelled
  // and did not re-admit is outside the cluster; counted, not checked.
  const live = () => {
    const nodes = alive();
    const master = nodes.find((n) => n.m.isMaster() && n.m.joined);
    if (!master) return nodes;
    return nodes.filter((n) => master.m.member(n.id) !== undefined && n.m.master() === master.id);
  };

  // ---- form the cluster ------------------------------------------------------------------
  const first = sim.spawn();
  void first.m.start([]);
  for (let i = 1; i < 5; i++) void sim.spawn().m.start([first.id]);
  await sim.until(() => converged(live()), 30_000, 50, () => "initial membership did not converge").catch((e) =>
    problems.push(String(e))
  );
  await sim.until(
    () => replicationComplete(live(), P, backupCount) === null,
    30_000,
    50,
    () => "initial table incomplete",
  ).catch((e) => problems.push(String(e)));
  if (problems.length) return { seed: opts.seed, ok: false, problems, stats };
  sim.setLoss(opts.loss ?? 0.05);

  // ---- listener ---------------------------------------------------------------------------
  const heard: Array<EntryEvent<string, string> | GapEvent> = [];
  let listenFrom = Infinity;
  if (opts.listen) {
    let registered: boolean | null = null;
    first.grid.getMap<string, string>("chaos").addEntryListener((e) => void heard.push(e)).then(
      () => (registered = true),
      (e) => (registered = false, problems.push(`listener registration failed: ${e}`)),
    );
    while (registered === null) await sim.run(10);
    listenFrom = sim.clock.now();
  }

  // ---- clients ----------------------------------------------------------------------------
  const load = new SimLoad(sim, rng, {
    map: "chaos",
    keys: nKeys,
    mix: { put: 0.5, get: 0.85 },
    pauseMs: 40,
    ttlMs: opts.ttlMs,
    copies: { backupCount, viewers: () => live(), unmeasured: () => void stats.copiesUnmeasured++ },
    onOutcome: (_node, kind, err) => {
      if (err !== undefined) return void stats.opsFailed++;
      stats.opsOk++;
      if (kind !== "get") stats.ackedWrites++;
    },
  });
  const history = load.history;
  const startClient = (node: ImapSimNode) => load.start(node);
  for (const n of live()) startClient(n);

  // ---- chaos ------------------------------------------------------------------------------
  let crashesSinceFull = 0;
  const crashed: NodeId[] = [];
  const spawnJoining = () => {
    const seeds = live().map((n) => n.id);
    const n = sim.spawn();
    void n.m.start(seeds).then(() => startClient(n), () => {});
    return n;
  };
  const chaosEnd = sim.clock.now() + chaosMs;
  let nextAction = sim.clock.now() + 1000;
  let lastTrace = "";
  const trace = () => {
    if (opts.tracePartition === undefined) return;
    const p = opts.tracePartition;
    const parts: string[] = [];
    for (const n of live()) {
      const t = n.grid.partitions.table;
      const r = n.grid.maps.debugReplicas().find((x) => x.p === p);
      parts.push(
        `${n.id}:v${t.version}[${t.replicas[p].join(",")}]e${t.epochs[p]}${
          r
            ? (r.primary ? " PRIM" : " rep") + ` l${r.lineage} s${r.seq}` + (r.level ? ` L${r.level}` : "") +
              (r.followers
                ? " f=" + r.followers.map((f) => `${f.id}/${f.role}/${f.confirmed ? "c" : "u"}${f.acked}`).join(";")
                : "")
            : ""
        }`,
      );
    }
    const line = parts.join(" | ");
    if (line !== lastTrace) say(line);
    lastTrace = line;
  };
  while (sim.clock.now() < chaosEnd) {
    await sim.run(STEP_MS);
    trace();
    checkInvariants(alive(), P, problems);
    stats.invariantChecks++;
    if (alive().filter((n) => n.grid.partitions.masterActive).length > 1) stats.splitSteps++;
    if (replicationComplete(live(), P, backupCount) === null) crashesSinceFull = 0;
    if (sim.clock.now() < nextAction) continue;
    nextAction = sim.clock.now() + 500 + rng.int(1500);
    const n = live().length;
    const r = rng.next();
    if (r < 0.4 && crashesSinceFull < backupCount && n > 4) {
      const victim = rng.pick(opts.listen ? live().filter((x) => x !== first) : live());
      say(`crash ${victim.id}${victim.m.isMaster() ? " (master)" : ""}`);
      sim.crash(victim.id);
      crashed.push(victim.id);
      crashesSinceFull++;
      stats.crashes++;
    } else if (r < 0.7 && crashed.length > 0 && n < 7) {
      crashed.shift();
      const nn = spawnJoining();
      say(`restart as ${nn.id}`);
      stats.restarts++;
    } else if (r < 0.85 && n < 7) {
      const nn = spawnJoining();
      say(`join ${nn.id}`);
      stats.joins++;
    }
    if (problems.length > 20) break;
  }

  // ---- drain and recover ------------------------------------------------------------------
  const drainStart = sim.clock.now();
  let drained = false;
  void load.stop().then(() => void (drained = true));
  while (!drained && sim.clock.now() - drainStart < 30_000) {
    await sim.run(STEP_MS);
    checkInvariants(alive(), P, problems);
    stats.invariantChecks++;
    if (alive().filter((n) => n.grid.partitions.masterActive).length > 1) stats.splitSteps++;
  }
  if (!drained) problems.push("clients did not finish within 30 s after chaos");
  const recStart = sim.clock.now();
  let why: string | null = "not checked";
  while (sim.clock.now() - recStart < 60_000) {
    await sim.run(STEP_MS);
    checkInvariants(alive(), P, problems);
    stats.invariantChecks++;
    if (alive().filter((n) => n.grid.partitions.masterActive).length > 1) stats.splitSteps++;
    trace();
    why = replicationComplete(live(), P, backupCount);
    if (why === null && converged(live())) break;
  }
  stats.recoveryMs = sim.clock.now() - recStart;
  stats.outside = alive().length - live().length;
  if (why !== null) {
    const views = live().map((n) =>
      `${n.id}: master ${n.m.master()} members ${
        n.m.members().map((x) => x.id).join(",")
      } table v${n.grid.partitions.table.version}${n.grid.partitions.masterActive ? " (active master)" : ""}`
    );
    problems.push(`replicas not back to full count and agreeing 60 s after chaos: ${why}; views: ${views.join(" / ")}`);
  }

  // ---- final reads and history checks ------------------------------------------------------
  const reader = live()[0].grid.getMap<string, string>("chaos");
  for (let k = 0; k < nKeys; k++) {
    const key = `k${k}`;
    const op = history.invoke(key, "get", sim.clock.now());
    const p = reader.get(key);
    let done = false;
    p.then(
      (v) => (history.ok(op, sim.clock.now(), v), (done = true)),
      () => (history.fail(op), (done = true), problems.push(`final read of ${key} failed`)),
    );
    while (!done) await sim.run(10);
  }
  if (opts.listen && !splitRun(stats) && live().includes(first)) {
    await sim.run(3000); // the listener's last polls
    problems.push(...checkListener(history, heard, listenFrom));
  }
  // Epochs and lineages are unique even across concurrent masters, so the replica invariants
  // hold in every run; the per-key history checks only in runs without a split.
  const lost = checkNoLostWrites(history);
  const lin = checkLinearizable(history);
  if (!splitRun(stats)) {
    problems.push(...lost.problems);
    problems.push(...lin.problems);
    problems.push(...checkAckCopies(history).problems);
  }
  if (opts.verbose && !lin.ok) {
    for (const k of history.keys()) {
      if (!lin.problems.some((x) => x.startsWith(`key ${k}:`))) continue;
      for (const o of history.ops.filter((o) => o.key === k)) {
        console.log(JSON.stringify({ ...o, invokeAt: o.invokeAt - t0, endAt: o.endAt - t0 }));
      }
    }
  }
  stats.virtualMs = sim.clock.now() - t0;
  for (const n of alive()) n.stop();
  return { seed: opts.seed, ok: problems.length === 0, problems, stats };
}

/**
 * What a listener registered at `from` heard, against the history: every put acknowledged
 * and invoked after `from` has its event (unless a gap was reported for that key's
 * partition), no event twice, and per key the events in write order (rising `(seq, index)`).
 */
function checkListener(history: History, heard: Array<EntryEvent<string, string> | GapEvent>, from: number): string[] {
  const problems: string[] = [];
  const gapped = new Set(heard.filter((e) => e.type === "gap").map((e) => e.partition));
  const seen = new Set<string>();
  const lastByKey = new Map<string, [number, number]>();
  const values = new Set<string>();
  for (const e of heard) {
    if (e.type === "gap") continue;
    // The chaos workload never clears a map.
    if (e.type === "cleared") {
      problems.push(`listener heard a cleared event (${e.partition}/${e.seq}/${e.index})`);
      continue;
    }
    const id = `${e.partition}/${e.seq}/${e.index}`;
    if (seen.has(id)) problems.push(`listener heard ${id} twice`);
    seen.add(id);
    const last = lastByKey.get(e.key);
    if (last && (e.seq < last[0] || (e.seq === last[0] && e.index <= last[1]))) {
      problems.push(`listener heard key ${e.key} out of order (${e.seq}.${e.index} after ${last[0]}.${last[1]})`);
    }
    lastByKey.set(e.key, [e.seq, e.index]);
    if (e.value !== undefined) values.add(`${e.key}=${e.value}`);
  }
  let missing = 0;
  const sample: string[] = [];
  for (const o of history.ops) {
    if (o.kind !== "put" || o.status !== "ok" || o.invokeAt < from) continue;
    const event = heard.find((e) => e.type !== "gap" && e.key === o.key);
    if (event && gapped.has(event.partition)) continue;
    if (!values.has(`${o.key}=${o.value}`)) (missing++, sample.push(`${o.key}=${o.value}`));
  }
  if (missing > 0) problems.push(`listener missed ${missing} acknowledged puts, e.g. ${sample.slice(0, 3).join(", ")}`);
  return problems;
}

/**
 * Whether membership split the cluster during the run: two members acted as master at once,
 * or a side was merged back (merge events). Such a run is AP: per-key history checks do not
 * apply (a merge by latestUpdate can bring back a key removed on the other side).
 */
export function splitRun(stats: ChaosResult["stats"]): boolean {
  return stats.splitSteps > 0 || stats.mergeEvents > 0;
}

function converged(nodes: ImapSimNode[]): boolean {
  if (nodes.length === 0 || nodes.some((n) => !n.m.joined)) return false;
  const ids = nodes.map((n) => n.id).sort().join(",");
  const master = nodes[0].m.master();
  return nodes.every((n) => n.m.master() === master && n.m.members().map((x) => x.id).sort().join(",") === ids);
}

/**
 * Null when every partition has its full replica count on live members, the same table
 * everywhere, no migration in flight, and every replica confirmed with the primary's exact
 * sequence and digest; else the first reason it is not.
 */
export function replicationComplete(nodes: ImapSimNode[], P: number, backupCount: number): string | null {
  const master = nodes.find((n) => n.grid.partitions.masterActive);
  if (!master) return "no active master";
  const t = master.grid.partitions.table;
  if (t.migrations.size > 0) {
    return `${t.migrations.size} migrations in flight (${
      [...t.migrations].map(([p, row]) => `${p}: [${t.replicas[p].join(",")}] → [${row.join(",")}]`).join("; ")
    })`;
  }
  for (const n of nodes) {
    if (
      n.grid.partitions.table.version !== t.version
    ) return `${n.id} has table ${n.grid.partitions.table.version}, master ${t.version}`;
  }
  const byId = new Map(nodes.map((n) => [n.id, new Map(n.grid.maps.debugReplicas().map((r) => [r.p, r]))]));
  // The table's replicas: as many as the map with the most backups needs (per-map backup counts).
  const pc = master.grid.partitions.config;
  const wanted = Math.min(
    1 + Math.max(backupCount, pc.backupCount + pc.asyncBackupCount),
    nodes.filter((n) => !n.grid.partitions.config.lite).length,
  );
  for (let p = 0; p < P; p++) {
    const row = t.replicas[p];
    if (row.length !== wanted) return `partition ${p} has ${row.length}/${wanted} replicas`;
    const reps = row.map((id) => byId.get(id)?.get(p));
    if (reps.some((r) => !r)) return `partition ${p}: a replica holds no data`;
    const prim = reps[0]!;
    if (!prim.primary || prim.epoch !== t.epochs[p]) {
      return `partition ${p}: ${row[0]} is not acting primary at epoch ${t.epochs[p]}`;
    }
    for (const r of reps.slice(1)) {
      // A backup holds the maps of its level (per-map backup counts): the primary's digest of those.
      const want = prim.digests?.[r!.level] ?? prim.digest;
      if (r!.lineage !== prim.lineage || r!.seq !== prim.seq || r!.digest[0] !== want[0] || r!.digest[1] !== want[1]) {
        return `partition ${p}: a backup is at ${r!.lineage}/${r!.seq}, primary at ${prim.lineage}/${prim.seq}`;
      }
    }
  }
  return null;
}

/**
 * Checked after every step: per partition at most one live member acts as primary for any
 * epoch, and any two live replicas following the same primary's history (same lineage) at
 * the same sequence hold identical content.
 */
export function checkInvariants(nodes: ImapSimNode[], P: number, problems: string[]): void {
  const all: Array<[NodeId, ReplicaDebug]> = [];
  for (const n of nodes) for (const r of n.grid.maps.debugReplicas()) all.push([n.id, r]);
  // A replica never holds less than its primary counts as acked on the same history.
  const byNode = new Map<NodeId, Map<number, ReplicaDebug>>();
  for (const [id, r] of all) {
    let m = byNode.get(id);
    if (!m) byNode.set(id, m = new Map());
    m.set(r.p, r);
  }
  for (const [id, r] of all) {
    if (!r.primary || !r.followers) continue;
    for (const f of r.followers) {
      const fr = byNode.get(f.id)?.get(r.p);
      if (f.confirmed && fr && fr.lineage === r.lineage && fr.seq < f.acked) {
        problems.push(`partition ${r.p}: ${f.id} holds seq ${fr.seq} but acked ${f.acked} to primary ${id}`);
      }
    }
  }
  const primaries = new Map<string, NodeId>();
  const states = new Map<string, [NodeId, string]>();
  for (const [id, r] of all) {
    if (r.p >= P) problems.push(`partition ${r.p} out of range on ${id}`);
    if (r.primary) {
      const k = `${r.p}@${r.epoch}`;
      const other = primaries.get(k);
      if (other) problems.push(`partition ${r.p} has two primaries at epoch ${r.epoch}: ${other} and ${id}`);
      primaries.set(k, id);
    }
    if (r.lineage < 0) continue;
    const k = `${r.p}@${r.lineage}#${r.seq}/${r.level}`;
    const d = `${r.digest[0]}:${r.digest[1]}`;
    const seen = states.get(k);
    if (seen && seen[1] !== d) {
      problems.push(`partition ${r.p}: ${seen[0]} and ${id} disagree at lineage ${r.lineage} seq ${r.seq}`);
    } else if (!seen) states.set(k, [id, d]);
  }
}
