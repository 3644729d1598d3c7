import type { EntryEvent, EntryListener, EntryListenerOptions, EventSubscription, GapEvent } from "./entry_events.ts";
import type { ExpiryOptions } from "./expiry.ts";

/**
 * The public distributed-map API (IMap). The partitioned implementation in this folder
 * routes each call through the invocation layer to the key's primary.
 *
 * Writes take optional `{ ttlMs, maxIdleMs }` (expiry.ts): unset = the map's configured
 * default, 0 = never. An expired entry reads as absent everywhere.
 */
export interface IMap<K = unknown, V = unknown> {
  readonly name: string;
  get(key: K): Promise<V | undefined>;
  /** Sets the value; resolves once the primary and every sync backup applied it. */
  set(key: K, value: V, opts?: ExpiryOptions): Promise<void>;
  /** Sets the value and returns the previous one. */
  put(key: K, value: V, opts?: ExpiryOptions): Promise<V | undefined>;
  putIfAbsent(key: K, value: V, opts?: ExpiryOptions): Promise<V | undefined>;
  /** Replaces only when present; returns the previous value. */
  replace(key: K, value: V, opts?: ExpiryOptions): Promise<V | undefined>;
  /**
   * Replaces only when the current value equals `expected` (CBOR-equal); returns whether it
   * did. A third argument that is a plain `{ ttlMs?, maxIdleMs? }` object is read as the
   * options of the two-value form; pass options as a fourth argument to compare against such a value.
   */
  replace(key: K, expected: V, value: V, opts?: ExpiryOptions): Promise<boolean>;
  /** Removes the key; returns the previous value. */
  remove(key: K): Promise<V | undefined>;
  /** Removes only when the current value equals `expected` (CBOR-equal); returns whether it did. */
  remove(key: K, expected: V): Promise<boolean>;
  delete(key: K): Promise<void>;
  containsKey(key: K): Promise<boolean>;
  getAll(keys: Iterable<K>): Promise<Map<K, V>>;
  /** Writes every entry (each with `opts` as its expiry, else the map's default). */
  putAll(entries: Iterable<[K, V]> | Map<K, V>, opts?: ExpiryOptions): Promise<void>;
  size(): Promise<number>;
  clear(): Promise<void>;
  keys(): AsyncIterableIterator<K>;
  values(): AsyncIterableIterator<V>;
  entries(): AsyncIterableIterator<[K, V]>;
  /** Removes the map and all its data cluster-wide. */
  destroy(): Promise<void>;
  /**
   * Registers an entry listener; resolves with its id once registered. From then on it
   * receives an event for every acknowledged write invoked after, exactly once and in order
   * per key, or a `gap` event naming writes it missed (see entry_listeners.ts).
   */
  addEntryListener(listener: EntryListener<K, V>, opts?: EntryListenerOptions<K>): Promise<string>;
  /** Removes a listener. @returns whether it was registered */
  removeEntryListener(id: string): boolean;
  /** The map's entry events as an async iterator, until `signal` aborts or the loop breaks. */
  events(opts?: EntryListenerOptions<K> & { signal?: AbortSignal }): AsyncIterableIterator<EntryEvent<K, V> | GapEvent>;
  /**
   * Like `events`, but resolves once registered with the positions each partition starts
   * after, so a consumer can record where it is (`from` resumes there later).
   */
  openEvents(opts?: EntryListenerOptions<K>): Promise<EventSubscription<K, V>>;
  /**
   * Runs the processor registered as `processor` on the key's entry, atomically on its
   * primary (see entry_processor.ts); the change is replicated as a write and a retry is
   * applied once. @returns the processor's result
   * @throws ShoalError NOT_FOUND (no such processor), PROCESSOR_FAILED (it threw), INDETERMINATE
   */
  executeOnKey<R = unknown>(key: K, processor: string, arg?: unknown): Promise<R>;
  /** As {@link executeOnKey}, also returning the entry's value after the call (undefined = absent). */
  executeOnKeyWithValue<R = unknown>(
    key: K,
    processor: string,
    arg?: unknown,
  ): Promise<{ result: R; value: V | undefined }>;
  /**
   * Runs the processor on each key (one write per partition, partitions in parallel).
   * Every key is attempted; then the first failure, if any, is thrown. @returns results by key
   */
  executeOnKeys<R = unknown>(keys: Iterable<K>, processor: string, arg?: unknown): Promise<Map<K, R>>;
  /**
   * Runs the processor on every entry, partitions in parallel, yielding [key, result] as
   * each batch is done. Weakly consistent: an entry added while it runs may be missed.
   */
  executeOnEntries<R = unknown>(processor: string, arg?: unknown): AsyncIterableIterator<[K, R]>;
  /**
   * Takes the key's lock, waiting first come, first served (see locks.ts). The lock belongs
   * to this member plus `owner` (default ""); it ends with `unlock`, the lease, or this
   * member's death. While it is held, writes to the key from other members fail with `LOCKED`.
   * @returns the fencing token: it rises with every acquisition of the key
   */
  lock(key: K, options?: LockOptions): Promise<number>;
  /** As {@link lock}, waiting at most `timeoutMs` (default 0: no wait). @returns the token, or undefined */
  tryLock(key: K, options?: LockOptions & { timeoutMs?: number; signal?: AbortSignal }): Promise<number | undefined>;
  /** Releases the lock held by this member + `owner`. @throws ShoalError CONFLICT when it does not hold it */
  unlock(key: K, options?: { owner?: string }): Promise<void>;
  isLocked(key: K): Promise<boolean>;
  /** Releases the lock whoever holds it. */
  forceUnlock(key: K): Promise<void>;
}

export interface LockOptions {
  /** The lock ends this long after it was granted: whole ms, 0 for none (anything else throws RangeError). @default none */
  leaseMs?: number;
  /** Which caller on this member holds it (1–128 chars). @default "" */
  owner?: string;
}
