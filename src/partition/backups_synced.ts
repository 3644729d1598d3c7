/**
 * Backups created in place (invariant 10) reported in sync. A primary's map layer reports
 * which filling backups of a partition hold every write; the reports of a few milliseconds go
 * to the master in one PartitionBackupsSynced message (a forming cluster confirms hundreds at
 * once), and the master drops those members from the table's filling lists in one table
 * change, after which they count as replicas. The member side owns the batch; the master's
 * side is a function of the table (PartitionService stages the result).
 */
import type { Clock, Timer } from "../core/clock.ts";
import type { NodeId } from "../transport/transport.ts";
import type { PartitionTable } from "./partition_table.ts";

/** Partition `p`'s filling backups `members` are in sync with its primary at `epoch`. */
export interface SyncedItem {
  p: number;
  epoch: number;
  members: NodeId[];
}

/** How long reports wait to share one message. */
const BATCH_MS = 5;

/** A member's outgoing reports: the newest per partition, sent together after {@link BATCH_MS}. */
export class SyncedReports {
  #out = new Map<number, SyncedItem>();
  #timer: Timer | null = null;

  /** @param send sends one batch to the master (not called for an empty one) */
  constructor(readonly clock: Clock, readonly send: (items: SyncedItem[]) => void) {}

  /** Reports `members` of `p` in sync (a later report of `p` in the same batch replaces it). */
  report(p: number, epoch: number, members: readonly NodeId[]): void {
    this.#out.set(p, { p, epoch, members: [...members] });
    this.#timer ??= this.clock.setTimer(BATCH_MS, () => {
      this.#timer = null;
      const items = [...this.#out.values()];
      this.#out.clear();
      if (items.length > 0) this.send(items);
    });
  }

  /** Drops what is waiting. */
  stop(): void {
    this.#timer?.cancel();
  }
}

/**
 * The master's filling lists after primary `from`'s reports: each reported member leaves its
 * partition's list when `from` is that partition's primary at the reported epoch (stale and
 * repeated reports change nothing).
 * @returns the new lists and how many backups they no longer list, or null when nothing changed
 */
export function applySyncedReports(
  t: PartitionTable,
  from: NodeId,
  items: readonly SyncedItem[],
): { filling: Map<number, readonly NodeId[]>; synced: number } | null {
  let filling: Map<number, readonly NodeId[]> | null = null;
  let synced = 0;
  for (const it of items) {
    const f = (filling ?? t.filling)?.get(it.p);
    if (!f || t.replicas[it.p]?.[0] !== from || t.epochs[it.p] !== it.epoch) continue;
    const rest = f.filter((m) => !it.members.includes(m));
    if (rest.length === f.length) continue;
    filling ??= new Map(t.filling);
    if (rest.length > 0) filling.set(it.p, rest);
    else filling.delete(it.p);
    synced += f.length - rest.length;
  }
  return filling && { filling, synced };
}
