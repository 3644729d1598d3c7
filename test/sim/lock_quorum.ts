/**
 * One lock under contention in the simulator, with faults: 5 IMap members (real Membership,
 * DataGrid), two owners per member looping `tryLock` (with a lease) → hold a while → `unlock`,
 * and one fault: a 3 + 2 network split that isolates the lock's primary with one other member,
 * a pause of the master or of the member holding the lock past failure detection, or kill -9
 * of the member holding the lock.
 *
 * What is recorded, in virtual time:
 * - every grant: the token and the owner (member + owner name);
 * - every owner's holding interval as a careful client counts it: from the answer that
 *   granted the lock to the earliest of its unlock, its member's death, and its lease's end
 *   counted from when it asked (the primary starts the lease later, never earlier);
 * - every use of a fenced resource inside a holding interval (at the start and the end).
 *
 * {@link checkLockHistory} finds two owners holding the lock at once, a token granted to two
 * owners, tokens not rising in the order of the grants, and a fenced resource that saw an
 * owner write with a token another owner had already written with.
 */
import { Random } from "../../src/core/random.ts";
import { partitionOfBytes } from "../../src/partition/partition_of.ts";
import { encodeValue } from "../../src/wire/codec.ts";
import { fullReplicas, type ImapSimNode, untilHealed } from "./imap_sim.ts";
import { loseIndeterminateAnswers, quorumSimulation } from "./imap_quorum.ts";

/**
 * `split`: the lock's primary and another member that is not the master are cut off (3 + 2);
 * `splitWithMaster`: the lock's primary and the master are.
 */
export type LockFault = "split" | "splitWithMaster" | "pause" | "pauseHolder" | "crashHolder";

export interface LockRunOptions {
  seed: number;
  fault: LockFault;
  /** 0 turns split-brain protection off. @default 3 */
  minClusterSize?: number;
  /** The quorum lease. @default 1000 */
  quorumLeaseMs?: number;
  /** The lease of every lock grant. @default 400 */
  lockLeaseMs?: number;
  /** How long the split or the pause lasts. @default 6000 */
  faultMs?: number;
  /** Every INDETERMINATE answer a member sends to another is lost (see imap_quorum.ts). */
  loseIndeterminate?: boolean;
}

/** One owner's hold of the lock. */
export interface Hold {
  owner: string;
  token: number;
  /** When the grant's answer arrived. */
  from: number;
  /** The earliest of unlock sent, member dead, lease end counted from the request. */
  to: number;
}

export interface LockRunResult {
  problems: string[];
  holds: Hold[];
  /** Fenced-resource uses: [token, owner, time]. */
  uses: Array<[number, string, number]>;
  /** Grants whose lease had ended (as the client counts it) before the answer arrived. */
  lateGrants: number;
  refusals: Record<string, number>;
  /** Split only: the members cut off (the lock's primary and one other). */
  minority: string[];
  /** Members that emitted `merge` (their side merged into the other), in order. */
  merged: string[];
}

const MAP = "m";

/** The member ids holding the partition of `key`, the primary first, in `n`'s table. */
function replicasOfKey(n: ImapSimNode, key: string): string[] {
  const p = partitionOfBytes(encodeValue(key), n.grid.partitions.config.partitionCount);
  return n.grid.partitions.table.replicas[p] as string[];
}

