import { LEAF_COUNT } from './tree.js'

/**
 * A Merkle segment names one leaf of one partition's tree: partition × LEAF_COUNT + bucket. The
 * store's segment index is keyed by it, so the trees, the index and sync sessions must agree.
 */
export function segmentOf(partition: number, bucket: number): number {
  return partition * LEAF_COUNT + bucket
}

export function partitionOfSegment(segment: number): number {
  return Math.floor(segment / LEAF_COUNT)
}

export function bucketOfSegment(segment: number): number {
  return segment % LEAF_COUNT
}
