/**
 * Partition assignment: a pure function from the previous replica lists and the live data
 * members to new replica lists. Properties (checked by property tests):
 * - every partition has min(replicaCount, members) replicas, on distinct members;
 * - for each rank (primary, first backup, …) the number of partitions per member differs
 *   by at most one between members;
 * - minimal movement: replicas on live members stay where they are unless balance needs a
 *   move; a dead primary is replaced by its first live backup (promotion), never by a
 *   member without the data.
 *
 * Balancing works rank by rank: first missing slots are filled greedily with the least
 * loaded eligible member; then each member gets a target (P / N, rounded down or up), and
 * while some member is above its target the cheapest chain of moves (found with Dijkstra
 * over members) shifts one partition from it towards a member below its target. A step
 * that swaps two members of the same partition costs less than one that copies data.
 */
import type { NodeId } from "../transport/transport.ts";

/** Input of {@link assignPartitions}. */
export interface AssignmentInput {
  /** Replica lists of the previous table (index = partition), or undefined for a new table. */
  previous?: readonly (readonly NodeId[])[];
  /** Live data members (lite members excluded), oldest first. */
  members: readonly NodeId[];
  partitionCount: number;
  /** Wanted replicas per partition: 1 + backupCount + asyncBackupCount. */
  replicaCount: number;
}

/**
 * Computes the replica lists of a new partition table.
 * @returns for each partition its replicas, primary first
 * @example
 * ```ts
 * const t = assignPartitions({ members: ["a", "b", "c"], partitionCount: 271, replicaCount: 2 });
 * t[0]; // e.g. ["a", "b"]
 * ```
 */
export function assignPartitions(input: AssignmentInput): NodeId[][] {
  // Keeping each member's current spare slots moves least; when replicas nearly cover all
  // members that can leave a later rank impossible to balance, so then spread the spare
  // slots by the members' totals instead.
  const first = assign(input, false);
  return first.balanced ? first.table : assign(input, true).table;
}

function assign(input: AssignmentInput, byTotal: boolean): { table: NodeId[][]; balanced: boolean } {
  const { members, partitionCount: P } = input;
  if (!Number.isInteger(P) || P < 1) throw new RangeError(`Cannot assign ${P} partitions`);
  if (!Number.isInteger(input.replicaCount) || input.replicaCount < 1 || input.replicaCount > 7) {
    throw new RangeError(`Cannot assign ${input.replicaCount} replicas per partition: must be 1–7`);
  }
  const N = members.length;
  const R = Math.min(input.replicaCount, N);
  const index = new Map<NodeId, number>();
  members.forEach((m, i) => index.set(m, i));
  if (index.size !== N) throw new RangeError("Cannot assign partitions: duplicate member ids");
  // Work with member indices.
  const cur: number[][] = [];
  for (let p = 0; p < P; p++) {
    const prev = input.previous?.[p] ?? [];
    const row: number[] = [];
    for (const m of prev) {
      const i = index.get(m);
      if (i !== undefined && !row.includes(i)) row.push(i);
    }
    cur.push(row.slice(0, R));
  }
  let balanced = true;
  for (let r = 0; r < R; r++) {
    const count = new Array<number>(N).fill(0);
    for (let p = 0; p < P; p++) if (cur[p].length > r) count[cur[p][r]]++;
    // Members that already hold many replicas at higher ranks get the spare slots of this
    // rank last: with as many replicas as members, later ranks would otherwise be forced
    // out of balance.
    const total = new Array<number>(N).fill(0);
    for (let p = 0; p < P; p++) for (let k = 0; k < r; k++) total[cur[p][k]]++;
    // 1. Fill empty slots at rank r with the least loaded eligible member.
    for (let p = 0; p < P; p++) {
      if (cur[p].length > r) continue;
      let best = -1;
      for (let m = 0; m < N; m++) {
        if (cur[p].includes(m)) continue;
        if (best < 0 || count[m] < count[best] || (count[m] === count[best] && total[m] < total[best])) best = m;
      }
      cur[p].push(best);
      count[best]++;
    }
    // 2. Balance rank r: s = P mod N members get one more than the others.
    const q = Math.floor(P / N), s = P % N;
    const order = [...Array(N).keys()].sort((a, b) =>
      byTotal
        ? total[a] - total[b] || count[b] - count[a] || a - b
        : count[b] - count[a] || total[a] - total[b] || a - b
    );
    const target = new Array<number>(N).fill(q);
    for (let i = 0; i < s; i++) target[order[i]] = q + 1;
    if (!balanceRank(cur, r, count, target, N)) balanced = false;
  }
  return { table: cur.map((row) => row.map((i) => members[i])), balanced };
}

