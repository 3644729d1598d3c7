/**
 * Bulk-load simulation of the partitioned IMap: data members (real Membership over a
 * MemoryNetwork in virtual time) and a lite client load several maps with large `putAll`
 * batches, round after round (each round overwrites every key with a new value), under
 * loss, event-loop stalls and a member joining mid-load (migrations while writing). Then:
 * - every key must hold the value of its last acknowledged round, or of a later round whose
 *   call failed (a failed write may or may not have taken effect); a key with an
 *   acknowledged round must not be missing (no lost and no rolled-back write);
 * - `size()` of each map must equal the number of keys present (read back with getAll), and
 *   the sum of the entries the primaries hold;
 * - every partition must be back to full replica count with agreeing replicas.
 */
import type { DataGridConfig } from "../../src/map/data_grid.ts";
import type { NodeId } from "../../src/transport/transport.ts";
import { replicationComplete } from "./imap_chaos.ts";
import { imapSimulation } from "./imap_sim.ts";

export interface BulkOptions {
  seed: number;
  /** Data members at the start. @default 3 */
  members?: number;
  /** @default 271 */
  partitionCount?: number;
  /** Maps loaded at once. @default 2 */
  maps?: number;
  /** Keys per map. @default 20000 */
  keys?: number;
  /** Entries per putAll call. @default 5000 */
  chunk?: number;
  /** putAll calls in flight per map. @default 2 */
  inFlight?: number;
  /** Rounds (each rewrites every key). @default 2 */
  rounds?: number;
  /** @default 0.05 */
  loss?: number;
  /** Stall a random member (event loop blocked) for up to this long, now and then; 0 = never. @default 1500 */
  maxStallMs?: number;
  /** A data member joins during this round (0-based); -1 = none. @default 0 */
  joinInRound?: number;
  /** Round-trip every message through the codec and schemas. @default false */
  encode?: boolean;
  /** Extra DataGrid settings. */
  grid?: Partial<DataGridConfig>;
  /** Print stalls, joins and call outcomes (debugging). @default false */
  verbose?: boolean;
  /** Log level of the nodes (debugging). @default "silent" */
  logLevel?: "debug" | "info" | "warn" | "error" | "silent";
}

export interface BulkResult {
  seed: number;
  problems: string[];
  stats: {
    ackedCalls: number;
    failedCalls: number;
    stalls: number;
    joined: boolean;
    /** Keys whose value matched their last acknowledged round. */
    checkedKeys: number;
    sizes: number[];
    virtualMs: number;
  };
}

