/**
 * The bounded queue of membership updates waiting to be piggybacked (memberlist's
 * `TransmitLimitedQueue`): each update is sent a limited number of times, the least sent
 * first, and a newer update about a member replaces the older one.
 */
import type { GossipItem } from "./messages.ts";

interface Queued {
  item: GossipItem;
  transmits: number;
  seq: number;
}

export class GossipQueue {
  #byId = new Map<string, Queued>();
  #seq = 0;

  /** @param maxItems the bound; when full, the most-sent (then oldest) update is dropped */
  constructor(readonly maxItems: number) {}

  get size(): number {
    return this.#byId.size;
  }

  /** Queues an update, replacing any queued update about the same member. */
  push(item: GossipItem): void {
    this.#byId.delete(item.id);
    if (this.#byId.size >= this.maxItems) this.#dropOne();
    this.#byId.set(item.id, { item, transmits: 0, seq: this.#seq++ });
  }

  /**
   * Takes up to `max` updates to piggyback, least transmitted first, and counts the
   * transmission; updates sent `limit` times leave the queue.
   */
  take(max: number, limit: number): GossipItem[] {
    if (this.#byId.size === 0 || max <= 0) return [];
    let picked: Queued[];
    if (this.#byId.size <= max) picked = [...this.#byId.values()];
    else {
      picked = [...this.#byId.values()].sort((a, b) => a.transmits - b.transmits || b.seq - a.seq).slice(0, max);
    }
    const out: GossipItem[] = [];
    for (const q of picked) {
      out.push(q.item);
      q.transmits++;
      if (q.transmits >= limit) this.#byId.delete(q.item.id);
    }
    return out;
  }

  clear(): void {
    this.#byId.clear();
  }

  #dropOne(): void {
    let worst: Queued | undefined;
    for (const q of this.#byId.values()) {
      if (!worst || q.transmits > worst.transmits || (q.transmits === worst.transmits && q.seq < worst.seq)) worst = q;
    }
    if (worst) this.#byId.delete(worst.item.id);
  }
}

/** How many times each update is retransmitted in a cluster of `n` members. */
export function retransmitLimit(retransmitMult: number, n: number): number {
  return retransmitMult * Math.max(1, Math.ceil(Math.log10(n + 1)));
}
