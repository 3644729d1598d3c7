/**
 * The partition table: for each partition its replicas (primary first) and an ownership
 * epoch that increases whenever the primary changes. The table version only moves
 * forward; the master alone produces new versions.
 */
import { assert } from "../core/errors.ts";
import type { NodeId } from "../transport/transport.ts";
import type { WireTable } from "./messages.ts";
import type { PartitionReplicaInfo, PartitionTableSummary } from "./summary.ts";

export interface PartitionTable {
  /** 0 = no table yet. */
  readonly version: number;
  /**
   * The reign of the master that published this version (see {@link reignTerm}). Tables
   * are ordered by (term, version): a table from a later reign is newer whatever its version.
   */
  readonly term: number;
  readonly partitionCount: number;
  /** replicas[p][0] is the primary, then sync backups in rank order, then async backups. */
  readonly replicas: readonly (readonly NodeId[])[];
  /** Ownership epoch per partition. */
  readonly epochs: readonly number[];
  /** In-flight migrations: partition → the replica list being built. */
  readonly migrations: ReadonlyMap<number, readonly NodeId[]>;
  /**
   * Backups created in place and not yet reported in sync by their primary: partition → those
   * members (each is in the partition's row). They receive and ack every new write from the
   * start, but may lack older entries, so they do not count as replicas (`replicasMissing`)
   * and a dead primary is replaced by a backup that is in sync when there is one.
   */
  readonly filling?: ReadonlyMap<number, readonly NodeId[]>;
  /**
   * Published by a master that did not hold its quorum (split-brain protection): a new
   * master collecting the newest table passes it over (table_collect.ts).
   */
  readonly nq?: boolean;
}

/** Rounds are below 2^19, so every epoch (term × 2^21 + counter) stays below 2^52. */
const MAX_ROUND = 2 ** 19;
/** Bits of a term that name the master (its admission number, modulo 4096). */
const SLOT_BITS = 12;
/** Bits of an ownership epoch below the term: appointments per partition within one reign. */
const COUNTER_BITS = 21;

/**
 * The term of a master's reign: `round` (above every round the master has seen, and at least
 * its membership master epoch) in the high part, the master's admission number in the low
 * 12 bits. Two masters acting at once (a split brain) have different admission numbers, so
 * they never share a term, even in the same round.
 * @example
 * ```ts
 * reignTerm(3, 7); // 3 * 4096 + 7
 * ```
 */
export function reignTerm(round: number, joinedAt: number): number {
  if (!Number.isInteger(round) || round < 0 || round >= MAX_ROUND) {
    throw new RangeError(`Cannot use round ${round}: must be an integer in [0, 2^19)`);
  }
  return round * 2 ** SLOT_BITS + (Math.max(0, Math.trunc(joinedAt)) % 2 ** SLOT_BITS);
}

/** The round of a term (see {@link reignTerm}). */
export function termRound(term: number): number {
  return Math.floor(term / 2 ** SLOT_BITS);
}

/**
 * The lowest ownership epoch a master of term `term` hands out. Epochs of different terms
 * lie in disjoint ranges ordered like the terms, so an epoch names the reign that appointed
 * the primary, and a primary appointed in a later reign always outranks (fences) one
 * appointed in an earlier or concurrent one once its table arrives.
 */
export function epochBase(term: number): number {
  return term * 2 ** COUNTER_BITS;
}

/** Whether table `a` is newer than `b`: later term, or same term and higher version. */
export function isNewer(a: { term: number; version: number }, b: { term: number; version: number }): boolean {
  return a.term !== b.term ? a.term > b.term : a.version > b.version;
}

/**
 * Asserts that `next` may follow `prev` on one member: tables only move forward in
 * (term, version) order, and within one term (one master's reign) no partition's ownership
 * epoch goes down. Across terms an epoch may be lower: a reign that started from a table
 * without another, concurrent reign's appointments (a split brain) is fenced by its term
 * and rebased once it learns of them (see rebaseTable).
 */
