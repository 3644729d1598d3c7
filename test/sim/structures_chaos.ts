/**
 * Seeded failover runs of the distributed queue, the reliable topic, entry processors and locks
 * (invariant 12: queue items, topic messages and lock records are partition records like map
 * entries, and a processor's effect is an ordinary replicated write, so the map layer's
 * guarantees must hold for them too).
 *
 * Six data members over the in-memory network in virtual time, 13 partitions, backup 1, with
 * packet loss. Producers and consumers (publishers and subscribers) run on members that hold
 * no replica of the structure's partition; the seed picks the fault and its moment:
 *
 * - `primary`: the primary crashes (1 %, or 5 % loss);
 * - `backup`: its backup crashes (no loss);
 * - `twice`: the primary crashes, then the backup that replaced it, 1.5–3 s later (2 % loss):
 *   two crashes with backup 1, possibly before the new backup's fill completed. Entries lost
 *   then are beyond the guarantee (README "Crashes") and must be reported (`dataLoss`);
 * - `fastPrimary`: the primary crashes and is detected after 300–1,100 ms (1 % loss).
 *
 * Checked, for the queue: every acknowledged offer is delivered exactly once (by a poll or the
 * final drain), nothing is delivered that was not offered, no poll is indeterminate. For the
 * topic: two subscribers, each awaiting `ready` before the publishes start, see every
 * acknowledged publish, each publisher's in order, nothing twice, nothing invented, no gap.
 * For entry processors: four callers append unique items to one list with the built-in
 * `append`, whose answer is the list's new length; every acknowledged append is in the final
 * list exactly once and at the position its answer named (so the appends took effect in one
 * order that agrees with every answer, and none took effect twice), nothing is in the list that
 * was not appended, no call failed other than `INDETERMINATE`; an append in the list twice fails
 * the run even with a reported data loss (no loss explains it). For locks: three holders on
 * members without a replica take the lock of one key, increment the key under it and unlock;
 * no two hold it at once (their holding intervals as they saw them, inside the primary's, never
 * overlap), tokens rise, the key ends with every acknowledged increment (and at most those in
 * doubt besides), and hand-offs go on after the fault. Then every partition has its replicas
 * again. A run with a violation and a reported data loss is counted apart (`dataLoss`), not
 * failed.
 */
import { IndeterminateResultError } from "../../src/core/errors.ts";
import type { TopicEvent } from "../../src/map/topic.ts";
import { type GridHarness, gridStarter, incompleteReplication, replicasOf } from "../support/grid_harness.ts";

const P = 13;
const cluster = gridStarter(P);

export type StructureFault = "primary" | "backup" | "twice" | "fastPrimary";
const FAULTS: StructureFault[] = ["primary", "backup", "twice", "primary", "fastPrimary"];
const LOSS: Record<StructureFault, number> = { primary: 0.01, backup: 0, twice: 0.02, fastPrimary: 0.01 };

export interface StructureRun {
  seed: number;
  fault: StructureFault;
  /** Acknowledged offers or publishes. */
  acked: number;
  problems: string[];
  /** Entries the members reported lost (a copy promoted without the history it needed). */
  dataLoss: number;
  /** A violation no data loss explains (a write applied twice): a failure whatever was reported. */
  twice?: boolean;
}

/** The fault of `seed`, applied at a moment it picks; the structure's partition is `name`'s. */
async function applyFault(h: GridHarness, seed: number, fault: StructureFault, name: string, keep: string[]) {
  const [primary, backup] = replicasOf(h, name);
  await h.run(500 + (seed * 37) % 1500);
  if (fault === "backup") h.crash(backup, 1000);
  else if (fault === "fastPrimary") h.crash(primary, 300 + (seed % 5) * 200);
  else h.crash(primary, 1000);
  if (fault !== "twice") return;
  await h.run(1500 + (seed * 13) % 1500);
  const next = replicasOf(h, name)[0];
  if (next && !keep.includes(next)) h.crash(next, 1000);
}

