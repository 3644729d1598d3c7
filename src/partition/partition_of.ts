/**
 * Key → partition: MurmurHash3 (x86, 32-bit, seed 0) of the key's CBOR bytes (as produced
 * by {@link encodeValue}), modulo the partition count. Every member must use the same
 * partition count.
 */
import { encodeValue } from "../wire/codec.ts";
import { murmur3_32 } from "./murmur3.ts";

/** Default number of partitions (a prime, as in Hazelcast). */
export const DEFAULT_PARTITION_COUNT = 271;

/**
 * The partition of an already encoded key.
 * @param keyBytes the key's CBOR bytes
 * @param partitionCount number of partitions (≥ 1)
 */
export function partitionOfBytes(keyBytes: Uint8Array, partitionCount: number): number {
  if (!Number.isInteger(partitionCount) || partitionCount < 1) {
    throw new RangeError(`Cannot hash into ${partitionCount} partitions`);
  }
  return murmur3_32(keyBytes, 0) % partitionCount;
}

/**
 * The partition of a key.
 * @param key anything cbor-x encodes
 * @param partitionCount @default 271
 * @returns an integer in [0, partitionCount)
 * @example
 * ```ts
 * partitionOf("user:1"); // the same number on every member and runtime
 * ```
 */
export function partitionOf(key: unknown, partitionCount: number = DEFAULT_PARTITION_COUNT): number {
  return partitionOfBytes(encodeValue(key), partitionCount);
}
