/**
 * The partition table: for each partition its replicas (primary first) and an ownership
 * epoch that increases whenever the primary changes. The table version only moves
 * forward; the master alone produces new versions.
 */
import type { NodeId } from "../transport/transport.ts";
import type { PartitionReplicaInfo, PartitionSummary } from "../node_api.ts";

export interface PartitionTable {
  /** 0 = no table yet. */
  readonly version: number;
  readonly partitionCount: number;
  /** replicas[p][0] is the primary, then sync backups in rank order, then async backups. */
  readonly replicas: readonly (readonly NodeId[])[];
  /** Ownership epoch per partition. */
  readonly epochs: readonly number[];
  /** In-flight migrations: partition → the replica list being built. */
  readonly migrations: ReadonlyMap<number, readonly NodeId[]>;
}

/** A table with no owners (version 0). */
export function emptyTable(partitionCount: number): PartitionTable {
  return {
    version: 0,
    partitionCount,
    replicas: Array.from({ length: partitionCount }, () => []),
    epochs: new Array<number>(partitionCount).fill(0),
    migrations: new Map(),
  };
}

/**
 * The next table version with new replica lists; bumps the epoch of every partition whose
 * primary changed.
 */
export function nextTable(
  prev: PartitionTable,
  replicas: readonly (readonly NodeId[])[],
  migrations: ReadonlyMap<number, readonly NodeId[]> = prev.migrations,
  version: number = prev.version + 1,
): PartitionTable {
  const epochs = prev.epochs.map((e, p) => (prev.replicas[p][0] !== replicas[p][0] && replicas[p].length > 0 ? e + 1 : e));
  return { version, partitionCount: prev.partitionCount, replicas: replicas.map((r) => [...r]), epochs, migrations: new Map(migrations) };
}

/** Compact wire form: member ids once, rows as indices. */
export interface WireTable {
  version: number;
  members: NodeId[];
  rows: number[][];
  epochs: number[];
  /** [partition, member indices…] per in-flight migration */
  migrating: number[][];
}

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
  return { version: t.version, members, rows, epochs: [...t.epochs], migrating };
}

/** @returns the table, or null when the wire form is inconsistent */
export function tableFromWire(w: WireTable, partitionCount: number): PartitionTable | null {
  if (w.rows.length !== partitionCount || w.epochs.length !== partitionCount) return null;
  const id = (i: number) => w.members[i];
  for (const row of w.rows) {
    if (row.some((i) => i >= w.members.length) || new Set(row).size !== row.length) return null;
  }
  const migrations = new Map<number, NodeId[]>();
  for (const [p, ...row] of w.migrating) {
    if (p >= partitionCount || row.some((i) => i >= w.members.length)) return null;
    migrations.set(p, row.map(id));
  }
  return { version: w.version, partitionCount, replicas: w.rows.map((r) => r.map(id)), epochs: w.epochs, migrations };
}

/** Per-partition view for the HTTP layer and dashboard. */
export function tableInfo(t: PartitionTable): PartitionReplicaInfo[] {
  return t.replicas.map((replicas, partition) => {
    const info: PartitionReplicaInfo = { partition, replicas: [...replicas], epoch: t.epochs[partition] };
    const m = t.migrations.get(partition);
    if (m) info.migratingTo = [...m];
    return info;
  });
}

/**
 * Summary for `GET /cluster`. Only replicas on live members count: between a member's death
 * and the master's repaired table, the rows still name the dead member, and counting it
 * would report full replicas while one copy is gone.
 * @param wanted replicas wanted per partition (1 + backups), capped by the data member count
 * @param live the members this member's view holds alive; all when omitted
 */
export function tableSummary(t: PartitionTable, wanted: number, live?: ReadonlySet<NodeId>): PartitionSummary {
  const owners: Record<NodeId, number> = {};
  let replicasMissing = 0;
  for (const row of t.replicas) {
    const alive = live ? row.filter((m) => live.has(m)) : row;
    if (alive.length > 0 && alive[0] === row[0]) owners[row[0]] = (owners[row[0]] ?? 0) + 1;
    replicasMissing += Math.max(0, wanted - alive.length);
  }
  return { count: t.partitionCount, version: t.version, owners, replicasMissing, migrating: t.migrations.size };
}
