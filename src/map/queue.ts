/**
 * The distributed queue's client side (`node.getQueue(name, { capacity })`): every call goes
 * through the invocation layer to the primary of the partition of the queue's name (see
 * queue_ops.ts). Waiting polls and offers park on the primary (parked_ops.ts), which answers
 * them when an item (or room) comes; a parked wait follows the partition to a new primary.
 */
import type { Clock } from "../core/clock.ts";
import { ShoalError } from "../core/errors.ts";
import type { Invoker } from "../invoke/invoker.ts";
import { OpCode } from "./operations.ts";
import { partitionOf } from "../partition/partition_of.ts";
import { decodeValue } from "../wire/codec.ts";
import { encodeInput } from "./encode_input.ts";
import { MAX_DRAIN, MAX_QUEUE_NAME } from "./queue_ops.ts";
import { parkTime, pause } from "./parked_ops.ts";

export interface QueueOptions {
  /**
   * Most items the queue holds; an offer to a full queue returns false. The capacity belongs to
   * the queue: given, this handle's offers set it; left out, they keep the one last set (100,000
   * for a queue that never had one).
   */
  capacity?: number;
}

export interface WaitOptions {
  /** Wait this long at most. @default 0 (no wait) */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** The queue API (`node.getQueue`). */
export interface IQueue<T = unknown> extends AsyncIterable<T> {
  readonly name: string;
  /** The capacity this handle sets (undefined: it keeps the queue's own; see {@link info}). */
  readonly capacity: number | undefined;
  offer(item: T, o?: WaitOptions): Promise<boolean>;
  poll(o?: WaitOptions): Promise<T | undefined>;
  take(o?: { signal?: AbortSignal }): Promise<T>;
  peek(): Promise<T | undefined>;
  size(): Promise<number>;
  /** The queue's size and its capacity as last set. */
  info(): Promise<{ size: number; capacity: number }>;
  drain(max?: number): Promise<T[]>;
}

/** A bounded FIFO queue shared by the cluster. */
export class DistributedQueue<T = unknown> implements IQueue<T> {
  readonly #p: number;
  readonly capacity: number | undefined;

  constructor(
    readonly name: string,
    readonly invoker: Invoker,
    partitionCount: number,
    readonly clock: Clock,
    options: QueueOptions = {},
  ) {
    if (typeof name !== "string" || name.length === 0 || name.length > MAX_QUEUE_NAME) {
      throw new RangeError(`Cannot use queue name ${JSON.stringify(name)}: 1–${MAX_QUEUE_NAME} characters`);
    }
    const cap = options.capacity;
    if (cap !== undefined && (!Number.isSafeInteger(cap) || cap < 1)) {
      throw new RangeError(`Cannot use queue capacity ${cap}: a positive integer`);
    }
    this.capacity = cap;
    this.#p = partitionOf(name, partitionCount);
  }

  #call(op: number, body: Record<string, unknown>, write: boolean, parkMs = 0): Promise<unknown> {
    return this.invoker.invoke(
      this.#p,
      op,
      { m: this.name, ...body, ...(parkMs > 0 ? { pk: parkMs } : {}) },
      write,
      parkMs,
    );
  }

