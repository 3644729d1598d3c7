/**
 * Entry listeners of one member (the listening side). A listener long-polls each partition
 * it listens to (all of them, or the one holding its key) through the invocation layer, so
 * requests go to the partition's current primary and are retried there after a crash or a
 * migration. Every replica derives the same events with the same `(seq, index)` from the
 * replicated writes, and primaries answer only with events of acknowledged writes, so a new
 * primary continues exactly after the listener's cursor.
 *
 * Delivery guarantee: for every write acknowledged to its caller and invoked after
 * `addEntryListener` resolved, the listener receives its event exactly once, in write order
 * per partition (so per key) — or, when the partition's event log no longer reached back to
 * the listener's cursor (it fell more than the log's length behind, or a replica was rebuilt
 * from a snapshot), a `gap` event naming the writes it may have missed. Each event carries
 * its partition and `(seq, index)`, which only grow per partition.
 *
 * A slow listener never blocks writes: its queue is bounded, and while it is full the
 * listener stops polling (the primary's event log keeps going; if it wraps past the cursor,
 * the listener gets a gap).
 */
import type { Clock } from "../core/clock.ts";
import { ShoalError } from "../core/errors.ts";
import type { Invoker } from "../invoke/invoker.ts";
import { partitionOfBytes } from "../partition/partition_of.ts";
import { decodeValue, encodeValue } from "../wire/codec.ts";
import {
  type EntryEvent,
  entryEventTypes,
  type EntryListener,
  type EntryListenerOptions,
  type EventSubscription,
  type GapEvent,
  ListenerQueue,
} from "./entry_events.ts";

export type { EntryListener, EntryListenerOptions, EventSubscription };
import type { EventsAnswer } from "./event_polls.ts";
import { OpCode } from "./operations.ts";

export interface EntryListenersConfig {
  /** Events queued per listener before it stops polling. @default 10000 */
  queueCapacity?: number;
  /** Events one poll asks for. @default 500 */
  pollBatch?: number;
  /** Listeners on this member. @default 256 */
  maxListeners?: number;
  /**
   * Long polls this member's listeners keep open in all (one per partition a listener
   * follows: all of them, or its key's), kept well below the invoker's `maxPendingCalls`
   * so that listeners never starve the member's own operations. @default 4096
   */
  maxPolls?: number;
  /** Wait after a failed poll before polling again. @default 200 */
  retryDelayMs?: number;
}

/** Cursor index meaning "before every effect of this write". */
const BEFORE = -1;

/** One registered listener: its cursors, queue and poll loops. */
class Subscription<K, V> {
  readonly queue: ListenerQueue<EntryEvent<K, V>>;
  readonly cursors = new Map<number, { s: number; i: number }>();
  closed = false;
  #flowWaiters: Array<() => void> = [];

  constructor(
    readonly id: string,
    readonly map: string,
    readonly partitions: number[],
    readonly k: Uint8Array | undefined,
    readonly includeValue: boolean,
    capacity: number,
  ) {
    this.queue = new ListenerQueue(capacity);
  }

