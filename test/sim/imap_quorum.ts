/**
 * Split-brain protection in the simulator: 5 IMap members (real Membership, DataGrid)
 * with `minClusterSize` 3, clients on every member recording a history of put / get /
 * remove on a few hot keys, and one fault: a crash, a pause of the master past failure
 * detection (its event loop stalls; the requests sent to it meanwhile are read after), or a
 * 3 + 2 network split that heals (the master on the majority side, or cut off with the
 * minority). The history must stay linearizable per key with no lost acknowledged write,
 * and the minority (or the paused member) must refuse with `QUORUM`.
 */
import { ShoalError } from "../../src/core/errors.ts";
import { Random } from "../../src/core/random.ts";
import type { DataGridConfig } from "../../src/map/data_grid.ts";
import type { MapsConfig } from "../../src/map/map_config.ts";
import { partitionOfBytes } from "../../src/partition/partition_of.ts";
import { encodeValue } from "../../src/wire/codec.ts";
import { Kind } from "../../src/wire/kinds.ts";
import type { MergePolicyName } from "../../src/map/merge_policy.ts";
import type { Simulation } from "../../src/sim/simulation.ts";
import { checkKeyLinearizable, checkLinearizable, checkNoLostWrites } from "../support/history_checker.ts";
import { fullReplicas, type ImapSimNode, imapSimulation, settle, SimLoad, untilHealed } from "./imap_sim.ts";

/**
 * `pause`: the master's event loop stalls past failure detection; `pauseMember`: another member's does;
 * `split`: the two youngest members are cut off; `splitWithMaster`: the master and the youngest are.
 */
export type Fault = "crash" | "pause" | "pauseMember" | "split" | "splitWithMaster";

export interface QuorumRunOptions {
  seed: number;
  fault: Fault;
  /** 0 turns split-brain protection off. @default 3 */
  minClusterSize?: number;
  /** @default 1000 */
  leaseMs?: number;
  /** @default 6000 */
  pauseMs?: number;
  /** How long the split lasts. @default 8000 */
  splitMs?: number;
  /** @default 6 */
  keys?: number;
  /** Pause only: the paused member handles the input held meanwhile before its overdue timers. */
  inputFirst?: boolean;
  /** Pause only: another member's event loop also stalls, `ms` long, `atMs` after the pause began (a loaded machine). */
  secondStall?: { atMs: number; ms: number };
  /** Members in the cluster (the split needs 5). @default 5 */
  members?: number;
  mergePolicy?: MergePolicyName;
  /**
   * Every `INDETERMINATE` answer a member sends to another is lost: among them the answers a
   * primary gives the calls it was serving when its side merged into the other cluster.
   */
  loseIndeterminate?: boolean;
  /** Print progress. */
  verbose?: boolean;
  /** Print every change of this partition's replicas (debugging). */
  trace?: number;
}

export interface QuorumRunResult {
  problems: string[];
  /** Per-key linearizability and lost-write findings. */
  violations: string[];
  opsOk: number;
  opsFailed: number;
  /** Operations refused with QUORUM. */
  quorumRefusals: number;
  /** The same by the member the client called (which refused, or whose call a primary refused until the deadline). */
  refusedBy: Record<string, number>;
  /** Split only: the members of the majority side. */
  majority: string[];
  /** Split only: every minority op probed after the lease time answered QUORUM (else what it answered). */
  minorityAnswers: string[];
  /** Split only: virtual ms from the cut until every minority member refused. */
  minorityRefusedAfterMs: number | null;
  /** Split only: minority ops after the heal that did not succeed. */
  afterHealFailures: string[];
  /** Split only: puts and removes called on a majority member during the split and acknowledged then. */
  splitWrites: number;
  /** Members that emitted `merge` (their side merged into the other), in order. */
  merged: string[];
  /** Retries refused because their call ids came with a merge (map counter `mergedRefused`, all members). */
  mergedRefused: number;
}

/** Makes every `INDETERMINATE` answer a live member sends to another member lost. */
export function loseIndeterminateAnswers(sim: Simulation<ImapSimNode>): void {
  for (const n of sim.liveNodes()) {
    const send = n.transport.send.bind(n.transport);
    n.transport.send = (to, msg) =>
      msg.t === Kind.InvokeResponse && (msg as { s?: unknown }).s === "INDETERMINATE" ? true : send(to, msg);
  }
}

