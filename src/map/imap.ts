/**
 * The public distributed-map API (IMap). The partitioned implementation in this folder
 * routes each call through the invocation layer to the key's primary.
 */
export interface IMap<K = unknown, V = unknown> {
  readonly name: string;
  get(key: K): Promise<V | undefined>;
  /** Sets the value; resolves once the primary and every sync backup applied it. */
  set(key: K, value: V): Promise<void>;
  /** Sets the value and returns the previous one. */
  put(key: K, value: V): Promise<V | undefined>;
  putIfAbsent(key: K, value: V): Promise<V | undefined>;
  /** Replaces only when present; returns the previous value. */
  replace(key: K, value: V): Promise<V | undefined>;
  /** Replaces only when the current value equals `expected` (CBOR-equal); returns whether it did. */
  replace(key: K, expected: V, value: V): Promise<boolean>;
  /** Removes the key; returns the previous value. */
  remove(key: K): Promise<V | undefined>;
  /** Removes only when the current value equals `expected` (CBOR-equal); returns whether it did. */
  remove(key: K, expected: V): Promise<boolean>;
  delete(key: K): Promise<void>;
  containsKey(key: K): Promise<boolean>;
  getAll(keys: Iterable<K>): Promise<Map<K, V>>;
  putAll(entries: Iterable<[K, V]> | Map<K, V>): Promise<void>;
  size(): Promise<number>;
  clear(): Promise<void>;
  keys(): AsyncIterableIterator<K>;
  values(): AsyncIterableIterator<V>;
  entries(): AsyncIterableIterator<[K, V]>;
  /** Removes the map and all its data cluster-wide. */
  destroy(): Promise<void>;
}