function finish(h: GridHarness, run: Omit<StructureRun, "dataLoss">): StructureRun {
  const inc = incompleteReplication(h, P);
  if (inc) run.problems.push(`replicas not back: ${inc}`);
  if (h.handlerErrors.length) run.problems.push(`handler errors: ${String(h.handlerErrors[0])}`);
  const dataLoss = h.live().reduce((n, m) => n + m.grid.maps.counters.dataLoss, 0);
  h.stop();
  return { ...run, dataLoss };
}

/**
 * The cluster of a queue, processor or lock run: `seed`'s fault, its loss (5 % in every second
 * `primary` run), short call timeouts, and the members holding no replica of `name`'s partition.
 */
async function callerCluster(seed: number, name: string) {
  const fault = FAULTS[seed % FAULTS.length];
  const h = await cluster(6, {
    seed,
    loss: fault === "primary" && seed % 2 === 1 ? 0.05 : LOSS[fault],
    config: { invoke: { attemptTimeoutMs: 300, callTimeoutMs: 8000 } },
  });
  const [primary, backup] = replicasOf(h, name);
  return { fault, h, others: h.live().map((m) => m.id).filter((id) => id !== primary && id !== backup) };
}

/** One queue run (see the module's comment). */
export async function runQueueChaos(seed: number): Promise<StructureRun> {
  const name = "work";
  const { fault, h, others } = await callerCluster(seed, name);
  const producers = others.slice(0, 2), consumers = others.slice(2);
  const acked = new Set<string>(), maybe = new Set<string>(), delivered: string[] = [];
  const problems: string[] = [];
  let stopProducing = false, stopConsuming = false, n = 0;
  const prod = producers.map(async (id) => {
    const q = h.members.get(id)!.grid.getQueue<string>(name);
    while (!stopProducing) {
      await new Promise((r) => h.clock.setTimer(5 + (n % 7), () => r(null)));
      const item = `i${n++}`;
      try {
        if (await q.offer(item)) acked.add(item);
      } catch (e) {
        maybe.add(item);
        if (!(e instanceof IndeterminateResultError)) problems.push(`offer failed: ${String(e)}`);
      }
    }
  });
  const cons = consumers.map(async (id) => {
    const q = h.members.get(id)!.grid.getQueue<string>(name);
    while (!stopConsuming) {
      try {
        const item = await q.poll({ timeoutMs: 150 });
        if (item !== undefined) delivered.push(item);
      } catch (e) {
        problems.push(`poll ${e instanceof IndeterminateResultError ? "indeterminate" : `failed: ${String(e)}`}`);
      }
    }
  });
  await applyFault(h, seed, fault, name, [...producers, ...consumers]);
  await h.run(3000);
  stopProducing = true;
  await h.until(Promise.all(prod));
  await h.run(2000);
  stopConsuming = true;
  await h.until(Promise.all(cons));
  const rest = await h.until(h.members.get(consumers[0])!.grid.getQueue<string>(name).drain());
  const all = [...delivered, ...rest];
  const counts = new Map<string, number>();
  for (const x of all) counts.set(x, (counts.get(x) ?? 0) + 1);
  const twice = [...counts].filter(([, c]) => c > 1).map(([x]) => x);
  if (twice.length) problems.push(`delivered twice: ${twice.slice(0, 5)}`);
  const lost = [...acked].filter((x) => !counts.has(x));
  if (lost.length) problems.push(`${lost.length} acknowledged offers lost: ${lost.slice(0, 5)}`);
  const invented = all.filter((x) => !acked.has(x) && !maybe.has(x));
  if (invented.length) problems.push(`delivered but never offered: ${invented.slice(0, 5)}`);
  await h.run(3000);
  return finish(h, { seed, fault, acked: acked.size, problems: [...new Set(problems)] });
}

