/**
 * Requests a primary holds back per partition, in arrival order and bounded per partition:
 * listeners' event polls (event_polls.ts) and parked queue and lock waits (parked_ops.ts).
 * When the member stops serving a partition, {@link release} answers its requests so their
 * callers retry at the new primary.
 */
export class HeldRequests<T> {
  protected readonly byP = new Map<number, T[]>();

  /**
   * @param maxPerPartition most requests held per partition
   * @param onRelease answers one request of a partition this member no longer serves
   */
  constructor(readonly maxPerPartition: number, readonly onRelease: (x: T) => void) {}

  /** Holds `x` in partition `p`. @returns false when `p` holds too many already */
  add(p: number, x: T): boolean {
    let l = this.byP.get(p);
    if (!l) (l = [], this.byP.set(p, l));
    if (l.length >= this.maxPerPartition) return false;
    l.push(x);
    return true;
  }

  /** Whether partition `p` holds requests. */
  has(p: number): boolean {
    return this.byP.has(p);
  }

  /** Removes and returns `p`'s requests that match `pred`, in arrival order. */
  take(p: number, pred: (x: T) => boolean = () => true): T[] {
    const l = this.byP.get(p);
    if (!l) return [];
    const out: T[] = [], keep: T[] = [];
    for (const x of l) (pred(x) ? out : keep).push(x);
    if (keep.length > 0) this.byP.set(p, keep);
    else this.byP.delete(p);
    return out;
  }

  /** The partitions holding requests. */
  partitions(): number[] {
    return [...this.byP.keys()];
  }

  /** Answers `p`'s requests with {@link onRelease} (this member no longer serves it). */
  release(p: number): void {
    for (const x of this.take(p)) this.onRelease(x);
  }

  releaseAll(): void {
    for (const p of this.partitions()) this.release(p);
  }

  get size(): number {
    let n = 0;
    for (const l of this.byP.values()) n += l.length;
    return n;
  }
}