/** The simulated IMap cluster of the split-brain scenarios: 31 partitions, sub-millisecond links, 5 ms ticks. */
export function quorumSimulation(
  seed: number,
  problems: string[],
  grid: Partial<DataGridConfig>,
): Simulation<ImapSimNode> {
  return imapSimulation({
    seed,
    link: { delayMs: 0.3, jitterMs: 0.7 },
    tickMs: 5,
    grid: { partitionCount: 31, ...grid },
    problems,
  });
}

/**
 * `members` IMap members of {@link quorumSimulation} (the first alone, the others joining
 * through it) with full replicas, then two leases of virtual time.
 */
export async function formGrid(
  o: { seed: number; members: number; grid: Partial<DataGridConfig> },
  problems: string[],
): Promise<Simulation<ImapSimNode>> {
  const sim = quorumSimulation(o.seed, problems, o.grid);
  const first = sim.spawn();
  void first.m.start([]);
  for (let i = 0; i < o.members - 1; i++) void sim.spawn().m.start([first.id]);
  await sim.until(() => fullReplicas(sim.liveNodes()), 60_000, 50, () => "cluster did not form");
  await sim.run(2 * (o.grid.leaseMs ?? 1000));
  return sim;
}

export async function runQuorumScenario(o: QuorumRunOptions): Promise<QuorumRunResult> {
  const problems: string[] = [];
  const minClusterSize = o.minClusterSize ?? 3;
  const leaseMs = o.leaseMs ?? 1000;
  const sim = await formGrid({
    seed: o.seed,
    members: o.members ?? 5,
    grid: {
      backupCount: o.fault === "split" || o.fault === "splitWithMaster" ? 2 : 1,
      minClusterSize,
      leaseMs,
      mergePolicy: o.mergePolicy,
    },
  }, problems);
  const rng = new Random(o.seed ^ 0x5eed);
  if (o.loseIndeterminate) loseIndeterminateAnswers(sim);

  const result: QuorumRunResult = {
    problems,
    violations: [],
    opsOk: 0,
    opsFailed: 0,
    quorumRefusals: 0,
    refusedBy: {},
    majority: [],
    minorityAnswers: [],
    minorityRefusedAfterMs: null,
    afterHealFailures: [],
    splitWrites: 0,
    merged: [],
    mergedRefused: 0,
  };
  const nKeys = o.keys ?? 6;
  const load = new SimLoad(sim, rng, {
    map: "q",
    keys: nKeys,
    mix: { put: 0.45, get: 0.8 },
    pauseMs: 30,
    failurePauseMs: 20,
    throughEventLoop: true,
    // QUORUM means refused before it could run (a write already sent fails INDETERMINATE instead).
    refused: (err) => err instanceof ShoalError && err.code === "QUORUM",
    onOutcome: (node, _kind, err) => {
      if (err === undefined) return void result.opsOk++;
      if (!(err instanceof ShoalError && err.code === "QUORUM")) return void result.opsFailed++;
      result.quorumRefusals++;
      result.refusedBy[node.id] = (result.refusedBy[node.id] ?? 0) + 1;
    },
  });
  const nodes = sim.liveNodes();
  for (const n of nodes) {
    load.start(n);
    n.m.subscribe((e) => void (e.type === "merge" && result.merged.push(n.id)));
  }
  await sim.run(1500);

  const age = nodes[0].m.members().map((m) => sim.node(m.id)!);
  if (o.fault === "crash") {
    const victim = age[1 + rng.int(4)];
    victim.alive = false;
    sim.crash(victim.id);
    victim.stop();
    await sim.run(8000);
  } else if (o.fault === "pause" || o.fault === "pauseMember") {
    sim.stall(age[o.fault === "pause" ? 0 : 1 + rng.int(age.length - 1)].id, o.pauseMs ?? 6000, {
      inputFirst: o.inputFirst,
    });
    const second = o.secondStall;
    if (second) {
      const other = age[1 + rng.int(age.length - 1)].id;
      sim.clock.setTimer(second.atMs, () => sim.stall(other, second.ms));
    }
    for (let i = 0; i < 14; i++) {
      if (o.trace !== undefined && i >= 5 && i < 12) {
        let last = "";
        for (let j = 0; j < 100; j++) {
          await sim.run(10);
          const line = sim.liveNodes().map((n) => {
            const t = n.grid.partitions.table;
            const r = n.grid.maps.debugReplicas().find((x) => x.p === o.trace);
            return `${n.id.slice(-1)}:${t.term % 1000}/${t.version}[${t.replicas[o.trace!].map((x) => x.slice(-1))}]${
              r ? (r.primary ? "P" : "b") + r.seq : "-"
            }${n.grid.quorum.refusal()?.reason?.[0] ?? "+"}${n.m.members().length}`;
          }).join(" ");
          if (line !== last) console.log(`${sim.clock.now() - 1_700_000_000_000} ${line}`);
          last = line;
        }
        continue;
      }
      await sim.run(1000);
      if (o.verbose) {
        console.log(
          `t+${i + 1}s ok=${result.opsOk} failed=${result.opsFailed} quorum=${result.quorumRefusals} ` +
            sim.liveNodes().map((n) =>
              `${n.id}:${n.m.members().length}/${n.grid.quorum.refusal()?.reason ?? "serving"}/m${
                n.m.master()?.slice(-1)
              }/e${n.m.masterEpoch}/j${n.m.member(n.id)?.joinedAt}/merges${n.grid.merge.stats.merges}`
            )
              .join(" "),
        );
      }
    }
  } else {
    const B = o.fault === "split" ? age.slice(3) : [age[0], age[4]];
    const A = age.filter((n) => !B.includes(n));
    result.majority = A.map((n) => n.id);
    const cutAt = sim.clock.now();
    sim.partition([A.map((n) => n.id), B.map((n) => n.id)]);
    if (minClusterSize > 0) {
      await sim.until(() => B.every((n) => n.grid.quorum.refusal() !== null), 10_000, 5);
      result.minorityRefusedAfterMs = sim.clock.now() - cutAt;
    }
    await sim.run(Math.max(0, cutAt + leaseMs + 300 - sim.clock.now()));
    // Every kind of data operation on every minority member, after the lease time.
    for (const n of B) {
      const m = n.grid.getMap<string, string>("q");
      const probes: Array<[string, () => Promise<unknown>]> = [
        ["get", () => m.get("k0")],
        ["put", () => m.put("k0", "minority")],
        ["set", () => m.set("k1", "minority")],
        ["remove", () => m.remove("k2")],
        ["delete", () => m.delete("k3")],
        ["putIfAbsent", () => m.putIfAbsent("fresh", "minority")],
        ["replace", () => m.replace("k4", "minority")],
        ["containsKey", () => m.containsKey("k5")],
        ["getAll", () => m.getAll(["k0", "k1"])],
        ["size", () => m.size()],
      ];
      for (const [name, call] of probes) {
        const started = sim.clock.now();
        const answer = await settled(sim, call());
        const tookMs = sim.clock.now() - started;
        if (answer !== "QUORUM" || tookMs > 50) {
          result.minorityAnswers.push(`${n.id} ${name}: ${answer} in ${tookMs} ms`);
        }
      }
    }
    await sim.run(Math.max(0, cutAt + (o.splitMs ?? 8000) - sim.clock.now()));
    sim.heal();
    const healAt = sim.clock.now();
    result.splitWrites = load.history.ops.filter((x) =>
      x.kind !== "get" && x.status === "ok" && x.invokeAt >= cutAt && x.endAt <= healAt &&
      result.majority.includes(x.via!)
    ).length;
    const all = [...A, ...B];
    await untilHealed(sim, all);
    await sim.run(2 * leaseMs);
    for (const n of B) {
      const m = n.grid.getMap<string, string>("q");
      for (
        const [name, call] of [["get", () =>
          m.get("k0")], ["size", () => m.size()]] as const
      ) {
        const answer = await settled(sim, call());
        if (answer !== "ok") result.afterHealFailures.push(`${n.id} ${name}: ${answer}`);
      }
    }
  }
  result.violations.push(
    ...await stopAndCheck(sim, load, Array.from({ length: nKeys }, (_, k) => `k${k}`), problems, o.verbose),
  );
  for (const n of sim.all().values()) result.mergedRefused += n.grid.maps.counters.mergedRefused;
  return result;
}

