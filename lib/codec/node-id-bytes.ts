import { isNodeId, type NodeId } from '../clock/version.js'

/**
 * Node ids as the 8 bytes of their 16 hex digits, the form the compact peer frames
 * (lib/replication/messages.ts, lib/paxos/messages.ts) and the acceptor store's binary states
 * (lib/paxos/acceptor-store.ts) carry. A cluster has few ids, so both directions are cached,
 * each cache bounded: a peer sending ever new ids only empties it.
 */
export const NODE_ID_BYTES = 8
const MAX_CACHED_NODE_IDS = 1024

const bytesById = new Map<NodeId, Buffer>()

/** A node id's 8 bytes (cached: do not modify the buffer). A string that is no node id is a programming error. */
export function nodeIdBytes(node: NodeId): Buffer {
  let bytes = bytesById.get(node)
  if (bytes === undefined) {
    if (!isNodeId(node)) throw new TypeError(`not a node id (16 lowercase hex characters): ${JSON.stringify(node)}`)
    if (bytesById.size >= MAX_CACHED_NODE_IDS) bytesById.clear()
    bytes = Buffer.from(node, 'hex')
    bytesById.set(node, bytes)
  }
  return bytes
}

/** Ids read back, by their two 32-bit words: each id's hex string is built once. */
const idsByWords = new Map<number, Map<number, NodeId>>()
let cachedIds = 0

/** The last id read, before any map: a history names the same node over and over. */
let lastHigh = -1
let lastLow = -1
let lastId: NodeId | undefined

/** The node id whose 8 bytes start at `at` (the caller checked they are there): 16 lowercase hex digits by construction. */
export function nodeIdAt(bytes: Uint8Array, at: number): NodeId {
  const high = wordAt(bytes, at)
  const low = wordAt(bytes, at + 4)
  if (high === lastHigh && low === lastLow) return lastId as NodeId
  lastId = cachedIdOf(high, low)
  lastHigh = high
  lastLow = low
  return lastId
}

function cachedIdOf(high: number, low: number): NodeId {
  let lows = idsByWords.get(high)
  const cached = lows?.get(low)
  if (cached !== undefined) return cached
  if (cachedIds >= MAX_CACHED_NODE_IDS) {
    idsByWords.clear()
    cachedIds = 0
    lows = undefined
  }
  if (lows === undefined) {
    lows = new Map()
    idsByWords.set(high, lows)
  }
  const id = `${high.toString(16).padStart(8, '0')}${low.toString(16).padStart(8, '0')}` as NodeId
  lows.set(low, id)
  cachedIds++
  return id
}

/** The big-endian unsigned 32-bit word at `at`. */
export function wordAt(bytes: Uint8Array, at: number): number {
  return (((bytes[at] as number) << 24) | ((bytes[at + 1] as number) << 16) | ((bytes[at + 2] as number) << 8) | (bytes[at + 3] as number)) >>> 0
}