export function assertTableFollows(prev: PartitionTable, next: PartitionTable): void {
  assert(
    isNewer(next, prev),
    `table ${next.term}/${next.version} must be newer than ${prev.term}/${prev.version}`,
  );
  if (next.term !== prev.term) return;
  for (let p = 0; p < next.epochs.length; p++) {
    assert(
      next.epochs[p] >= (prev.epochs[p] ?? 0),
      `partition ${p}'s epoch falls from ${prev.epochs[p]} to ${next.epochs[p]} in term ${next.term}`,
    );
  }
}

/** A table with no owners (version 0). */
export function emptyTable(partitionCount: number): PartitionTable {
  return {
    version: 0,
    term: 0,
    partitionCount,
    replicas: Array.from({ length: partitionCount }, () => []),
    epochs: new Array<number>(partitionCount).fill(0),
    migrations: new Map(),
  };
}

/**
 * The next table version with new replica lists; gives every partition whose primary
 * changed a new epoch: above its previous one and at least the base of `term`.
 * @param term the publishing master's term (default: the previous table's)
 */
export function nextTable(
  prev: PartitionTable,
  replicas: readonly (readonly NodeId[])[],
  migrations: ReadonlyMap<number, readonly NodeId[]> = prev.migrations,
  version: number = prev.version + 1,
  term: number = prev.term,
): PartitionTable {
  const base = epochBase(term);
  const epochs = prev.epochs.map((
    e,
    p,
  ) => (prev.replicas[p][0] !== replicas[p][0] && replicas[p].length > 0 ? Math.max(e + 1, base) : e));
  return {
    version,
    term,
    partitionCount: prev.partitionCount,
    replicas: replicas.map((r) => [...r]),
    epochs,
    migrations: new Map(migrations),
    filling: keptFilling(prev.filling, replicas),
  };
}

/** The filling members that are still in their partition's row (and still not primary). */
function keptFilling(
  filling: ReadonlyMap<number, readonly NodeId[]> | undefined,
  replicas: readonly (readonly NodeId[])[],
): Map<number, NodeId[]> {
  const out = new Map<number, NodeId[]>();
  for (const [p, ms] of filling ?? []) {
    const kept = ms.filter((m) => replicas[p]?.includes(m) && replicas[p][0] !== m);
    if (kept.length > 0) out.set(p, kept);
  }
  return out;
}

/** The same table with other filling backups (see {@link PartitionTable.filling}); rows are not changed. */
export function withFilling(t: PartitionTable, filling: ReadonlyMap<number, readonly NodeId[]>): PartitionTable {
  return { ...t, filling: keptFilling(filling, t.replicas) };
}

