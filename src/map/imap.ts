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
}