  /** Resolves when the queue has room for `batch` more events (flow control: a full listener stops polling). */
  room(batch: number): Promise<void> {
    if (this.closed || this.queue.length + batch <= this.queue.capacity) return Promise.resolve();
    return new Promise((r) => this.#flowWaiters.push(r));
  }

  drained(): void {
    if (this.#flowWaiters.length > 0 && this.queue.length < this.queue.capacity / 2) this.#wakeAll();
  }

  close(): void {
    this.closed = true;
    this.queue.wake();
    this.#wakeAll();
  }

  #wakeAll(): void {
    for (const w of this.#flowWaiters.splice(0)) w();
  }
}

/** The entry listeners registered on one member. */
export class EntryListeners {
  readonly config: Required<EntryListenersConfig>;
  #subs = new Map<string, Subscription<unknown, unknown>>();
  #next = 1;
  #polls = 0;
  /** Counters for /metrics and tests. */
  readonly counters = { polls: 0, pollErrors: 0, events: 0, gaps: 0 };

  constructor(
    readonly invoker: Invoker,
    readonly partitionCount: number,
    readonly clock: Clock,
    /** Partitions whose primary is this member now (for `local`). */
    readonly localPartitions: () => number[],
    config: EntryListenersConfig = {},
  ) {
    this.config = {
      queueCapacity: 10_000,
      pollBatch: 500,
      maxListeners: 256,
      maxPolls: 4096,
      retryDelayMs: 200,
      ...config,
    };
    if (this.config.pollBatch > this.config.queueCapacity) {
      throw new RangeError("Cannot configure entry listeners: pollBatch exceeds queueCapacity");
    }
  }

  /**
   * Registers a listener and resolves with its id once every partition it listens to has
   * given its starting cursor (from then on, every acknowledged write has an event for it).
   */
  async add<K, V>(map: string, listener: EntryListener<K, V>, opts: EntryListenerOptions<K> = {}): Promise<string> {
    const sub = await this.#subscribe<K, V>(map, opts);
    void this.#pump(sub, listener);
    return sub.id;
  }

  /** Removes a listener. @returns whether it was registered */
  remove(id: string): boolean {
    const sub = this.#subs.get(id);
    if (!sub) return false;
    sub.close();
    this.#subs.delete(id);
    this.#polls -= sub.partitions.length;
    return true;
  }

  /** Long polls the registered listeners keep open. */
  get polls(): number {
    return this.#polls;
  }

  /** Events as an async iterator; ends when `signal` aborts (or `return()` is called). */
  async *events<K, V>(
    map: string,
    opts: EntryListenerOptions<K> & { signal?: AbortSignal } = {},
  ): AsyncIterableIterator<EntryEvent<K, V> | GapEvent> {
    const sub = await this.open<K, V>(map, opts);
    const onAbort = () => sub.close();
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    try {
      yield* sub;
    } finally {
      opts.signal?.removeEventListener("abort", onAbort);
      sub.close();
    }
  }

  /** Registers a subscription (resolves once it has its starting positions) to iterate once. */
  async open<K, V>(map: string, opts: EntryListenerOptions<K> = {}): Promise<EventSubscription<K, V>> {
    const sub = await this.#subscribe<K, V>(map, opts);
    const start = new Map(sub.cursors);
    const close = () => void this.remove(sub.id);
    return {
      id: sub.id,
      start,
      close,
      async *[Symbol.asyncIterator]() {
        try {
          while (!sub.closed) {
            const e = sub.queue.shift();
            if (e) {
              sub.drained();
              yield e;
              continue;
            }
            await sub.queue.wait();
          }
        } finally {
          close();
        }
      },
    };
  }

  get size(): number {
    return this.#subs.size;
  }

  stop(): void {
    for (const id of [...this.#subs.keys()]) this.remove(id);
  }

  async #subscribe<K, V>(map: string, opts: EntryListenerOptions<K>): Promise<Subscription<K, V>> {
    if (this.#subs.size >= this.config.maxListeners) {
      throw new ShoalError("OVERLOADED", `Cannot add an entry listener: ${this.config.maxListeners} are registered`);
    }
    let k: Uint8Array | undefined;
    let partitions: number[];
    if (opts.key !== undefined) {
      k = encodeValue(opts.key);
      partitions = [partitionOfBytes(k, this.partitionCount)];
    } else partitions = Array.from({ length: this.partitionCount }, (_, i) => i);
    if (opts.local) {
      const mine = new Set(this.localPartitions());
      partitions = partitions.filter((p) => mine.has(p));
    }
    if (this.#polls + partitions.length > this.config.maxPolls) {
      throw new ShoalError(
        "OVERLOADED",
        `Cannot add an entry listener on map "${map}": it needs ${partitions.length} polls and this member's ` +
          `listeners hold ${this.#polls} of at most ${this.config.maxPolls} (listen to a key, or use fewer listeners)`,
      );
    }
    const id = `l${this.#next++}`;
    const sub = new Subscription<K, V>(id, map, partitions, k, opts.includeValue !== false, this.config.queueCapacity);
    this.#subs.set(id, sub as Subscription<unknown, unknown>);
    this.#polls += partitions.length;
    try {
      // Starting cursors, a bounded number of partitions at a time.
      const todo: number[] = [];
      for (const p of partitions) {
        const c = opts.from?.get(p);
        if (c && Number.isInteger(c.s) && Number.isInteger(c.i) && c.s >= 0 && c.i >= -1) sub.cursors.set(p, c);
        else todo.push(p);
      }
      await Promise.all(Array.from({ length: Math.min(32, todo.length) }, async () => {
        for (let p = todo.shift(); p !== undefined; p = todo.shift()) {
          const a = await this.#poll(sub, p, { s: -1, i: BEFORE });
          sub.cursors.set(p, { s: a.s, i: a.i });
        }
      }));
    } catch (e) {
      this.remove(id);
      throw e;
    }
    for (const p of partitions) void this.#loop(sub, p);
    return sub;
  }

  async #poll<K, V>(sub: Subscription<K, V>, p: number, c: { s: number; i: number }): Promise<EventsAnswer> {
    this.counters.polls++;
    // Held on the primary for at most half the invoker's attempt timeout, so a quiet poll is answered, not retried.
    const h = Math.floor(this.invoker.config.attemptTimeoutMs / 2);
    const body: Record<string, unknown> = { m: sub.map, s: c.s, i: c.i, n: this.config.pollBatch, h };
    if (sub.k) body.k = sub.k;
    if (!sub.includeValue) body.nv = true;
    const r = await this.invoker.invoke(p, OpCode.Events, body, false) as EventsAnswer;
    if (!r || typeof r.s !== "number" || typeof r.i !== "number" || !Array.isArray(r.ev)) {
      throw new ShoalError("INTERNAL", "Malformed events answer");
    }
    return r;
  }

  async #loop<K, V>(sub: Subscription<K, V>, p: number): Promise<void> {
    while (!sub.closed) {
      await sub.room(this.config.pollBatch);
      if (sub.closed) return;
      const c = sub.cursors.get(p)!;
      let a: EventsAnswer;
      try {
        a = await this.#poll(sub, p, c);
      } catch {
        this.counters.pollErrors++;
        if (sub.closed) return;
        await new Promise<void>((r) => this.clock.setTimer(this.config.retryDelayMs, r));
        continue;
      }
      if (sub.closed) return;
      if (a.gap) {
        this.counters.gaps++;
        sub.queue.pushGap({ type: "gap", partition: p, fromSeq: a.gap[0], toSeq: a.gap[1] });
      }
      for (const [seq, i, type, key, value, old] of a.ev) {
        // Drop anything not after the cursor (cannot happen with a correct primary; cheap to guard).
        if (seq < c.s || (seq === c.s && i <= c.i)) continue;
        const e: EntryEvent<K, V> = {
          type: entryEventTypes[type] ?? "updated",
          map: sub.map,
          key: decodeValue(key) as K,
          partition: p,
          seq,
          index: i,
        };
        if (sub.includeValue) {
          if (value) e.value = decodeValue(value) as V;
          if (old) e.oldValue = decodeValue(old) as V;
        }
        this.counters.events++;
        sub.queue.push(e);
      }
      if (a.s > c.s || (a.s === c.s && a.i > c.i)) sub.cursors.set(p, { s: a.s, i: a.i });
    }
  }

  async #pump<K, V>(sub: Subscription<K, V>, listener: EntryListener<K, V>): Promise<void> {
    while (!sub.closed) {
      const e = sub.queue.shift();
      if (!e) {
        await sub.queue.wait();
        continue;
      }
      sub.drained();
      try {
        await listener(e);
      } catch {
        // A throwing listener does not stop delivery.
      }
    }
  }
}