/** Whether two replica rows list the same members in the same order. */
export function sameRow(a: readonly NodeId[], b: readonly NodeId[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Partitions whose primary differs between two tables. */
export function primariesChanged(prev: PartitionTable, next: PartitionTable): number {
  let n = 0;
  for (let p = 0; p < next.partitionCount; p++) if (prev.replicas[p]?.[0] !== next.replicas[p][0]) n++;
  return n;
}

/** The members of partition `p`'s row that are filling (empty when none). */
export function fillingOf(t: PartitionTable, p: number): readonly NodeId[] {
  return t.filling?.get(p) ?? [];
}

/**
 * The same replicas under a new term: every partition gets a fresh epoch at or above the
 * term's base. A master uses it when it learns of tables from a reign it cannot order
 * (a split brain) so that every primary of its table outranks any the other reign appointed.
 */
export function rebaseTable(t: PartitionTable, term: number, version: number): PartitionTable {
  const base = epochBase(term);
  const epochs = t.epochs.map((e) => Math.max(e + 1, base));
  return {
    version,
    term,
    partitionCount: t.partitionCount,
    replicas: t.replicas.map((r) => [...r]),
    epochs,
    migrations: new Map(),
    filling: keptFilling(t.filling, t.replicas),
  };
}

export type { WireTable };

export function tableToWire(t: PartitionTable): WireTable {
  const members: NodeId[] = [];
  const idx = new Map<NodeId, number>();
  const ix = (m: NodeId) => {
    let i = idx.get(m);
    if (i === undefined) (i = members.length, idx.set(m, i), members.push(m));
    return i;
  };
  const rows = t.replicas.map((r) => r.map(ix));
  const migrating = [...t.migrations].map(([p, row]) => [p, ...row.map(ix)]);
  const w: WireTable = { version: t.version, term: t.term, members, rows, epochs: [...t.epochs], migrating };
  if (t.filling && t.filling.size > 0) w.filling = [...t.filling].map(([p, ms]) => [p, ...ms.map(ix)]);
  if (t.nq) w.nq = true;
  return w;
}

/** @returns the table, or null when the wire form is inconsistent */
export function tableFromWire(w: WireTable, partitionCount: number): PartitionTable | null {
  if (w.rows.length !== partitionCount || w.epochs.length !== partitionCount) return null;
  // A term past the last round would make the next reign's epochs unrepresentable.
  if (termRound(w.term) >= MAX_ROUND - 1) return null;
  const id = (i: number) => w.members[i];
  for (const row of w.rows) {
    if (row.some((i) => i >= w.members.length) || new Set(row).size !== row.length) return null;
  }
  const migrations = new Map<number, NodeId[]>();
  for (const [p, ...row] of w.migrating) {
    if (p >= partitionCount || row.some((i) => i >= w.members.length)) return null;
    migrations.set(p, row.map(id));
  }
  const filling = new Map<number, NodeId[]>();
  for (const [p, ...ms] of w.filling ?? []) {
    // Filling members are backups of their row: never its primary, never outside it.
    if (p >= partitionCount || ms.some((i) => !w.rows[p].includes(i) || w.rows[p][0] === i)) return null;
    if (ms.length > 0) filling.set(p, ms.map(id));
  }
  return {
    version: w.version,
    term: w.term,
    partitionCount,
    replicas: w.rows.map((r) => r.map(id)),
    epochs: w.epochs,
    migrations,
    filling,
    ...(w.nq ? { nq: true } : {}),
  };
}

/** Per-partition view for the HTTP layer and dashboard. */
export function tableInfo(t: PartitionTable): PartitionReplicaInfo[] {
  return t.replicas.map((replicas, partition) => {
    const info: PartitionReplicaInfo = { partition, replicas: [...replicas], epoch: t.epochs[partition] };
    const m = t.migrations.get(partition);
    if (m) info.migratingTo = [...m];
    const f = t.filling?.get(partition);
    if (f) info.filling = [...f];
    return info;
  });
}

/**
 * Summary for `GET /cluster`. Only replicas on live members count: between a member's death
 * and the master's repaired table, the rows still name the dead member, and counting it
 * would report full replicas while one copy is gone. Backups still filling count as missing
 * until their primary reports them in sync.
 * @param wanted replicas wanted per partition (1 + backups), capped by the data member count
 * @param live the members this member's view holds alive; all when omitted
 */
export function tableSummary(
  t: PartitionTable,
  wanted: number,
  live?: ReadonlySet<NodeId>,
): Omit<PartitionTableSummary, "lost"> {
  const owners: Record<NodeId, number> = {};
  let replicasMissing = 0;
  t.replicas.forEach((row, p) => {
    const alive = live ? row.filter((m) => live.has(m)) : row;
    if (alive.length > 0 && alive[0] === row[0]) owners[row[0]] = (owners[row[0]] ?? 0) + 1;
    const filling = fillingOf(t, p);
    replicasMissing += Math.max(0, wanted - alive.filter((m) => !filling.includes(m)).length);
  });
  return {
    count: t.partitionCount,
    version: t.version,
    owners,
    replicasMissing,
    replicasWanted: wanted,
    migrating: t.migrations.size,
  };
}
