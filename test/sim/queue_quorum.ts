/**
 * The distributed queue with split-brain protection (minClusterSize 3 of 5) in the simulator
 * (real membership and data grids in virtual time): two producers and two consumers on members
 * other than the queue's primary, and one fault, chosen by the caller:
 *
 * - `pausePrimary`: the queue's primary stalls past failure detection (SIGSTOP, a long GC);
 * - `pauseConsumer`: a consumer's member stalls, with polls in flight;
 * - `split`: the queue's primary and one other member are cut off (a minority) for a while;
 * - `splitWithMaster`: the same with the master on the minority side;
 * - `crashPrimary`: kill -9 of the queue's primary.
 *
 * Checked: every acknowledged offer is delivered exactly once (by a poll or the final drain);
 * nothing is delivered that was not offered; an acknowledged offer may be missing only where a
 * poll ended in doubt (INDETERMINATE: it may have taken an item whose answer was lost), one item
 * per such poll at most. The minority side refuses (QUORUM) rather than serve a stale queue.
 */
import { IndeterminateResultError, ShoalError } from "../../src/core/errors.ts";
import { Random } from "../../src/core/random.ts";
import { partitionOf } from "../../src/partition/partition_of.ts";
import { formGrid } from "./imap_quorum.ts";
import { type ImapSimNode, settle, untilHealed } from "./imap_sim.ts";

export type QueueFault = "pausePrimary" | "pauseConsumer" | "split" | "splitWithMaster" | "crashPrimary";

export interface QueueRunOptions {
  seed: number;
  fault: QueueFault;
  /** How long the pause or the split lasts. @default 6000 */
  faultMs?: number;
  /** 0 turns split-brain protection off (AP: both sides serve the queue). @default 3 */
  minClusterSize?: number;
}

export interface QueueRunResult {
  problems: string[];
  /** Acknowledged offers. */
  acked: number;
  /** Items delivered by polls (the final drain not counted). */
  polled: number;
  /** Polls and offers refused with QUORUM. */
  refused: number;
  /** Polls that ended INDETERMINATE. */
  pollsInDoubt: number;
}

const QUEUE = "work";

/** The queue's partition's replicas (primary first), in `n`'s table. */
function replicasOfQueue(n: ImapSimNode): string[] {
  // A queue lives in the partition of its name (queue.ts).
  const p = partitionOf(QUEUE, n.grid.partitions.config.partitionCount);
  return n.grid.partitions.table.replicas[p] as string[];
}

export async function runQueueScenario(o: QueueRunOptions): Promise<QueueRunResult> {
  const problems: string[] = [];
  const faultMs = o.faultMs ?? 6000;
  const sim = await formGrid({
    seed: o.seed,
    members: 5,
    grid: { backupCount: 2, minClusterSize: o.minClusterSize ?? 3, leaseMs: 1000 },
  }, problems);
  const rng = new Random(o.seed ^ 0x9e7e);
  const first = sim.liveNodes()[0];
  const members = first.m.members().map((m) => sim.node(m.id)!);
  const master = members[0];
  const primary = sim.node(replicasOfQueue(first)[0])!;
  const others = members.filter((n) => n !== primary);
  const producers = others.slice(0, 2), consumers = others.slice(2, 4);

  const result: QueueRunResult = { problems, acked: 0, polled: 0, refused: 0, pollsInDoubt: 0 };
  const acked = new Set<string>(), maybe = new Set<string>(), delivered: string[] = [];
  let producing = true, consuming = true, n = 0;
  const refusedOrRetry = (e: unknown) => e instanceof ShoalError && e.code === "QUORUM";
  const produce = async (node: ImapSimNode) => {
    const q = node.grid.getQueue<string>(QUEUE);
    const sleep = (ms: number) => new Promise<void>((r) => node.clock.setTimer(ms, r));
    while (producing && node.alive) {
      await sleep(10 + rng.int(20));
      const item = `${node.id}-${n++}`;
      try {
        if (await q.offer(item)) acked.add(item);
      } catch (e) {
        if (refusedOrRetry(e)) result.refused++;
        else {
          maybe.add(item);
          if (!(e instanceof IndeterminateResultError) && !(e instanceof ShoalError)) {
            problems.push(`offer failed: ${String(e)}`);
          }
        }
      }
    }
  };
  const consume = async (node: ImapSimNode) => {
    const q = node.grid.getQueue<string>(QUEUE);
    const sleep = (ms: number) => new Promise<void>((r) => node.clock.setTimer(ms, r));
    while (consuming && node.alive) {
      try {
        const item = await q.poll({ timeoutMs: 200 });
        if (item !== undefined) delivered.push(item);
      } catch (e) {
        if (refusedOrRetry(e)) result.refused++;
        else if (e instanceof IndeterminateResultError) result.pollsInDoubt++;
        else if (!(e instanceof ShoalError)) problems.push(`poll failed: ${String(e)}`);
        await sleep(20);
      }
    }
  };
  const tasks = [...producers.map(produce), ...consumers.map(consume)];
  await sim.run(1500);

  if (o.fault === "pausePrimary" || o.fault === "pauseConsumer") {
    sim.stall((o.fault === "pausePrimary" ? primary : consumers[rng.int(2)]).id, faultMs);
    await sim.run(faultMs + 8000);
  } else if (o.fault === "split" || o.fault === "splitWithMaster") {
    const other = o.fault === "splitWithMaster" && master !== primary
      ? master
      : members.find((m) => m !== primary && m !== master && !producers.includes(m) && !consumers.includes(m)) ??
        producers[1];
    const minority = [primary.id, other.id];
    sim.partition([members.map((m) => m.id).filter((id) => !minority.includes(id)), minority]);
    await sim.run(faultMs);
    sim.heal();
    await untilHealed(sim, members);
    await sim.run(3000);
  } else {
    primary.alive = false;
    sim.crash(primary.id);
    primary.stop();
    await sim.run(8000);
  }
  producing = false;
  await sim.run(3000);
  consuming = false;
  let stopped = false;
  void Promise.all(tasks).then(() => void (stopped = true));
  await sim.until(() => stopped, 60_000, 10, () => "producers and consumers did not stop");
  const reader = sim.liveNodes().find((m) => m.alive)!;
  let rest: string[] = [];
  for (let i = 0; i < 20; i++) {
    try {
      rest = await settle(sim, reader.grid.getQueue<string>(QUEUE).drain());
      break;
    } catch (e) {
      if (!(e instanceof ShoalError)) throw e;
      await sim.run(500);
    }
  }
  result.acked = acked.size;
  result.polled = delivered.length;
  const counts = new Map<string, number>();
  for (const x of [...delivered, ...rest]) counts.set(x, (counts.get(x) ?? 0) + 1);
  const twice = [...counts].filter(([, c]) => c > 1).map(([x]) => x);
  if (twice.length) problems.push(`delivered twice: ${twice.slice(0, 5)}`);
  const lost = [...acked].filter((x) => !counts.has(x));
  if (lost.length > result.pollsInDoubt) {
    problems.push(
      `${lost.length} acknowledged offers lost (${result.pollsInDoubt} polls in doubt): ${lost.slice(0, 5)}`,
    );
  }
  const invented = [...counts.keys()].filter((x) => !acked.has(x) && !maybe.has(x));
  if (invented.length) problems.push(`delivered but never offered: ${invented.slice(0, 5)}`);
  for (const node of sim.liveNodes()) node.stop();
  return result;
}