/**
 * Stops the clients, reads every key once more through a member of the (largest) cluster,
 * stops the members and checks the history: per-key linearizability and no acknowledged
 * write lost. `verbose` prints the shortest failing prefix of each violating key.
 * @returns the violations found
 */
async function stopAndCheck(
  sim: Simulation<ImapSimNode>,
  load: SimLoad,
  keys: string[],
  problems: string[],
  verbose = false,
): Promise<string[]> {
  const history = load.history;
  if (verbose) console.log("stopping clients");
  let clientsDone = false;
  void load.stop().then(() => void (clientsDone = true));
  await sim.until(() => sim.liveNodes().every((n) => n.grid.invoker.pendingCalls === 0), 60_000, 50);
  await sim.until(() => clientsDone, 60_000, 10, () => "clients did not stop");

  const live = sim.liveNodes().filter((n) => n.alive);
  await sim.until(() => fullReplicas(live), 60_000, 50, () => "no single cluster at the end");
  await sim.run(2 * (live[0].grid.quorum.leaseMs));
  const reader = live[0].grid.getMap<string, string>("q");
  for (const key of keys) {
    const op = history.invoke(key, "get", sim.clock.now(), undefined, live[0].id);
    try {
      history.ok(op, sim.clock.now(), await settle(sim, reader.get(key), 1));
    } catch (err) {
      history.fail(op);
      problems.push(`final read of ${key} failed: ${String(err)}`);
    }
  }
  if (verbose) console.log("checking", history.ops.length, "ops");
  const violations = [...checkNoLostWrites(history).problems, ...checkLinearizable(history).problems];
  if (verbose) {
    for (const v of violations) {
      const key = /key (\S+):/.exec(v)?.[1];
      const all = history.ops.filter((x) => x.key === key);
      // The shortest prefix (by invocation) that is not linearizable.
      let lo = 1, hi = all.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (checkKeyLinearizable(all.slice(0, mid))) hi = mid;
        else lo = mid + 1;
      }
      console.log(`shortest failing prefix: ${lo} of ${all.length} ops`);
      for (const op of all.slice(Math.max(0, lo - 25), lo)) {
        console.log(
          `#${op.id} ${op.kind} ${op.value ?? ""} via ${op.via} ${op.invokeAt - 1_700_000_000_000}–${
            op.endAt - 1_700_000_000_000
          } ${op.status} → ${op.result}`,
        );
      }
    }
  }
  for (const n of sim.liveNodes()) n.stop();
  return violations;
}