  /**
   * Repeats `attempt` until it yields a value or the wait is over; undefined then. Each
   * attempt may park on the primary for the time it is given (parked_ops.ts): the primary runs
   * it again as soon as it can succeed, so the caller asks again only when a park time ran
   * out. An attempt answered at once without parking (the primary parks too many) is repeated
   * after a short pause. An abort ends the wait once the attempt in flight is answered (an
   * item it took is returned, not lost).
   */
  async #waiting<R>(attempt: (parkMs: number) => Promise<R | undefined>, o: WaitOptions): Promise<R | undefined> {
    const t = o.timeoutMs ?? 0;
    // NaN made a deadline nothing reaches and a park time of NaN: the call asked again and again
    // for ever, without a pause (found by an internal review). A negative wait is none.
    if (typeof t !== "number" || Number.isNaN(t)) {
      throw new RangeError(`Cannot wait ${String(t)} ms: a number of milliseconds (Infinity: no limit)`);
    }
    const deadline = this.clock.now() + Math.max(0, t);
    for (let quick = 0;;) {
      const parkMs = o.signal?.aborted ? 0 : parkTime(deadline - this.clock.now());
      const asked = this.clock.now();
      const r = await attempt(parkMs);
      if (r !== undefined) return r;
      if (o.signal?.aborted || this.clock.now() >= deadline) return undefined;
      if (parkMs === 0 || this.clock.now() - asked < parkMs / 2) {
        await pause(this.clock, Math.min(200, 10 * 2 ** Math.min(quick++, 5), deadline - this.clock.now()), o.signal);
      } else quick = 0;
    }
  }

  /**
   * Appends `item`, waiting up to `timeoutMs` for room. Acknowledged (true) once the primary
   * and every sync backup hold it. @returns false when the queue stayed full
   */
  async offer(item: T, o: WaitOptions = {}): Promise<boolean> {
    if (item === undefined) throw new ShoalError("INVALID_ARGUMENT", "Cannot offer undefined");
    const v = encodeInput(item, "the queue item");
    const ok = await this.#waiting(
      async (pk) =>
        (await this.#call(
            OpCode.QueueOffer,
            this.capacity === undefined ? { v } : { v, n: this.capacity },
            true,
            pk,
          )) ===
            true
          ? true
          : undefined,
      o,
    );
    return ok === true;
  }

  /** Takes the oldest item, waiting up to `timeoutMs` for one. @returns undefined when none came */
  poll(o: WaitOptions = {}): Promise<T | undefined> {
    return this.#waiting(async (pk) => {
      const r = await this.#call(OpCode.QueuePoll, {}, true, pk);
      return r instanceof Uint8Array ? decodeValue(r) as T : undefined;
    }, o);
  }

  /** Takes the oldest item, waiting as long as it takes (or until `signal` aborts: then throws). */
  async take(o: { signal?: AbortSignal } = {}): Promise<T> {
    for (;;) {
      const r = await this.poll({ timeoutMs: 10_000, signal: o.signal });
      if (r !== undefined) return r;
      if (o.signal?.aborted) throw new ShoalError("TIMEOUT", "take aborted");
    }
  }

  async peek(): Promise<T | undefined> {
    const r = await this.#call(OpCode.QueuePeek, {}, false);
    return r instanceof Uint8Array ? decodeValue(r) as T : undefined;
  }

  async size(): Promise<number> {
    return (await this.info()).size;
  }

  async info(): Promise<{ size: number; capacity: number }> {
    const r = await this.#call(OpCode.QueueSize, {}, false) as { size?: unknown; capacity?: unknown };
    if (typeof r?.size !== "number" || typeof r.capacity !== "number") {
      throw new ShoalError("INTERNAL", "Malformed queue size result");
    }
    return { size: r.size, capacity: r.capacity };
  }

  /** Takes up to `max` items at once (at most 500 per call; none for 0; `Infinity` for as many as one call takes). */
  async drain(max = MAX_DRAIN): Promise<T[]> {
    if (!(Number.isInteger(max) || max === Infinity) || max < 0) {
      throw new RangeError(`Cannot drain ${max} items: a whole number`);
    }
    if (max === 0) return [];
    const r = await this.#call(OpCode.QueueDrain, { n: Math.min(max, MAX_DRAIN) }, true);
    if (!Array.isArray(r)) throw new ShoalError("INTERNAL", "Malformed drain result");
    return r.map((b) => decodeValue(b as Uint8Array) as T);
  }

  /** Takes items as they come (ends only when the iteration is ended or the member stops). */
  async *[Symbol.asyncIterator](): AsyncIterableIterator<T> {
    for (;;) yield await this.take();
  }
}