/** One topic run (see the module's comment). */
export async function runTopicChaos(seed: number): Promise<StructureRun> {
  const fault = FAULTS[seed % FAULTS.length];
  const h = await cluster(6, { seed, loss: LOSS[fault] });
  const name = "news";
  const [primary, backup] = replicasOf(h, name);
  const [subA, pubA, pubB, subB] = h.live().map((m) => m.id).filter((id) => id !== primary && id !== backup);
  const stop = new AbortController();
  const problems: string[] = [];
  const subs = [subA, subB].map((id) =>
    h.members.get(id)!.grid.getReliableTopic<[string, number]>(name, { capacity: 10_000 }).subscribe({
      signal: stop.signal,
    })
  );
  const seen: TopicEvent<[string, number]>[][] = subs.map(() => []);
  subs.forEach((s, i) =>
    void (async () => {
      for await (const e of s) seen[i].push(e);
    })().catch((e) => problems.push(`subscriber ${i} failed: ${String(e)}`))
  );
  await h.until(Promise.all(subs.map((s) => s.ready)));
  const published = new Map<string, number[]>([["a", []], ["b", []]]);
  const maybe = new Map<string, Set<number>>([["a", new Set()], ["b", new Set()]]);
  let stopPublishing = false;
  const pubs = ([["a", pubA], ["b", pubB]] as const).map(async ([who, id]) => {
    const t = h.members.get(id)!.grid.getReliableTopic<[string, number]>(name, { capacity: 10_000 });
    for (let i = 0; !stopPublishing; i++) {
      await new Promise((r) => h.clock.setTimer(7 + (i % 5), () => r(null)));
      try {
        await t.publish([who, i]);
        published.get(who)!.push(i);
      } catch {
        maybe.get(who)!.add(i);
      }
    }
  });
  await applyFault(h, seed, fault, name, [subA, subB, pubA, pubB]);
  await h.run(4000);
  stopPublishing = true;
  await h.until(Promise.all(pubs));
  await h.run(2000);
  stop.abort();
  seen.forEach((events, i) => {
    if (events.some((e) => "missed" in e)) problems.push(`subscriber ${i} told of a gap`);
    for (const who of ["a", "b"]) {
      const got = events.flatMap((e) => "message" in e && e.message[0] === who ? [e.message[1]] : []);
      if (!got.every((x, j) => j === 0 || x > got[j - 1])) {
        problems.push(`subscriber ${i}: ${who} out of order or twice`);
      }
      const have = new Set(got);
      const lost = published.get(who)!.filter((x) => !have.has(x));
      if (lost.length) problems.push(`subscriber ${i}: ${lost.length} acknowledged publishes of ${who} missing`);
      const acked = new Set(published.get(who));
      if (got.some((x) => !acked.has(x) && !maybe.get(who)!.has(x))) problems.push(`subscriber ${i}: invented`);
    }
  });
  await h.run(3000);
  const acked = published.get("a")!.length + published.get("b")!.length;
  return finish(h, { seed, fault, acked, problems });
}

/** One entry-processor run (see the module's comment). */
export async function runProcessorChaos(seed: number): Promise<StructureRun> {
  // (Seeds 577 and 832 of this key and map applied a retried append twice after a data loss.)
  const key = "acc";
  const { fault, h, others: callers } = await callerCluster(seed, key);
  /** Acknowledged items with the length their append answered. */
  const acked = new Map<string, number>(), maybe = new Set<string>();
  const problems: string[] = [];
  let stop = false, n = 0;
  const runs = callers.map(async (id) => {
    const map = h.members.get(id)!.grid.getMap<string, string[]>("ep");
    while (!stop) {
      await new Promise((r) => h.clock.setTimer(3 + (n % 5), () => r(null)));
      const item = `${id}-${n++}`;
      try {
        acked.set(item, await map.executeOnKey(key, "append", item) as number);
      } catch (e) {
        maybe.add(item);
        if (!(e instanceof IndeterminateResultError)) problems.push(`append failed: ${String(e)}`);
      }
    }
  });
  await applyFault(h, seed, fault, key, callers);
  await h.run(3000);
  stop = true;
  await h.until(Promise.all(runs));
  await h.run(2000);
  const list = (await h.until(h.members.get(callers[0])!.grid.getMap<string, string[]>("ep").get(key))) ?? [];
  const position = new Map<string, number>();
  let twice = false;
  list.forEach((x, i) => {
    if (position.has(x)) (problems.push(`${x} appended twice`), twice = true);
    position.set(x, i + 1);
  });
  const lost = [...acked.keys()].filter((x) => !position.has(x));
  if (lost.length) problems.push(`${lost.length} acknowledged appends lost: ${lost.slice(0, 5)}`);
  const moved = [...acked].filter(([x, len]) => position.has(x) && position.get(x) !== len);
  if (moved.length) {
    const [x, len] = moved[0];
    problems.push(`${moved.length} appends not where their answer said (${x}: answered ${len}, at ${position.get(x)})`);
  }
  const invented = list.filter((x) => !acked.has(x) && !maybe.has(x));
  if (invented.length) problems.push(`in the list but never appended: ${invented.slice(0, 5)}`);
  await h.run(3000);
  return { ...finish(h, { seed, fault, acked: acked.size, problems: [...new Set(problems)] }), twice };
}