/** "ok" or the error code (or message) an operation settled with, letting virtual time run. */
async function settled(sim: Simulation<ImapSimNode>, p: Promise<unknown>): Promise<string> {
  try {
    await settle(sim, p, 1);
    return "ok";
  } catch (err) {
    return err instanceof ShoalError ? err.code : String(err);
  }
}

export interface CutPauseResult {
  problems: string[];
  violations: string[];
  /** Virtual ms from the start of the pause until the master removed the paused member (null: it did not). */
  removedAfterMs: number | null;
  /** How long the pause lasted. */
  pauseMs: number;
  /** Samples (every 2 ms) in which two members served one partition (both primary there, lease holding, not fenced). */
  dualServing: number;
  opsOk: number;
  /** The recorded history (for a closer look at a violation). */
  history: SimLoad["history"];
  /** Virtual time the stall began. */
  stallAt: number;
}

/**
 * A primary that still reaches a quorum but not the master: member X (neither the master
 * nor next in line) cannot send to the master (one direction of one pair cut), and its
 * event loop stalls from `pauseMs` ago. Clients on every member hammer keys whose
 * partitions X leads. Without `pauseMs`, the stall lasts past the master's verdict and
 * the scenario reports when the master removed X; the caller then replays the seed with
 * the stall ending just before that verdict: X wakes, pings the others (who still list it
 * and still hold its table, so they renew its lease), and its refutation cannot reach the
 * master directly, so the master removes it anyway and the new table promotes X's backups
 * while X's lease still holds.
 */
