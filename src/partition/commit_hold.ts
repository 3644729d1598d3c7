/**
 * The migration commits a master holds while its quorum has lapsed (split-brain protection).
 *
 * A commit makes the members the new row leaves out drop their copies. Published by a master
 * without its quorum, it would go out in a marked table (`PartitionTable.nq`), which a next
 * master that did not receive it passes over (table_collect.ts): that master would continue
 * from the rows before, whose members dropped what they held (a paused master woken with the
 * ready reports waiting, killed before its lease was renewed:
 * test/sim/imap_quorum_window_test.ts). So the reports wait here until the quorum is back.
 * A member that never held its quorum (a forming cluster's master, under which no write was
 * acknowledged) holds nothing. Bounded: one report per partition, the newest.
 */
import type { PartitionMigrationReady } from "./messages.ts";

export class CommitHold {
  #held = new Map<number, PartitionMigrationReady>();
  /** Whether this member has held its quorum since it started. */
  #quorumHeld = false;

  /** @param hasQuorum whether this member holds its quorum now */
  constructor(readonly hasQuorum: () => boolean) {}

  /** Whether this member held its quorum once and does not hold it now (call it often: it notes a quorum held). */
  lapsed(): boolean {
    if (this.hasQuorum()) {
      this.#quorumHeld = true;
      return false;
    }
    return this.#quorumHeld;
  }

  /**
   * Holds `msg` in place of an earlier report of its partition.
   * @returns whether its partition held none yet
   */
  hold(msg: PartitionMigrationReady): boolean {
    const fresh = !this.#held.has(msg.p);
    this.#held.set(msg.p, msg);
    return fresh;
  }

  /** The reports held, oldest partition first; none is held afterwards. */
  release(): PartitionMigrationReady[] {
    const out = [...this.#held.values()];
    this.#held.clear();
    return out;
  }

  /** Drops the report of partition `p`, if held. */
  forget(p: number): void {
    this.#held.delete(p);
  }

  clear(): void {
    this.#held.clear();
  }
}
