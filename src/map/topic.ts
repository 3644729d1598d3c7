/**
 * Topics (`node.getTopic(name)`, `node.getReliableTopic(name, { capacity })`): messages go
 * to a ring buffer in the partition of the topic's name (topic_ops.ts); subscribers read it
 * from a sequence number, polling the ring's primary every 10–200 ms, so a subscription
 * follows the ring across failover and migration. Publishes from one topic object are sent
 * one after another, so its messages keep their order. A subscriber that falls behind the
 * ring (or resumes from a sequence already dropped) gets a gap event with the count missed.
 *
 * `getTopic` is the same ring with the default capacity: delivery is best-effort in the sense
 * of Hazelcast's ITopic (a slow subscriber may miss messages, and is told so).
 */
import type { Clock } from "../core/clock.ts";
import { ShoalError } from "../core/errors.ts";
import type { Invoker } from "../invoke/invoker.ts";
import { OpCode } from "./operations.ts";
import { partitionOf } from "../partition/partition_of.ts";
import { decodeValue, encodeValue } from "../wire/codec.ts";
import { DEFAULT_TOPIC_CAPACITY, MAX_READ, MAX_TOPIC_CAPACITY, MAX_TOPIC_NAME } from "./topic_ops.ts";

/** What a subscription yields: a message with its sequence, or a gap of `missed` messages before `seq`. */
export type TopicEvent<T> = { seq: number; message: T } | { seq: number; missed: number };

export interface SubscribeOptions {
  signal?: AbortSignal;
  /** Sequence to start at (e.g. the last one seen + 1, to resume). @default the next one published */
  from?: number;
}

/** The topic API (`node.getTopic`, `node.getReliableTopic`). */
export interface ITopic<T = unknown> {
  readonly name: string;
  readonly capacity: number;
  publish(message: T): Promise<number>;
  subscribe(o?: SubscribeOptions): AsyncIterableIterator<TopicEvent<T>>;
}

export class Topic<T = unknown> implements ITopic<T> {
  readonly #p: number;
  readonly capacity: number;
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
    const cap = options.capacity ?? DEFAULT_TOPIC_CAPACITY;
    if (!Number.isInteger(cap) || cap < 1 || cap > MAX_TOPIC_CAPACITY) {
      throw new RangeError(`Cannot use topic capacity ${cap}: 1–${MAX_TOPIC_CAPACITY}`);
    }
    this.capacity = cap;
    this.#p = partitionOf(name, partitionCount);
  }

  /** Publishes `message` (after this object's earlier publishes). @returns its sequence number */
  publish(message: T): Promise<number> {
    if (message === undefined) return Promise.reject(new ShoalError("INVALID_ARGUMENT", "Cannot publish undefined"));
    const v = encodeValue(message);
    const run = this.#last.catch(() => {}).then(() =>
      this.invoker.invoke(this.#p, OpCode.TopicPublish, { m: this.name, v, n: this.capacity }, true)
    );
    this.#last = run;
    return run as Promise<number>;
  }

  /** Messages from `from` (default: those published from now on), as they come, until `signal` aborts. */
  async *subscribe(o: SubscribeOptions = {}): AsyncIterableIterator<TopicEvent<T>> {
    let next = o.from ?? -1;
    for (let idle = 0; !o.signal?.aborted;) {
      let r: { next: number; missed: number; msgs: Array<[number, Uint8Array]> };
      try {
        r = await this.invoker.invoke(
          this.#p,
          OpCode.TopicRead,
          { m: this.name, s: next, n: MAX_READ },
          false,
        ) as typeof r;
      } catch (e) {
        if (e instanceof ShoalError && (e.code === "TIMEOUT" || e.code === "OVERLOADED")) continue;
        throw e;
      }
      if (r.missed > 0) yield { seq: next, missed: r.missed };
      for (const [seq, bytes] of r.msgs) yield { seq, message: decodeValue(bytes) as T };
      idle = r.msgs.length > 0 ? 0 : idle + 1;
      next = r.next;
      if (r.msgs.length >= MAX_READ) continue;
      await new Promise<void>((resolve) => {
        const t = this.clock.setTimer(Math.min(200, 10 * 2 ** Math.min(idle, 5)), resolve);
        o.signal?.addEventListener("abort", () => (t.cancel(), resolve()), { once: true });
      });
    }
  }
}
