/**
 * Bounded collections that forget their oldest entry: a Map's or a Set's insertion order is the
 * age order, so re-inserting a key makes it the newest. Used wherever a member remembers things
 * about peers, calls or jobs that an unbounded number of them could otherwise grow.
 */

/** Sets `key` → `value` as the newest entry of `map`, first forgetting the oldest ones so at most `max` remain. */
export function setNewest<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
  map.delete(key);
  while (map.size > 0 && map.size >= max) map.delete(map.keys().next().value as K);
  map.set(key, value);
}

/** Adds `key` as the newest entry of `set`, first forgetting the oldest ones so at most `max` remain. */
export function addNewest<K>(set: Set<K>, key: K, max: number): void {
  set.delete(key);
  while (set.size > 0 && set.size >= max) set.delete(set.values().next().value as K);
  set.add(key);
}
