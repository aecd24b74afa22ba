import type { Hasher } from './hash.js'

/** The most partitions the rank encoding can name (partition is a uint32 there). */
export const MAX_PARTITION_COUNT = 2 ** 32

export function assertPartitionCount(partitionCount: number): void {
  if (!Number.isInteger(partitionCount) || partitionCount < 1 || partitionCount > MAX_PARTITION_COUNT) {
    throw new RangeError(`partition count must be an integer in [1, ${MAX_PARTITION_COUNT}], got ${partitionCount}`)
  }
}

/**
 * partition(key) = xxh64(key) mod Q. Q is fixed when the cluster is created: changing it would
 * reassign almost every key, whereas membership changes only move whole partitions.
 */
export function partitionOf(hasher: Hasher, key: string, partitionCount: number): number {
  return partitionOfKeyHash(hasher.keyHash(key), partitionCount)
}

/** partitionOf for a caller that already holds the key's hash (the Merkle trees need it too). */
export function partitionOfKeyHash(keyHash: bigint, partitionCount: number): number {
  assertPartitionCount(partitionCount)
  return Number(keyHash % BigInt(partitionCount))
}
