/**
 * A cluster forming under writes, with one member crashed at a chosen moment of the
 * formation (issue 11): member a starts alone (optionally holding `preload` entries), b and
 * c join it, and clients write and read from the moment a second data member is in the
 * master's view — from then on every write needs two copies. `crashAtMs` after b started,
 * member `victim` (0 = a, the master; 1 = b; 2 = c) is killed: before, during or after the
 * joins, the backups created in place, their snapshots and the migrations that balance the
 * table. Afterwards the two survivors must hold full, agreeing replicas and the history must
 * show every write acknowledged by min(backupCount + 1, data members) copies, none lost, and
 * each key linearizable.
 */
import type { MapServiceConfig } from "../../src/map/map_context.ts";
import { checkAckCopies, checkLinearizable, checkNoLostWrites, History } from "../support/history_checker.ts";
import { replicationComplete } from "./imap_chaos.ts";
import type { Simulation } from "../../src/sim/simulation.ts";
import { ackCopies, copiesNeeded, type ImapSimNode, imapSimulation } from "./imap_sim.ts";

export interface FormationOptions {
  seed: number;
  /** Virtual ms after b started when the victim is killed. */
  crashAtMs: number;
  /** 0 = a (the first member and master), 1 = b, 2 = c. */
  victim: 0 | 1 | 2;
  /** Entries a holds before anyone joins. @default 0 */
  preload?: number;
  /** @default 271 */
  partitionCount?: number;
  /** Map-service settings of every member (e.g. slower snapshots, so backups fill for longer). */
  map?: MapServiceConfig;
}

export interface FormationResult {
  problems: string[];
  ackedWrites: number;
  /** Acknowledged puts whose copies could not be counted (in no copy's recent log). */
  unmeasured: number;
  /** Partitions the survivors counted as lost with the victim (only preloaded data may be). */
  dataLoss: number;
  /** Writes the members held aside from fill streams (fill_stream.ts). */
  streamed: number;
  /** Filling backups that held nothing yet the master moved to another member (PartitionService fillsMoved). */
  fillsMoved: number;
}

const MAP = "formation";

/**
 * The simulation a formation scenario runs in: backup 1, 5 ms ticks, calls retried after
 * 400 ms, links of 0.3 ± 0.7 ms unless `link` says otherwise.
 */
export function formationSimulation(
  seed: number,
  partitionCount: number,
  problems: string[],
  map?: MapServiceConfig,
  link = { delayMs: 0.3, jitterMs: 0.7 },
): Simulation<ImapSimNode> {
  return imapSimulation({
    seed,
    link,
    tickMs: 5,
    grid: {
      partitionCount,
      backupCount: 1,
      invoke: { attemptTimeoutMs: 400, callTimeoutMs: 15_000 },
      ...(map ? { map } : {}),
    },
    problems,
  });
}

