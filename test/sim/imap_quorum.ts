/**
 * Split-brain protection in the simulator: 5 IMap members (real Membership, DataGrid)
 * with `minClusterSize` 3, clients on every member recording a history of put / get /
 * remove on a few hot keys, and one fault: a crash, a pause of the master past failure
 * detection (its event loop stalls; the requests sent to it meanwhile are read after), or a
 * 3 + 2 network split that heals. The history must stay linearizable per key with no lost
 * acknowledged write, and the minority (or the paused member) must refuse with `QUORUM`.
 */
import { ShoalError } from "../../src/core/errors.ts";
import { Random } from "../../src/core/random.ts";
import type { DataGridConfig } from "../../src/map/data_grid.ts";
import type { MergePolicyName } from "../../src/map/merge_policy.ts";
import type { Simulation } from "../../src/sim/simulation.ts";
import { checkKeyLinearizable, checkLinearizable, checkNoLostWrites } from "../support/history_checker.ts";
import { fullReplicas, type ImapSimNode, imapSimulation, settle, SimLoad, untilHealed } from "./imap_sim.ts";

/** `pause`: the master's event loop stalls past failure detection; `pauseMember`: another member's does. */
export type Fault = "crash" | "pause" | "pauseMember" | "split";

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

export async function runQuorumScenario(o: QuorumRunOptions): Promise<QuorumRunResult> {
  const problems: string[] = [];
  const minClusterSize = o.minClusterSize ?? 3;
  const leaseMs = o.leaseMs ?? 1000;
  const sim = quorumSimulation(o.seed, problems, {
    backupCount: o.fault === "split" ? 2 : 1,
    minClusterSize,
    leaseMs,
    mergePolicy: o.mergePolicy,
  });
  const rng = new Random(o.seed ^ 0x5eed);
  const first = sim.spawn();
  void first.m.start([]);
  for (let i = 0; i < (o.members ?? 5) - 1; i++) void sim.spawn().m.start([first.id]);
  await sim.until(() => fullReplicas(sim.liveNodes()), 60_000, 50, () => "cluster did not form");
  await sim.run(2 * leaseMs);

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
  const history = load.history;
  const nodes = sim.liveNodes();
  for (const n of nodes) load.start(n);
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
    const A = age.slice(0, 3), B = age.slice(3);
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
    const all = [...A, ...B];
    await untilHealed(sim, all);
    await sim.run(2 * leaseMs);
    for (const n of B) {
      const m = n.grid.getMap<string, string>("q");
      for (const [name, call] of [["get", () => m.get("k0")], ["size", () => m.size()]] as const) {
        const answer = await settled(sim, call());
        if (answer !== "ok") result.afterHealFailures.push(`${n.id} ${name}: ${answer}`);
      }
    }
  }
  if (o.verbose) console.log("stopping clients");
  let clientsDone = false;
  void load.stop().then(() => void (clientsDone = true));
  await sim.until(() => sim.liveNodes().every((n) => n.grid.invoker.pendingCalls === 0), 60_000, 50);
  await sim.until(() => clientsDone, 60_000, 10, () => "clients did not stop");

  // Final reads through a member of the (largest) cluster.
  const live = sim.liveNodes().filter((n) => n.alive);
  await sim.until(() => fullReplicas(live), 60_000, 50, () => "no single cluster at the end");
  await sim.run(2 * leaseMs);
  const reader = live[0].grid.getMap<string, string>("q");
  for (let k = 0; k < nKeys; k++) {
    const key = `k${k}`;
    const op = history.invoke(key, "get", sim.clock.now(), undefined, live[0].id);
    try {
      history.ok(op, sim.clock.now(), await settle(sim, reader.get(key), 1));
    } catch (err) {
      history.fail(op);
      problems.push(`final read of ${key} failed: ${String(err)}`);
    }
  }
  if (o.verbose) console.log("checking", history.ops.length, "ops");
  result.violations.push(...checkNoLostWrites(history).problems, ...checkLinearizable(history).problems);
  if (o.verbose) {
    for (const v of result.violations) {
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
  return result;
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