/** One lock run (see the module's comment). */
export async function runLockChaos(seed: number): Promise<StructureRun> {
  const key = "guarded";
  const { fault, h, others } = await callerCluster(seed, key);
  const holders = others.slice(0, 3);
  const problems: string[] = [];
  /** Holding intervals as the holders saw them (inside the primary's), with their tokens. */
  const held: Array<{ who: string; from: number; to: number; token: number }> = [];
  let acked = 0, maybe = 0, lastToken = 0, stop = false;
  const runs = holders.map(async (who) => {
    const map = h.members.get(who)!.grid.getMap<string, number>("counters");
    while (!stop) {
      await new Promise((r) => h.clock.setTimer(2 + (acked % 5), () => r(null)));
      let token: number;
      try {
        token = await map.lock(key, { leaseMs: 20_000 });
      } catch (e) {
        if (!(e instanceof IndeterminateResultError)) problems.push(`lock failed: ${String(e)}`);
        continue; // an indeterminate lock may be held: its lease (or this member's next lock) ends it
      }
      const from = h.clock.now();
      if (token <= lastToken) problems.push(`token ${token} after ${lastToken}`);
      lastToken = Math.max(lastToken, token);
      try {
        await map.set(key, ((await map.get(key)) ?? 0) + 1);
        acked++;
      } catch (e) {
        maybe++;
        if (!(e instanceof IndeterminateResultError)) problems.push(`increment failed: ${String(e)}`);
      }
      held.push({ who, from, to: h.clock.now(), token });
      await map.unlock(key).catch((e) => {
        if (!(e instanceof IndeterminateResultError)) problems.push(`unlock failed: ${String(e)}`);
      });
    }
  });
  await applyFault(h, seed, fault, key, holders);
  const beforeRun = acked;
  await h.run(4000);
  stop = true;
  await h.until(Promise.all(runs));
  // Hand-offs go on after the fault (slowly under loss: a lost grant to a parked waiter costs its 2 s park).
  if (acked === beforeRun) problems.push(`no increment in the 4 s after the fault`);
  held.sort((a, b) => a.from - b.from);
  for (let i = 1; i < held.length; i++) {
    const [a, b] = [held[i - 1], held[i]];
    if (b.from < a.to && a.who !== b.who) problems.push(`${a.who} and ${b.who} held it at once (${b.from} < ${a.to})`);
  }
  const count = (await h.until(h.members.get(holders[0])!.grid.getMap<string, number>("counters").get(key))) ?? 0;
  if (count < acked || count > acked + maybe) {
    problems.push(`counter ${count}, ${acked} increments acknowledged, ${maybe} in doubt`);
  }
  await h.run(3000);
  return finish(h, { seed, fault, acked, problems: [...new Set(problems)] });
}

/** Whether a run failed: a violation with no data loss reported to explain it. */
export function failedRun(r: StructureRun): boolean {
  return r.problems.length > 0 && (r.dataLoss === 0 || r.twice === true);
}