export async function runFormation(o: FormationOptions): Promise<FormationResult> {
  const P = o.partitionCount ?? 271;
  const problems: string[] = [];
  const sim = formationSimulation(o.seed, P, problems, o.map);
  const rng = sim.rng.fork();
  const a = sim.spawn();
  void a.m.start([]);
  await sim.until(() => a.m.joined && a.grid.partitions.table.version > 0, 10_000, 5);
  if (o.preload) {
    const pre = a.grid.getMap<string, string>(MAP);
    let done = 0;
    for (let i = 0; i < o.preload; i++) void pre.set(`pre${i}`, `v${i}`).finally(() => done++);
    await sim.until(() => done === o.preload, 60_000, 5);
  }

  const t0 = sim.clock.now();
  const b = sim.spawn();
  void b.m.start([a.id]).catch(() => {});
  let c: ImapSimNode | undefined;
  sim.clock.setTimer(rng.int(100), () => {
    c = sim.spawn();
    // c knows b too: a crash of a during c's join must not leave c on its own.
    void c.m.start([a.id, b.id]).catch(() => {});
  });
  const nodes = () => [a, b, ...(c ? [c] : [])];
  const victim = () => nodes()[o.victim];
  let crashed: ImapSimNode | undefined;
  sim.clock.setTimer(o.crashAtMs, () => {
    crashed = victim();
    if (crashed) sim.crash(crashed.id);
  });

  // Clients start once the master lists a second data member: from then on two copies are needed.
  await sim.until(() => a.m.members().length >= 2 || !a.alive, 10_000, 1);
  const history = new History();
  let writing = true;
  let seq = 0;
  let acked = 0;
  let unmeasured = 0;
  const sleep = (ms: number) => new Promise<void>((r) => sim.clock.setTimer(ms, r));
  const live = () => nodes().filter((n) => n.alive && !sim.isCrashed(n.id));
  const client = async (i: number) => {
    while (writing) {
      const via = live().filter((n) => n.m.joined);
      if (via.length === 0) {
        await sleep(10);
        continue;
      }
      const node = via[(i + seq) % via.length];
      const map = node.grid.getMap<string, string>(MAP);
      const key = `k${rng.int(6)}`;
      const r = rng.next();
      const kind = r < 0.6 ? "put" : r < 0.9 ? "get" : "remove";
      const value = kind === "put" ? `${node.id}-${seq++}` : undefined;
      const op = history.invoke(key, kind, sim.clock.now(), value, node.id);
      const neededAtInvoke = copiesNeeded(live(), 1);
      try {
        const res = kind === "put"
          ? await map.put(key, value!)
          : kind === "get"
          ? await map.get(key)
          : await map.remove(key);
        history.ok(op, sim.clock.now(), res);
        if (kind === "put") {
          // Every member counts, crashed ones too (frozen as they were): one that held the
          // write when it was acknowledged may have died before the answer reached the client.
          const cp = ackCopies(nodes(), MAP, key, value, 1, live());
          if (cp.copies !== undefined) history.copies(op, cp.copies, Math.min(neededAtInvoke, cp.needed));
          else unmeasured++;
        }
        if (kind !== "get") acked++;
      } catch {
        history.fail(op);
      }
      await sleep(rng.int(10));
    }
  };
  const clients = [0, 1, 2, 3].map(client);
  await sim.run(Math.max(0, t0 + o.crashAtMs - sim.clock.now()) + 2_000);
  writing = false;
  let drained = false;
  void Promise.all(clients).then(() => (drained = true));
  await sim.until(() => drained, 30_000, 10).catch(() => problems.push("clients did not finish"));

  const survivors = live();
  await sim.until(() => replicationComplete(survivors, P, 1) === null, 60_000, 20).catch(() =>
    problems.push(
      `replicas incomplete after the crash of ${crashed?.id}: ${replicationComplete(survivors, P, 1)}; views: ${
        survivors.map((n) =>
          `${n.id}${n.m.joined ? "" : " (not joined)"}: master ${n.m.master()}, members ${
            n.m.members().map((m) => m.id).join(",")
          }, table ${n.grid.partitions.table.version}`
        ).join(" / ")
      }`,
    )
  );
  const reader = survivors[0].grid.getMap<string, string>(MAP);
  for (const key of history.keys()) {
    const op = history.invoke(key, "get", sim.clock.now());
    let done = false;
    reader.get(key).then(
      (v) => (history.ok(op, sim.clock.now(), v), (done = true)),
      () => (history.fail(op), (done = true), problems.push(`final read of ${key} failed`)),
    );
    await sim.until(() => done, 30_000, 5);
  }
  problems.push(...checkAckCopies(history).problems);
  problems.push(...checkNoLostWrites(history).problems);
  problems.push(...checkLinearizable(history).problems);
  const dataLoss = survivors.reduce((n, x) => n + x.grid.maps.counters.dataLoss, 0);
  const streamed = nodes().reduce((n, x) => n + x.grid.maps.counters.fillStreamOps, 0);
  const fillsMoved = nodes().reduce((n, x) => n + x.grid.partitions.stats.fillsMoved, 0);
  for (const n of survivors) n.stop();
  return { problems, ackedWrites: acked, unmeasured, dataLoss, streamed, fillsMoved };
}
