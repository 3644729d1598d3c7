/**
 * Entry listeners of one member (the listening side). A listener long-polls each partition
 * it listens to (all of them, or the one holding its key) through the invocation layer, so
 * requests go to the partition's current primary and are retried there after a crash or a
 * migration. Every replica derives the same events with the same `(seq, index)` from the
 * replicated writes, and primaries answer only with events of acknowledged writes, so a new
 * primary continues exactly after the listener's cursor.
 *
 * Listeners of the same map, key filter and `includeValue` on one member share a feed (one
 * set of polls); a listener that joins a running feed starts at the feed's position, which
 * is never ahead of "now".
 *
 * Delivery guarantee: for every write acknowledged to its caller and invoked after
 * `addEntryListener` resolved, the listener receives its event exactly once, in write order
 * per partition (so per key) — or a `gap` event naming the writes it may have missed: when
 * the partition's event log no longer reached back to the feed's position (a replica rebuilt
 * from a snapshot, or a feed that could not poll for longer than the log covers), or when
 * the listener's own queue was full. Each event carries its partition and `(seq, index)`,
 * which only grow per partition.
 *
 * A slow listener never blocks writes, nor the other listeners of its feed: its queue is
 * bounded (10,000 events), and what does not fit is dropped and reported as a gap.
 */
