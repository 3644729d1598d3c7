/**
 * Topics (`node.getTopic(name)`, `node.getReliableTopic(name, { capacity })`): messages go
 * to a ring buffer in the partition of the topic's name (topic_ops.ts); subscribers read it
 * from a sequence number, polling the ring's primary every 10–200 ms, so a subscription
 * follows the ring across failover and migration. Publishes from one topic object are sent
 * one after another, so its messages keep their order. A subscriber that falls behind the
 * ring (or resumes from a sequence already dropped) gets a gap event with the count missed.
 *
 * `getTopic` is the same ring, with the capacity last set (the default for a topic that never
 * had one set): delivery is best-effort in the sense of Hazelcast's ITopic (a slow subscriber
 * may miss messages, and is told so). The capacity belongs to the topic: a handle given one sets
 * it with its publishes, a handle without one keeps it.
 */
import type { Clock, Timer } from "../core/clock.ts";
import { ShoalError } from "../core/errors.ts";
import type { Invoker } from "../invoke/invoker.ts";
import { OpCode } from "./operations.ts";
import { partitionOf } from "../partition/partition_of.ts";
import { decodeValue } from "../wire/codec.ts";
import { encodeInput } from "./encode_input.ts";
import { MAX_READ, MAX_TOPIC_CAPACITY, MAX_TOPIC_NAME } from "./topic_ops.ts";

/** What a subscription yields: a message with its sequence, or a gap: `missed` messages from `seq` on were dropped unread. */
export type TopicEvent<T> = { seq: number; message: T } | { seq: number; missed: number };

export interface SubscribeOptions {
  signal?: AbortSignal;
  /** Sequence to start at (e.g. the last one seen + 1, to resume). @default the next one published */
  from?: number;
}

/** A subscription's events, and the moment its start was fixed. */
export interface TopicSubscription<T> extends AsyncIterableIterator<TopicEvent<T>> {
  /**
   * The sequence the subscription starts at, once the ring's primary answered its first read
   * (sent when `subscribe` is called). Every message published after it resolves is yielded. A
   * subscription without `from` starts at the next message published when the primary answers,
   * so one published between `subscribe()` and then may come before the start; await `ready`
   * before what must be seen (Hazelcast's `addMessageListener` returns at the same point).
   * Rejects when `signal` aborts first, or with the first read's error.
   */
  readonly ready: Promise<number>;
}

/** The topic API (`node.getTopic`, `node.getReliableTopic`). */
export interface ITopic<T = unknown> {
  readonly name: string;
  /**
   * The ring capacity this handle's publishes set (undefined: they keep the topic's own, the
   * default for a topic that never had one set).
   */
  readonly capacity: number | undefined;
  publish(message: T): Promise<number>;
  subscribe(o?: SubscribeOptions): TopicSubscription<T>;
}

/** A TopicRead's answer (topic_ops.ts). */
interface ReadAnswer {
  from: number;
  next: number;
  missed: number;
  msgs: Array<[number, Uint8Array]>;
}

export class Topic<T = unknown> implements ITopic<T> {
  readonly #p: number;
  readonly capacity: number | undefined;
  #last: Promise<unknown> = Promise.resolve();

  constructor(
    readonly name: string,
    readonly invoker: Invoker,
    partitionCount: number,
    readonly clock: Clock,
    options: { capacity?: number } = {},
  ) {
    if (typeof name !== "string" || name.length === 0 || name.length > MAX_TOPIC_NAME) {
      throw new RangeError(`Cannot use topic name ${JSON.stringify(name)}: 1–${MAX_TOPIC_NAME} characters`);
    }
    const cap = options.capacity;
    if (cap !== undefined && (!Number.isInteger(cap) || cap < 1 || cap > MAX_TOPIC_CAPACITY)) {
      throw new RangeError(`Cannot use topic capacity ${cap}: 1–${MAX_TOPIC_CAPACITY}`);
    }
    this.capacity = cap;
    this.#p = partitionOf(name, partitionCount);
  }