/** Runs one seeded bulk-load scenario; `problems` is empty when every check passed. */
export async function runBulk(opts: BulkOptions): Promise<BulkResult> {
  const P = opts.partitionCount ?? 271;
  const nMaps = opts.maps ?? 2;
  const nKeys = opts.keys ?? 20_000;
  const chunk = opts.chunk ?? 5000;
  const inFlight = opts.inFlight ?? 2;
  const rounds = opts.rounds ?? 2;
  const maxStallMs = opts.maxStallMs ?? 1500;
  const joinInRound = opts.joinInRound ?? 0;
  const problems: string[] = [];
  const stats: BulkResult["stats"] = {
    ackedCalls: 0,
    failedCalls: 0,
    stalls: 0,
    joined: false,
    checkedKeys: 0,
    sizes: [],
    virtualMs: 0,
  };
  const liteIds = new Set<NodeId>();
  const sim = imapSimulation({
    seed: opts.seed,
    link: { delayMs: 0.3, jitterMs: 0.7 },
    encode: opts.encode ?? false,
    tickMs: 5,
    logLevel: opts.logLevel,
    grid: { partitionCount: P, backupCount: 1, asyncBackupCount: 0, ...opts.grid },
    isLite: (id) => liteIds.has(id),
    problems,
  });
  const rng = sim.rng.fork();
  const t0 = sim.clock.now();
  const say = (s: string) => opts.verbose && console.log(`[${(sim.clock.now() - t0).toFixed(0)}] ${s}`);
  const data = () => sim.liveNodes().filter((n) => !liteIds.has(n.id));
  const complete = () => replicationComplete(data(), P, 1);
  const waitFor = async (what: string, pred: () => boolean, timeoutMs: number) => {
    await sim.until(pred, timeoutMs, 50, () => `${what}: ${complete()}`).catch((e) =>
      problems.push(String((e as Error).message))
    );
  };

  // ---- form the cluster: data members, then a lite client -----------------------------------
  const first = sim.spawn();
  void first.m.start([]);
  for (let i = 1; i < (opts.members ?? 3); i++) void sim.spawn().m.start([first.id]);
  await waitFor("initial table", () => complete() === null, 60_000);
  liteIds.add("client");
  const client = sim.spawn("client");
  void client.m.start([first.id]);
  await waitFor("client joined", () => client.m.joined && client.grid.partitions.table.version > 0, 30_000);
  if (problems.length) return { seed: opts.seed, problems, stats };
  sim.setLoss(opts.loss ?? 0.05);

  // ---- chaos: stalls now and then ------------------------------------------------------------
  let chaos = true;
  void (async () => {
    while (chaos && maxStallMs > 0) {
      await new Promise<void>((r) => sim.clock.setTimer(300 + rng.int(2000), r));
      if (!chaos) break;
      const victims = sim.liveNodes();
      const v = rng.pick(victims);
      const ms = 100 + rng.int(maxStallMs - 100 + 1);
      say(`stall ${v.id} ${ms} ms`);
      sim.stall(v.id, ms);
      stats.stalls++;
    }
  })();

  // ---- load: rounds of putAll -----------------------------------------------------------------
  // acked[m][k] = last acknowledged round; failedAfter[m][k] = rounds whose call failed.
  const acked = Array.from({ length: nMaps }, () => new Int32Array(nKeys).fill(-1));
  const failed = Array.from({ length: nMaps }, () => new Map<number, number[]>());
  const value = (round: number, k: number) => `r${round}-${k}`;
  for (let round = 0; round < rounds; round++) {
    let joinAt = -1;
    if (round === joinInRound) joinAt = Math.floor(nKeys / chunk / 3) * chunk;
    const loaders = Array.from({ length: nMaps }, async (_, mi) => {
      const map = client.grid.getMap<string, string>(`bulk${mi}`);
      let next = 0;
      const worker = async () => {
        while (next < nKeys) {
          const from = next;
          next += chunk;
          if (mi === 0 && from === joinAt && !stats.joined) {
            stats.joined = true;
            say("join");
            void sim.spawn().m.start([first.id]);
          }
          const to = Math.min(nKeys, from + chunk);
          const entries: Array<[string, string]> = [];
          for (let k = from; k < to; k++) entries.push([`k${k}`, value(round, k)]);
          try {
            await map.putAll(entries);
            stats.ackedCalls++;
            say(`bulk${mi} round ${round} [${from}, ${to}) acked`);
            for (let k = from; k < to; k++) acked[mi][k] = round;
          } catch (e) {
            say(`bulk${mi} round ${round} [${from}, ${to}) failed: ${e}`);
            stats.failedCalls++;
            for (let k = from; k < to; k++) {
              const f = failed[mi].get(k) ?? [];
              f.push(round);
              failed[mi].set(k, f);
            }
          }
        }
      };
      await Promise.all(Array.from({ length: inFlight }, worker));
    });
    let done = false;
    void Promise.all(loaders).then(() => void (done = true));
    await sim.until(() => done, 600_000, 20, () => `round ${round} did not finish`).catch((e) =>
      problems.push(String((e as Error).message))
    );
  }
  chaos = false;
  sim.setLoss(0);

  // ---- recover, then check ---------------------------------------------------------------------
  await waitFor("full agreeing replicas after the load", () => complete() === null, 120_000);
  const await_ = async <T>(p: Promise<T>): Promise<T | Error> => {
    let out: T | Error = new Error("pending");
    let settled = false;
    p.then((v) => (out = v), (e) => (out = e instanceof Error ? e : new Error(String(e)))).finally(
      () => (settled = true),
    );
    await sim.until(() => settled, 120_000, 10).catch(() => {});
    return out;
  };
  for (let mi = 0; mi < nMaps; mi++) {
    const map = client.grid.getMap<string, string>(`bulk${mi}`);
    const got = await await_(map.getAll(Array.from({ length: nKeys }, (_, k) => `k${k}`)));
    if (got instanceof Error) {
      problems.push(`getAll of bulk${mi} failed: ${got.message}`);
      continue;
    }
    const wrong: string[] = [];
    for (let k = 0; k < nKeys; k++) {
      const a = acked[mi][k];
      const v = got.get(`k${k}`);
      const maybe = (failed[mi].get(k) ?? []).filter((r) => r > a);
      const ok = v === undefined
        ? a < 0 && true
        : (a >= 0 && v === value(a, k)) || maybe.some((r) => v === value(r, k));
      if (!ok) wrong.push(`k${k}: ${v ?? "missing"} (last acked round ${a})`);
      else stats.checkedKeys++;
    }
    if (wrong.length) {
      problems.push(`bulk${mi}: ${wrong.length} keys lost or rolled back, e.g. ${wrong.slice(0, 5).join("; ")}`);
    }
    const size = await await_(map.size());
    if (size instanceof Error) problems.push(`size() of bulk${mi} failed: ${size.message}`);
    else {
      stats.sizes.push(size);
      if (size !== got.size) problems.push(`bulk${mi}: size() ${size}, getAll found ${got.size}`);
      // Cross-check against what the primaries hold, partition by partition.
      let held = 0;
      for (const n of data()) held += n.grid.localMaps().find((x) => x.name === `bulk${mi}`)?.size ?? 0;
      if (held !== size) problems.push(`bulk${mi}: size() ${size}, primaries hold ${held}`);
    }
  }
  stats.virtualMs = sim.clock.now() - t0;
  for (const n of sim.liveNodes()) n.stop();
  return { seed: opts.seed, problems, stats };
}