export async function runCutPause(o: { seed: number; pauseMs?: number; verbose?: boolean }): Promise<CutPauseResult> {
  const problems: string[] = [];
  const sim = await formGrid({
    seed: o.seed,
    members: 5,
    grid: { backupCount: 1, minClusterSize: 3, leaseMs: 1000 },
  }, problems);
  const age = sim.liveNodes()[0].m.members().map((m) => sim.node(m.id)!);
  const master = age[0], x = age[2];
  const table = master.grid.partitions.table;
  const keyNames: string[] = [];
  for (let i = 0; keyNames.length < 3 && i < 10_000; i++) {
    const p = partitionOfBytes(encodeValue(`k${i}`), table.partitionCount);
    if (table.replicas[p][0] === x.id) keyNames.push(`k${i}`);
  }
  const rng = new Random(o.seed ^ 0x5eed);
  let opsOk = 0;
  const load = new SimLoad(sim, rng, {
    map: "q",
    keys: keyNames.length,
    keyNames,
    mix: { put: 0.4, get: 0.85 },
    pauseMs: 10,
    failurePauseMs: 10,
    throughEventLoop: true,
    refused: (err) => err instanceof ShoalError && err.code === "QUORUM",
    onOutcome: (_n, _k, err) => void (err === undefined && opsOk++),
  });
  for (const n of age) load.start(n);
  // Readers on X: its one mixed client may wait on a write that cannot commit once X's backup was promoted.
  for (let i = 0; i < 3; i++) load.start(x, { put: 0, get: 1 });
  await sim.run(1500);

  sim.blockOneWay(x.id, master.id);
  const pauseMs = o.pauseMs ?? 6000;
  const stallAt = sim.clock.now();
  let removedAfterMs: number | null = null;
  const unsubscribe = master.m.subscribe((e) => {
    if (e.type === "memberRemoved" && e.member.id === x.id && removedAfterMs === null) {
      removedAfterMs = sim.clock.now() - stallAt;
    }
  });
  sim.stall(x.id, pauseMs);
  // Two members serving one partition: both lead it in their table, hold their lease and wait on no fence.
  const serving = (n: ImapSimNode, p: number) =>
    !sim.isStalled(n.id) && n.grid.partitions.table.replicas[p][0] === n.id && n.grid.quorum.refusal() === null &&
    n.grid.maps.fenceOf(p) === null &&
    n.grid.maps.debugReplicas().some((r) => r.p === p && r.primary && !r.catchingUp && !r.handingOff);
  let dualServing = 0;
  while (sim.clock.now() - stallAt < 10_000) {
    await sim.run(2);
    for (let p = 0; p < table.partitionCount; p++) {
      if (age.filter((n) => serving(n, p)).length > 1) dualServing++;
    }
  }
  unsubscribe();
  sim.blockOneWay(x.id, master.id, false);
  const violations = await stopAndCheck(sim, load, keyNames, problems, o.verbose);
  return { problems, violations, removedAfterMs, pauseMs, dualServing, opsOk, history: load.history, stallAt };
}

/** What each map's operations answered on one side of a split, per map name. */
export type AnswersByMap = Record<string, string[]>;

export interface PerMapSplitResult {
  problems: string[];
  /** `put` and `get` on every minority member, after the lease time: "ok" or the error code. */
  minority: AnswersByMap;
  /** The same on every majority member. */
  majority: AnswersByMap;
  /** The same on every member once healed. */
  afterHeal: AnswersByMap;
}

/**
 * Per-map split-brain protection: 5 members with the member-wide `minClusterSize` and per-map
 * overrides in `maps`, split 3 + 2; after the lease time every member puts and gets a key
 * of each map in `names`, and again after the heal.
 */
export async function runPerMapSplit(o: {
  seed: number;
  minClusterSize: number;
  maps: MapsConfig;
  names: string[];
}): Promise<PerMapSplitResult> {
  const problems: string[] = [];
  const sim = await formGrid({
    seed: o.seed,
    members: 5,
    grid: { backupCount: 2, minClusterSize: o.minClusterSize, maps: o.maps },
  }, problems);
  const age = sim.liveNodes()[0].m.members().map((m) => sim.node(m.id)!);
  const A = age.slice(0, 3), B = age.slice(3);
  const answers = async (nodes: ImapSimNode[], tag: string): Promise<AnswersByMap> => {
    const out: AnswersByMap = {};
    for (const name of o.names) {
      out[name] = [];
      for (const n of nodes) {
        const m = n.grid.getMap<string, string>(name);
        out[name].push(await settled(sim, m.put(`${tag}-${n.id}`, "v")), await settled(sim, m.get(`${tag}-${n.id}`)));
      }
    }
    return out;
  };
  sim.partition([A.map((n) => n.id), B.map((n) => n.id)]);
  await sim.run(1300);
  const minority = await answers(B, "split");
  const majority = await answers(A, "split");
  sim.heal();
  await untilHealed(sim, age);
  await sim.run(2000);
  const afterHeal = await answers(age, "healed");
  for (const n of sim.liveNodes()) n.stop();
  return { problems, minority, majority, afterHeal };
}
