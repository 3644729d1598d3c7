/**
 * The master's migrations in flight: per partition, the row it asked the primary to bring up
 * to date (MigrationStart), under which epoch, when, and the id naming that start. The master's
 * pass (partition_service.ts) starts, re-sends and abandons them; a primary's ready report
 * commits one only if it names the same epoch, row and id.
 */
import type { NodeId } from "../transport/transport.ts";
import { sameRow } from "./partition_table.ts";

export interface Inflight {
  /** Names this migration: unique per master reign (term) and start. */
  id: number;
  row: NodeId[];
  epoch: number;
  startedAt: number;
  sentAt: number;
}

export class InflightMigrations {
  #byPartition = new Map<number, Inflight>();
  #counter = 0;

  get size(): number {
    return this.#byPartition.size;
  }

  has(p: number): boolean {
    return this.#byPartition.has(p);
  }

  delete(p: number): void {
    this.#byPartition.delete(p);
  }

  clear(): void {
    this.#byPartition.clear();
  }

  /**
   * Records the migration of `p` to `row` started (and sent) at `now` by the master of `term`.
   * Its id is unique per reign and start: a primary that still counts the targets of an earlier
   * migration of the same row caught up (one this or an earlier master abandoned, after which a
   * target may have dropped its copy) checks them again for a new id, and its ready reports for
   * the old id commit nothing.
   */
  start(p: number, row: readonly NodeId[], epoch: number, term: number, now: number): Inflight {
    this.#counter = (this.#counter + 1) % 2 ** 32;
    const m = { id: (term % 2 ** 19) * 2 ** 32 + this.#counter, row: [...row], epoch, startedAt: now, sentAt: now };
    this.#byPartition.set(p, m);
    return m;
  }

  /** Drops the migrations `stale` picks. @returns their partitions */
  abandon(stale: (p: number, m: Inflight) => boolean): number[] {
    const dropped: number[] = [];
    for (const [p, m] of this.#byPartition) if (stale(p, m)) dropped.push(p);
    for (const p of dropped) this.#byPartition.delete(p);
    return dropped;
  }

  /** The migrations whose start was sent `afterMs` or longer ago, marked sent at `now` (their start may have been lost). */
  dueForResend(now: number, afterMs: number): Array<[number, Inflight]> {
    const due: Array<[number, Inflight]> = [];
    for (const [p, m] of this.#byPartition) {
      if (now - m.sentAt >= afterMs) (m.sentAt = now, due.push([p, m]));
    }
    return due;
  }

  /** The migration a ready report names: same partition, epoch and row, and id when the report has one. */
  matching(r: { p: number; epoch: number; row: readonly NodeId[]; mid?: number }): Inflight | undefined {
    const m = this.#byPartition.get(r.p);
    if (!m || m.epoch !== r.epoch || !sameRow(m.row, r.row)) return undefined;
    return r.mid !== undefined && r.mid !== m.id ? undefined : m;
  }
}
