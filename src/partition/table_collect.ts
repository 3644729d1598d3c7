/**
 * A new master's first step (PartitionService): before it publishes a table of its own, it
 * collects the newest table any live member holds. It asks every other member once at the
 * start, asks again every {@link ASK_AGAIN_MS} those that have not answered, and is done
 * when every member still in the view answered or the collect timeout passed. The state here
 * lives only while collecting; the service owns the table it then continues from.
 */
import type { NodeId } from "../transport/transport.ts";
import { isNewer, type PartitionTable, termRound } from "./partition_table.ts";

/** How far a reported table's term round may lie above ours and the master epoch (each reign adds one). */
export const MAX_ROUND_LEAD = 1024;
/**
 * How far a reported table's term round may lie above the master epoch, however it got there.
 * A round rises above the epoch only when a master meets another reign's table (a split
 * brain), by one each time; the lead above alone is measured from our own round, which the
 * last report raised, so a member sending reports each just within it walked the round up a
 * thousand at a time to the end of the term space (2^19 rounds) in about 520 reports, after
 * which no next master could publish a table any member accepts.
 */
export const MAX_ROUND_DRIFT = 2 ** 16;
/** How far a reported table's version may lie above ours (each publication adds one). */
export const MAX_VERSION_LEAD = 2 ** 32;
/** Members that have not answered are asked again this often. */
const ASK_AGAIN_MS = 300;

/**
 * Whether a table a member reported lies further ahead than any honest reign can be: terms
 * grow by one round per reign and versions by one per publication, so a round more than
 * {@link MAX_ROUND_LEAD} above ours and the master epoch, or a version more than
 * {@link MAX_VERSION_LEAD} above ours, is a forgery; adopting it would exhaust the term space
 * (no later master could reign) or the integer range. So is a round more than
 * {@link MAX_ROUND_DRIFT} above the master epoch, which reports cannot raise: it bounds what
 * many reports, each within the lead, add up to (versions too: each adopted report costs a round).
 * @param mine this member's table
 * @param masterEpoch the membership's master epoch
 */
export function implausibleTable(t: PartitionTable, mine: PartitionTable, masterEpoch: number): boolean {
  const round = Math.max(termRound(mine.term), masterEpoch);
  const r = termRound(t.term);
  return r > round + MAX_ROUND_LEAD || r > masterEpoch + MAX_ROUND_DRIFT || t.version > mine.version + MAX_VERSION_LEAD;
}

/** One collection of the newest table (see the module's comment). */
export class TableCollect {
  readonly #deadline: number;
  #askedAt: number;
  readonly #waiting: Set<NodeId>;
  /** The newest table seen: this member's own at the start, then the newest reported. */
  best: PartitionTable;

  /**
   * Asks each of `others` for its table.
   * @param ask sends one member the request (PartitionTableFetch with `collect`)
   */
  constructor(
    others: readonly NodeId[],
    own: PartitionTable,
    now: number,
    timeoutMs: number,
    readonly ask: (id: NodeId) => void,
  ) {
    this.#deadline = now + timeoutMs;
    this.#askedAt = now;
    this.#waiting = new Set(others);
    this.best = own;
    for (const id of others) ask(id);
  }

  /** Whether `from` was asked and has not answered yet. */
  awaits(from: NodeId): boolean {
    return this.#waiting.has(from);
  }

  /** Members that have not answered. */
  get missing(): number {
    return this.#waiting.size;
  }

  /**
   * `from` answered with table `t` (null: none this member accepts). A table its master
   * published without its quorum is passed over: that master was cut off (split-brain
   * protection), and its side served nothing under it; adopted here, its rows could drop the
   * copies this side serves from (test/sim/imap_quorum_test.ts, seed 3364).
   */
  answered(from: NodeId, t: PartitionTable | null): void {
    this.#waiting.delete(from);
    if (t && !t.nq && isNewer(t, this.best)) this.best = t;
  }

  /** Asks again those that have not answered, when {@link ASK_AGAIN_MS} passed since the last asking. */
  askAgain(now: number): void {
    if (now - this.#askedAt < ASK_AGAIN_MS) return;
    this.#askedAt = now;
    for (const id of this.#waiting) this.ask(id);
  }

  /**
   * Whether collecting is over: every member still in the view answered (members that left
   * are no longer waited for), or the deadline passed.
   */
  done(now: number, inView: (id: NodeId) => boolean): boolean {
    for (const id of [...this.#waiting]) if (!inView(id)) this.#waiting.delete(id);
    return this.#waiting.size === 0 || now >= this.#deadline;
  }
}