/** @returns whether every member reached its target */
function balanceRank(cur: number[][], r: number, count: number[], target: number[], N: number): boolean {
  const P = cur.length;
  for (let guard = 0; guard < P * 4; guard++) {
    if (count.every((c, m) => c === target[m])) return true;
    const path = findPath(cur, r, count, target, N);
    if (!path) return false;
    // Apply the moves: each moves rank r of partition p from `from` to `to`.
    for (const { p, from, to } of path) {
      const row = cur[p];
      const at = row.indexOf(to);
      row[r] = to;
      if (at > r) row[at] = from; // swap within the partition: no data moves
    }
    count[path[0].from]--;
    count[path[path.length - 1].to]++;
  }
  return false;
}

interface Move {
  p: number;
  from: number;
  to: number;
}

/** Cost of a step: a swap inside a partition copies nothing; a move copies the partition. */
const SWAP_COST = 1;
const MOVE_COST = 3;

/**
 * Cheapest chain of moves (Dijkstra over members) from a member above its target to one
 * below it. An edge a → b exists for each partition whose rank r is a, when b does not hold
 * a higher rank of that partition.
 */
function findPath(cur: number[][], r: number, count: number[], target: number[], N: number): Move[] | null {
  const P = cur.length;
  const owned: number[][] = Array.from({ length: N }, () => []);
  for (let p = 0; p < P; p++) owned[cur[p][r]].push(p);
  const via = new Array<Move | null>(N).fill(null);
  const dist = new Array<number>(N).fill(Infinity);
  const done = new Array<boolean>(N).fill(false);
  for (let m = 0; m < N; m++) if (count[m] > target[m]) dist[m] = 0;
  for (;;) {
    let a = -1;
    for (let m = 0; m < N; m++) if (!done[m] && dist[m] < Infinity && (a < 0 || dist[m] < dist[a])) a = m;
    if (a < 0) return null;
    done[a] = true;
    if (count[a] < target[a]) {
      const path: Move[] = [];
      for (let x = a; via[x]; x = via[x]!.from) path.unshift(via[x]!);
      return path;
    }
    for (const p of owned[a]) {
      const row = cur[p];
      for (let b = 0; b < N; b++) {
        if (done[b]) continue;
        const at = row.indexOf(b);
        if (at >= 0 && at <= r) continue; // holds a higher rank of p (or is a)
        const d = dist[a] + (at > r ? SWAP_COST : MOVE_COST);
        if (d < dist[b]) {
          dist[b] = d;
          via[b] = { p, from: a, to: b };
        }
      }
    }
  }
}

/**
 * Repair after deaths, without balancing: drops members that are gone and moves the
 * survivors up (the first live backup becomes primary). The master publishes this at once
 * so that writes resume; balancing then happens by migration. A backup still filling (see
 * {@link fillMissingReplicas}) may lack older entries, so a dead primary is replaced by the
 * first live backup that is in sync, and by a filling one only when no other is left.
 * @param previous replica lists, primary first
 * @param live members that are still alive (any order)
 * @param filling per partition, the backups still filling
 * @returns new replica lists (same length)
 */
export function repairReplicas(
  previous: readonly (readonly NodeId[])[],
  live: ReadonlySet<NodeId>,
  filling: ReadonlyMap<number, readonly NodeId[]> = new Map(),
): NodeId[][] {
  return previous.map((row, p) => {
    const alive = row.filter((m) => live.has(m));
    const f = filling.get(p);
    if (!f || alive[0] === row[0]) return alive;
    return [...alive.filter((m) => !f.includes(m)), ...alive.filter((m) => f.includes(m))];
  });
}