  /** Publishes `message` (after this object's earlier publishes). @returns its sequence number */
  publish(message: T): Promise<number> {
    if (message === undefined) return Promise.reject(new ShoalError("INVALID_ARGUMENT", "Cannot publish undefined"));
    // publish is not async: a throw here reached the caller synchronously, past its `.catch`
    // (found by an internal review). The returned promise carries the failure instead.
    let v: Uint8Array;
    try {
      v = encodeInput(message, "the topic message");
    } catch (e) {
      return Promise.reject(e);
    }
    const run = this.#last.catch(() => {}).then(() =>
      this.invoker.invoke(
        this.#p,
        OpCode.TopicPublish,
        this.capacity === undefined ? { m: this.name, v } : { m: this.name, v, n: this.capacity },
        true,
      )
    );
    this.#last = run;
    return run as Promise<number>;
  }

  /**
   * Messages from `from` (default: those published from now on), as they come, until `signal`
   * aborts. The first read goes out at once; see {@link TopicSubscription.ready}.
   */
  subscribe(o: SubscribeOptions = {}): TopicSubscription<T> {
    const first = this.#read(o.from ?? -1, o.signal);
    const ready = first.then((r) => {
      if (r === null) throw new ShoalError("SHUTDOWN", `The subscription to topic ${this.name} was aborted`);
      return r.from;
    });
    // Nobody may wait on them: a failed first read is the iterator's error (and `ready`'s).
    first.catch(() => {});
    ready.catch(() => {});
    return Object.assign(this.#events(first, o.signal), { ready });
  }

  async *#events(first: Promise<ReadAnswer | null>, signal?: AbortSignal): AsyncGenerator<TopicEvent<T>> {
    let r = await first;
    for (let idle = 0; r !== null;) {
      if (r.missed > 0) yield { seq: r.from, missed: r.missed };
      for (const [seq, bytes] of r.msgs) yield { seq, message: decodeValue(bytes) as T };
      idle = r.msgs.length > 0 ? 0 : idle + 1;
      const next = r.next;
      if (r.msgs.length < MAX_READ) {
        let t: Timer | undefined;
        await orAbort(
          new Promise<void>((resolve) => t = this.clock.setTimer(Math.min(200, 10 * 2 ** Math.min(idle, 5)), resolve)),
          signal,
        );
        t?.cancel();
      }
      r = await this.#read(next, signal);
    }
  }

  /**
   * One read of the ring from `next`, retried while it times out or the primary is overloaded,
   * after a pause that doubles from 50 ms to 1 s; null once `signal` aborts (at once: a read
   * still under way is left to end on its own). The retry came at once: an invoker that refuses
   * OVERLOADED does so without waiting, so the loop never let the member's event loop run, the
   * calls in flight could never end, and the member was stuck for good (found by an internal review).
   */
  async #read(next: number, signal?: AbortSignal): Promise<ReadAnswer | null> {
    for (let pause = 50; !signal?.aborted; pause = Math.min(pause * 2, 1000)) {
      try {
        const read = this.invoker.invoke(this.#p, OpCode.TopicRead, { m: this.name, s: next, n: MAX_READ }, false);
        read.catch(() => {});
        return await orAbort(read as Promise<ReadAnswer>, signal);
      } catch (e) {
        if (!(e instanceof ShoalError && (e.code === "TIMEOUT" || e.code === "OVERLOADED"))) throw e;
      }
      let t: Timer | undefined;
      await orAbort(new Promise<void>((resolve) => t = this.clock.setTimer(pause, resolve)), signal);
      t?.cancel();
    }
    return null;
  }
}

/**
 * `p`'s outcome, or null as soon as `signal` aborts. The abort listener is removed once `p`
 * settles: a subscription waits on its signal for every poll, and a listener left behind each
 * time would grow without bound.
 */
function orAbort<X>(p: Promise<X>, signal?: AbortSignal): Promise<X | null> {
  if (!signal) return p;
  if (signal.aborted) return Promise.resolve(null);
  return new Promise<X | null>((resolve, reject) => {
    const onAbort = () => resolve(null);
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(
      (v) => (signal.removeEventListener("abort", onAbort), resolve(v)),
      (e) => (signal.removeEventListener("abort", onAbort), reject(e)),
    );
  });
}
