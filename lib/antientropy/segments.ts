import type { RecordDigester } from '../merkle/digest.js'
import { segmentOf } from '../merkle/segment.js'
import { bucketOf, LEAF_COUNT } from '../merkle/tree.js'
import { partitionOfKeyHash } from '../placement/partitions.js'
import type { SegmentIndexOptions } from '../store/segment-index.js'

/**
 * How the store's segment index maps a key to its Merkle segment (partition × leaves + bucket):
 * the daemon and tools that prepare data dirs must agree, or the index is rebuilt at open.
 */
export function segmentIndexOptions(digester: RecordDigester, partitionCount: number): SegmentIndexOptions {
  return {
    segmentOf: (key) => {
      const keyHash = digester.keyHash(key)
      return segmentOf(partitionOfKeyHash(keyHash, partitionCount), bucketOf(keyHash))
    },
    scheme: `xxh64 partitions=${partitionCount} leaves=${LEAF_COUNT}`,
  }
}
