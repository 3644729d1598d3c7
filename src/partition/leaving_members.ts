/**
 * The master's record of the members leaving gracefully (PartitionMemberLeaving): the planner
 * assigns them nothing and migrates their replicas away. When every data member is leaving (a
 * whole cluster stopped at once) no one can take the replicas, and each waited out its leave
 * timeout (30 s) and exited failing: after a grace period in which no data member was admitted
 * (a member starting meanwhile, as when old members stop while new ones start, takes the data),
 * `release` lets them go (PartitionLeaveNowhere).
 */
import type { Clock, Timer } from "../core/clock.ts";
import type { ClusterView } from "../cluster/view.ts";
import type { NodeId } from "../transport/transport.ts";

/** How long a master waits, once every data member is leaving, before it lets them go with nowhere to move to. */
export const LEAVE_NOWHERE_GRACE_MS = 5_000;

export class LeavingMembers {
  readonly ids = new Set<NodeId>();
  #timer: Timer | null = null;

  /**
   * @param view the master's member view
   * @param release called (on the master) with the leaving members to let go
   */
  constructor(
    private readonly view: ClusterView,
    private readonly clock: Clock,
    private readonly release: (ids: ReadonlySet<NodeId>) => void,
  ) {}

  has(id: NodeId): boolean {
    return this.ids.has(id);
  }

  /** Member `id` is leaving; the grace period starts when no data member stays. */
  add(id: NodeId): void {
    this.ids.add(id);
    if (this.#dataStays() || this.#timer !== null) return;
    this.#timer = this.clock.setTimer(LEAVE_NOWHERE_GRACE_MS, () => {
      this.#timer = null;
      if (this.view.isMaster() && !this.#dataStays()) this.release(this.ids);
    });
  }

  /** Forgets the members no longer in the view. */
  prune(): void {
    for (const id of [...this.ids]) if (!this.view.member(id)) this.ids.delete(id);
  }

  clear(): void {
    this.ids.clear();
    this.stop();
  }

  stop(): void {
    this.#timer?.cancel();
    this.#timer = null;
  }

  /** Whether some data member of the view is not leaving. */
  #dataStays(): boolean {
    return this.view.members().some((m) => !m.lite && !this.ids.has(m.id));
  }
}
