/**
 * Public partition events, as Hazelcast's `MigrationListener` and `PartitionLostListener`
 * report them, derived from two successive partition tables (every member receives every
 * table the master commits, so a listener on any member sees the whole cluster's events):
 * - `migrated`: a partition's replica list changed (`from` → `to`; the primary changed when
 *   `from[0] !== to[0]`; `promoted` when the new primary held a backup copy before);
 * - `lost`: a partition had replicas and now has none (every copy's member is gone).
 */
import type { NodeId } from "../transport/transport.ts";
import type { PartitionTable } from "./partition_table.ts";

export type PartitionEvent =
  | {
    type: "migrated";
    partition: number;
    from: readonly NodeId[];
    to: readonly NodeId[];
    /** The new primary held a backup copy (a failover or a planned promotion). */
    promoted: boolean;
    epoch: number;
  }
  | { type: "lost"; partition: number; lostReplicas: readonly NodeId[] };

export type PartitionListener = (e: PartitionEvent) => void;

/** The events between `prev` and `next` (same partition count), in partition order. */
export function partitionEvents(prev: PartitionTable, next: PartitionTable): PartitionEvent[] {
  const out: PartitionEvent[] = [];
  const n = Math.min(prev.replicas.length, next.replicas.length);
  for (let p = 0; p < n; p++) {
    const a = prev.replicas[p];
    const b = next.replicas[p];
    if (a.length === b.length && a.every((x, i) => x === b[i])) continue;
    if (b.length === 0) {
      if (a.length > 0) out.push({ type: "lost", partition: p, lostReplicas: [...a] });
      continue;
    }
    out.push({
      type: "migrated",
      partition: p,
      from: [...a],
      to: [...b],
      promoted: a[0] !== b[0] && a.slice(1).includes(b[0]),
      epoch: next.epochs[p],
    });
  }
  return out;
}