/**
 * Backups created in place (invariant 10): every row with fewer than `wanted` replicas gets
 * the members it lacks at once, appended after the replicas it has (so no primary and no
 * existing rank moves). New members come from the row's `ideal` first (so balancing later
 * needs at most a swap, which copies nothing), then from the other `members` holding the
 * fewest replicas. A row with no replica is left alone (it gets its `ideal` row whole, with
 * nothing to copy), and so is every row whose partition is in `skip`.
 *
 * The members added this way are in the table from the start: the primary ships them every
 * new write and counts their acks while it brings them up to date (nothing to copy for an
 * empty partition), so no write is acknowledged by fewer copies than the view allows.
 * @returns the new rows (unchanged rows are the same arrays) and the partitions filled
 */
export function fillMissingReplicas(
  current: readonly (readonly NodeId[])[],
  ideal: readonly (readonly NodeId[])[],
  members: readonly NodeId[],
  wanted: number,
  skip: ReadonlySet<number> = new Set(),
): { rows: (readonly NodeId[])[]; filled: number[] } {
  const R = Math.min(wanted, members.length);
  const load = new Map<NodeId, number>(members.map((m) => [m, 0]));
  for (const row of current) for (const m of row) if (load.has(m)) load.set(m, load.get(m)! + 1);
  const rows: (readonly NodeId[])[] = [...current];
  const filled: number[] = [];
  for (let p = 0; p < current.length; p++) {
    const cur = current[p];
    if (cur.length === 0 || cur.length >= R || skip.has(p)) continue;
    const row = [...cur];
    for (const m of ideal[p] ?? []) if (row.length < R && load.has(m) && !row.includes(m)) row.push(m);
    while (row.length < R) {
      let best: NodeId | undefined;
      for (const m of members) {
        if (row.includes(m)) continue;
        if (best === undefined || load.get(m)! < load.get(best)!) best = m;
      }
      if (best === undefined) break;
      row.push(best);
    }
    for (const m of row.slice(cur.length)) load.set(m, load.get(m)! + 1);
    rows[p] = row;
    filled.push(p);
  }
  return { rows, filled };
}

/**
 * Spreads filling backups (created in place, not yet in sync) over the data `members`: a
 * forming cluster gives every backup to the first joiner, so without this its copies travel
 * over one link and are installed by one member. Filling backup `x` of row `p` is replaced by
 * a member `y` of `ideal[p]` the row lacks while `x` holds more than one fill more than `y`,
 * and only if `canMove(p, x)` (the caller's check that `x` holds nothing yet); rows whose
 * ideal leaves `x` out go first (moving those also saves a migration later). The replacement
 * takes `x`'s place in the row and in `filling`.
 * @returns the new rows (null when nothing moved), the new filling lists of the rows that
 *   changed, and how many backups moved
 */
export function spreadFills(
  current: readonly (readonly NodeId[])[],
  filling: ReadonlyMap<number, readonly NodeId[]>,
  ideal: readonly (readonly NodeId[])[],
  members: readonly NodeId[],
  canMove: (p: number, x: NodeId) => boolean,
): { rows: NodeId[][] | null; filling: Map<number, readonly NodeId[]>; moved: number } {
  const load = new Map<NodeId, number>(members.map((m) => [m, 0]));
  for (const ms of filling.values()) for (const m of ms) if (load.has(m)) load.set(m, load.get(m)! + 1);
  let rows: NodeId[][] | null = null;
  let moved = 0;
  const changed = new Map<number, readonly NodeId[]>();
  for (const outOfIdeal of [true, false]) {
    for (const [p, first] of filling) {
      const ms = changed.get(p) ?? first;
      const row = rows?.[p] ?? current[p];
      for (const x of ms) {
        const y = ideal[p]?.find((m) => !row.includes(m) && load.has(m));
        if (y === undefined || !load.has(x) || ideal[p].includes(x) === outOfIdeal) continue;
        if (load.get(x)! <= load.get(y)! + 1 || !canMove(p, x)) continue;
        rows ??= current.map((r) => [...r]);
        rows[p] = row.map((m) => (m === x ? y : m));
        changed.set(p, ms.map((m) => (m === x ? y : m)));
        load.set(x, load.get(x)! - 1);
        load.set(y, load.get(y)! + 1);
        moved++;
        break;
      }
    }
  }
  return { rows, filling: changed, moved };
}