export async function runLockScenario(o: LockRunOptions): Promise<LockRunResult> {
  const problems: string[] = [];
  const quorumLeaseMs = o.quorumLeaseMs ?? 1000;
  const lockLeaseMs = o.lockLeaseMs ?? 400;
  const faultMs = o.faultMs ?? 6000;
  const sim = quorumSimulation(o.seed, problems, {
    backupCount: 2,
    minClusterSize: o.minClusterSize ?? 3,
    leaseMs: quorumLeaseMs,
  });
  const rng = new Random(o.seed ^ 0x10c4);
  const first = sim.spawn();
  void first.m.start([]);
  for (let i = 0; i < 4; i++) void sim.spawn().m.start([first.id]);
  await sim.until(() => fullReplicas(sim.liveNodes()), 60_000, 50, () => "cluster did not form");
  if (o.loseIndeterminate) loseIndeterminateAnswers(sim);
  await sim.run(2 * quorumLeaseMs);
  // A key whose primary is not the master, so a split can cut the two apart.
  const master = first.m.master()!;
  let KEY = "L0";
  for (let i = 1; replicasOfKey(first, KEY)[0] === master; i++) KEY = `L${i}`;

  const result: LockRunResult = {
    problems,
    holds: [],
    uses: [],
    lateGrants: 0,
    refusals: {},
    minority: [],
    merged: [],
  };
  for (const n of sim.liveNodes()) n.m.subscribe((e) => void (e.type === "merge" && result.merged.push(n.id)));
  const open = new Map<string, Hold>();
  let running = true;
  const use = (h: Hold) => {
    if (sim.clock.now() < h.to) result.uses.push([h.token, h.owner, sim.clock.now()]);
  };
  const client = async (node: ImapSimNode, name: string) => {
    const owner = `${node.id}/${name}`;
    const map = node.grid.getMap<string, number>(MAP);
    // Through the member's own (stallable) event loop, as a request to a real process waits.
    const sleep = (ms: number) => new Promise<void>((r) => node.clock.setTimer(ms, r));
    while (running && node.alive) {
      await sleep(rng.int(40));
      const askedAt = sim.clock.now();
      let token: number | undefined;
      try {
        token = await map.tryLock(KEY, { owner: name, leaseMs: lockLeaseMs, timeoutMs: rng.int(3) * 150 });
      } catch (err) {
        const code = (err as { code?: string }).code ?? String(err);
        result.refusals[code] = (result.refusals[code] ?? 0) + 1;
        continue;
      }
      if (token === undefined) continue;
      const h: Hold = { owner, token, from: sim.clock.now(), to: askedAt + lockLeaseMs };
      if (h.to <= h.from) result.lateGrants++;
      result.holds.push(h);
      open.set(owner, h);
      use(h);
      await sleep(10 + rng.int(60));
      use(h);
      h.to = Math.min(h.to, sim.clock.now());
      open.delete(owner);
      await map.unlock(KEY, { owner: name }).catch(() => {}); // CONFLICT once the lease ended
    }
  };
  const clients = sim.liveNodes().flatMap((n) => [client(n, "x"), client(n, "y")]);
  await sim.run(3000);

  const members = first.m.members().map((m) => sim.node(m.id)!);
  const holderNode = () => {
    const [h] = open.values();
    return h ? sim.node(h.owner.split("/")[0])! : members[1 + rng.int(4)];
  };
  if (o.fault === "split" || o.fault === "splitWithMaster") {
    // The lock's primary and one other member on the minority side.
    const primary = replicasOfKey(first, KEY)[0];
    const other = o.fault === "splitWithMaster" ? master : members.find((n) => n.id !== primary && n.id !== master)!.id;
    const minority = result.minority = [primary, other];
    sim.partition([members.map((n) => n.id).filter((id) => !minority.includes(id)), minority]);
    await sim.run(faultMs);
    sim.heal();
    await untilHealed(sim, members);
  } else if (o.fault === "pause" || o.fault === "pauseHolder") {
    sim.stall(o.fault === "pause" ? members[0].id : holderNode().id, faultMs);
    await sim.run(faultMs + 8000);
  } else {
    const victim = holderNode();
    victim.alive = false;
    for (const h of open.values()) if (h.owner.startsWith(victim.id + "/")) h.to = Math.min(h.to, sim.clock.now());
    sim.crash(victim.id);
    victim.stop();
    await sim.run(8000);
  }
  await sim.run(3000);
  running = false;
  let stopped = false;
  void Promise.all(clients).then(() => void (stopped = true));
  await sim.until(() => stopped, 60_000, 10, () => "clients did not stop");
  for (const n of sim.liveNodes()) n.stop();
  return result;
}

/** Two owners holding at once, a token granted twice or out of order, a fenced resource fooled. */
export function checkLockHistory(r: Pick<LockRunResult, "holds" | "uses">): string[] {
  const out: string[] = [];
  const byToken = new Map<number, string>();
  for (const h of r.holds) {
    const o = byToken.get(h.token);
    if (o !== undefined && o !== h.owner) out.push(`token ${h.token} granted to ${o} and ${h.owner}`);
    byToken.set(h.token, h.owner);
  }
  const holds = r.holds.filter((h) => h.to > h.from).sort((a, b) => a.from - b.from);
  for (let i = 0; i < holds.length; i++) {
    for (let j = i + 1; j < holds.length && holds[j].from < holds[i].to; j++) {
      if (holds[j].owner !== holds[i].owner) {
        out.push(
          `${holds[i].owner} (token ${holds[i].token}, ${holds[i].from}–${holds[i].to}) and ` +
            `${holds[j].owner} (token ${holds[j].token}, ${holds[j].from}–${holds[j].to}) hold the lock at once`,
        );
      }
    }
    if (i > 0 && holds[i].token < holds[i - 1].token) {
      out.push(`token ${holds[i].token} granted after token ${holds[i - 1].token}`);
    }
  }
  // A resource that refuses tokens below the highest it saw accepts only one owner per token.
  let max = 0;
  const usedBy = new Map<number, string>();
  for (const [token, owner, at] of [...r.uses].sort((a, b) => a[2] - b[2])) {
    if (token < max) continue; // refused by the resource: fencing at work
    max = token;
    const o = usedBy.get(token);
    if (o !== undefined && o !== owner) {
      out.push(`the resource accepted token ${token} from ${o} and ${owner} (t=${at})`);
    }
    usedBy.set(token, owner);
  }
  return out;
}