import type { Clock } from "../core/clock.ts";
import { ShoalError } from "../core/errors.ts";
import type { Invoker } from "../invoke/invoker.ts";
import { partitionOfBytes } from "../partition/partition_of.ts";
import { decodeValue } from "../wire/codec.ts";
import { encodeInput } from "./encode_input.ts";
import {
  after,
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
  /** Events queued per listener; beyond, they are dropped and reported as a gap. @default 10000 */
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

/**
 * One stream of a map's events into this member: its position in each partition it follows
 * and a poll loop per partition. Listeners with the same map, key filter and `includeValue`
 * share one feed, so ten listeners cost the primaries the polls of one.
 */
class Feed {
  readonly cursors = new Map<number, { s: number; i: number }>();
  readonly subs = new Set<Subscription<unknown, unknown>>();
  closed = false;
  /** Resolves once every partition has a starting position (rejects if one cannot be had). */
  ready: Promise<void> = Promise.resolve();

  constructor(
    readonly id: string,
    readonly map: string,
    readonly partitions: number[],
    readonly k: Uint8Array | undefined,
    readonly includeValue: boolean,
  ) {}
}

/** One registered listener: where it started, its bounded queue, and the feed it reads. */
class Subscription<K, V> {
  readonly queue: ListenerQueue<EntryEvent<K, V>>;
  /** Per partition, the position it started after: only later events are its own. */
  readonly start: Map<number, { s: number; i: number }>;
  closed = false;

  constructor(readonly id: string, readonly feed: Feed, capacity: number) {
    this.queue = new ListenerQueue(capacity);
    this.start = new Map(feed.cursors);
  }

  close(): void {
    this.closed = true;
    this.queue.wake();
  }
}

/** The entry listeners registered on one member. */
export class EntryListeners {
  readonly config: Required<EntryListenersConfig>;
  #subs = new Map<string, Subscription<unknown, unknown>>();
  #feeds = new Map<string, Feed>();
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
    sub.feed.subs.delete(sub);
    this.#closeFeedIfIdle(sub.feed);
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
    // The signal is watched from the start: it was only after open() resolved, so one that had
    // aborted before, or while the listener registered, was never seen and the loop waited for
    // ever with its polls running (found by an internal review).
    const signal = opts.signal;
    if (signal?.aborted) return;
    let sub: EventSubscription<K, V> | undefined;
    let abort!: () => void;
    const aborted = new Promise<null>((r) => abort = () => r(null));
    const onAbort = () => {
      abort();
      sub?.close();
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      const opening = this.open<K, V>(map, opts);
      sub = (await (signal ? Promise.race([opening, aborted]) : opening)) ?? undefined;
      if (!sub) {
        // Aborted while registering: end now, and close the subscription once it exists.
        opening.then((s) => s.close(), () => {});
        return;
      }
      // Aborted between open() resolving and this line: onAbort found no subscription to close.
      if (signal?.aborted) return;
      yield* sub;
    } finally {
      signal?.removeEventListener("abort", onAbort);
      sub?.close();
    }
  }

  /** Registers a subscription (resolves once it has its starting positions) to iterate once. */
  async open<K, V>(map: string, opts: EntryListenerOptions<K> = {}): Promise<EventSubscription<K, V>> {
    const sub = await this.#subscribe<K, V>(map, opts);
    const start = new Map(sub.start);
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
      k = encodeInput(opts.key, "the listener's key");
      partitions = [partitionOfBytes(k, this.partitionCount)];
    } else partitions = Array.from({ length: this.partitionCount }, (_, i) => i);
    if (opts.local) {
      const mine = new Set(this.localPartitions());
      partitions = partitions.filter((p) => mine.has(p));
    }
    const includeValue = opts.includeValue !== false;
    // Listeners that start from now share a feed; a resume (`from`) or a local listener has its own.
    const shared = !opts.from && !opts.local;
    const keyHex = k ? Array.from(k, (x) => x.toString(16).padStart(2, "0")).join("") : "*";
    const feedId = shared ? `${map}\u0000${keyHex}\u0000${includeValue}` : `own:${this.#next++}`;
    let feed = this.#feeds.get(feedId);
    if (!feed) {
      if (this.#polls + partitions.length > this.config.maxPolls) {
        throw new ShoalError(
          "OVERLOADED",
          `Cannot add an entry listener on map "${map}": it needs ${partitions.length} polls and this member's ` +
            `listeners hold ${this.#polls} of at most ${this.config.maxPolls} (listen to a key, or use fewer listeners)`,
        );
      }
      feed = this.#openFeed(feedId, map, partitions, k, includeValue, opts.from);
    }
    try {
      await feed.ready;
    } catch (e) {
      this.#closeFeedIfIdle(feed);
      throw e;
    }
    if (feed.closed) throw new ShoalError("SHUTDOWN", "Cannot add an entry listener: its feed was closed");
    const id = `l${this.#next++}`;
    const sub = new Subscription<K, V>(id, feed, this.config.queueCapacity);
    this.#subs.set(id, sub as Subscription<unknown, unknown>);
    feed.subs.add(sub as Subscription<unknown, unknown>);
    return sub;
  }

  /** A new feed: its starting positions (from `from`, else the primaries' "now"), then its poll loops. */
  #openFeed(
    id: string,
    map: string,
    partitions: number[],
    k: Uint8Array | undefined,
    includeValue: boolean,
    from: EntryListenerOptions["from"],
  ): Feed {
    const feed = new Feed(id, map, partitions, k, includeValue);
    this.#feeds.set(id, feed);
    this.#polls += partitions.length;
    feed.ready = (async () => {
      const todo: number[] = [];
      for (const p of partitions) {
        const c = from?.get(p);
        if (c && Number.isInteger(c.s) && Number.isInteger(c.i) && c.s >= 0 && c.i >= -1) feed.cursors.set(p, c);
        else todo.push(p);
      }
      // Starting positions, a bounded number of partitions at a time.
      await Promise.all(Array.from({ length: Math.min(32, todo.length) }, async () => {
        for (let p = todo.shift(); p !== undefined; p = todo.shift()) {
          const a = await this.#poll(feed, p, { s: -1, i: BEFORE });
          feed.cursors.set(p, { s: a.s, i: a.i });
        }
      }));
      for (const p of partitions) void this.#loop(feed, p);
    })();
    // A feed whose start failed runs no loop: its polls are given back once the start's are answered.
    feed.ready.catch(() => (this.#polls -= partitions.length));
    return feed;
  }

  /**
   * Closes a feed no listener reads any more. Its loops stop after their current poll, and each
   * gives its poll back to `maxPolls` then: they were given back at once, while the polls were
   * still held on their primaries and pending here, so opening and closing listeners piled up
   * pending polls past `maxPolls` (found by an internal review).
   */
  #closeFeedIfIdle(feed: Feed): void {
    if (feed.subs.size > 0 || feed.closed) return;
    feed.closed = true;
    this.#feeds.delete(feed.id);
  }

  async #poll(feed: Feed, p: number, c: { s: number; i: number }): Promise<EventsAnswer> {
    this.counters.polls++;
    // Held on the primary for at most half the invoker's attempt timeout, so a quiet poll is answered, not retried.
    const h = Math.floor(this.invoker.config.attemptTimeoutMs / 2);
    const body: Record<string, unknown> = { m: feed.map, s: c.s, i: c.i, n: this.config.pollBatch, h, ct: 1 };
    if (feed.k) body.k = feed.k;
    if (!feed.includeValue) body.nv = true;
    const r = await this.invoker.invoke(p, OpCode.Events, body, false) as EventsAnswer;
    if (!r || typeof r.s !== "number" || typeof r.i !== "number" || !Array.isArray(r.ev)) {
      throw new ShoalError("INTERNAL", "Malformed events answer");
    }
    return r;
  }

  async #loop(feed: Feed, p: number): Promise<void> {
    try {
      await this.#pollLoop(feed, p);
    } finally {
      this.#polls--; // this loop's poll is answered and no other follows
    }
  }

  async #pollLoop(feed: Feed, p: number): Promise<void> {
    while (!feed.closed) {
      const c = feed.cursors.get(p)!;
      let a: EventsAnswer;
      try {
        a = await this.#poll(feed, p, c);
      } catch {
        this.counters.pollErrors++;
        if (feed.closed) return;
        await new Promise<void>((r) => this.clock.setTimer(this.config.retryDelayMs, r));
        continue;
      }
      if (feed.closed) return;
      if (a.gap) {
        this.counters.gaps++;
        const gap = { type: "gap" as const, partition: p, fromSeq: a.gap[0], toSeq: a.gap[1] };
        for (const sub of feed.subs) sub.queue.pushGap(gap);
        if (after(c.s, c.i, { seq: a.s, i: a.i })) {
          // The cursor lay past the primary's whole history (lost with a copy, or a made-up resume
          // position): go on from where the primary is, the listeners' starts too, or no later
          // event would ever be after them.
          feed.cursors.set(p, { s: a.s, i: a.i });
          for (const sub of feed.subs) {
            const st = sub.start.get(p);
            if (st && after(st.s, st.i, { seq: a.s, i: a.i })) sub.start.set(p, { s: a.s, i: a.i });
          }
          continue;
        }
      }
      for (const [seq, i, type, key, value, old] of a.ev) {
        // Drop anything not after the cursor (cannot happen with a correct primary; cheap to guard).
        if (!after(seq, i, { seq: c.s, i: c.i })) continue;
        const t = entryEventTypes[type] ?? "updated";
        const e: EntryEvent<unknown, unknown> = t === "cleared"
          ? { type: t, map: feed.map, partition: p, seq, index: i }
          : { type: t, map: feed.map, key: decodeValue(key), partition: p, seq, index: i };
        if (feed.includeValue && e.type !== "cleared") {
          if (value) e.value = decodeValue(value);
          if (old) e.oldValue = decodeValue(old);
        }
        this.counters.events++;
        // Each listener gets the events after its own start (one that joined a running feed starts where it was).
        for (const sub of feed.subs) {
          const st = sub.start.get(p);
          if (!st || after(seq, i, { seq: st.s, i: st.i })) sub.queue.push(e);
        }
      }
      if (after(a.s, a.i, { seq: c.s, i: c.i })) feed.cursors.set(p, { s: a.s, i: a.i });
    }
  }

  async #pump<K, V>(sub: Subscription<K, V>, listener: EntryListener<K, V>): Promise<void> {
    while (!sub.closed) {
      const e = sub.queue.shift();
      if (!e) {
        await sub.queue.wait();
        continue;
      }
      try {
        await listener(e);
      } catch {
        // A throwing listener does not stop delivery.
      }
    }
  }
}
