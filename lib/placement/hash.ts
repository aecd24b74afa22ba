import { loadXxh64, XXH64_SEED as SEED } from '../hash/xxh64.js'
import { isNodeId, type NodeId } from '../clock/version.js'

/**
 * The two hashes placement is built on. Every node must compute them identically — a node that
 * hashed differently would route writes to other replicas than its peers — so the inputs below
 * are part of the protocol: changing them moves data and needs a cluster-wide migration.
 *
 * - keyHash(key) = xxh64(UTF-8 bytes of key, seed 0)
 * - rank(partition, nodeId) = xxh64(RANK_INPUT_BYTES bytes, seed 0) where the bytes are
 *   partition as uint32 big-endian ‖ the node id's 8 bytes (its 16 hex digits decoded, first
 *   digit pair first). Fixed width, so no two (partition, node) pairs share an input.
 */
export interface Hasher {
  keyHash(key: string): bigint
  rank(partition: number, nodeId: NodeId): bigint
}

const PARTITION_BYTES = 4
const NODE_ID_BYTES = 8
export const RANK_INPUT_BYTES = PARTITION_BYTES + NODE_ID_BYTES
const MAX_PARTITION = 0xffff_ffff


/**
 * Awaited once at start-up; the returned hasher is synchronous so that a request's placement
 * lookup never yields to the event loop.
 */
export async function loadHasher(): Promise<Hasher> {
  const { h64, h64Raw } = await loadXxh64()
  // One scratch buffer: rank() runs to completion before anything else can touch it.
  const rankInput = new Uint8Array(RANK_INPUT_BYTES)
  const rankView = new DataView(rankInput.buffer)
  return {
    keyHash: (key: string): bigint => h64(key, SEED),
    rank(partition: number, nodeId: NodeId): bigint {
      if (!Number.isInteger(partition) || partition < 0 || partition > MAX_PARTITION) {
        throw new RangeError(`partition must be an integer in [0, ${MAX_PARTITION}], got ${partition}`)
      }
      if (!isNodeId(nodeId)) throw new TypeError(`not a node id (16 lowercase hex characters): ${JSON.stringify(nodeId)}`)
      rankView.setUint32(0, partition, false)
      rankView.setUint32(PARTITION_BYTES, Number.parseInt(nodeId.slice(0, 8), 16), false)
      rankView.setUint32(PARTITION_BYTES + 4, Number.parseInt(nodeId.slice(8, 16), 16), false)
      return h64Raw(rankInput, SEED)
    },
  }
}
