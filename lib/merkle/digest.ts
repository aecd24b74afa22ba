import { loadXxh64, XXH64_SEED as SEED } from '../hash/xxh64.js'
import { isNodeId, type Version } from '../clock/version.js'

/**
 * The hashes a Merkle tree is made of. Two nodes compare trees only if they compute these
 * identically, so the byte layout is part of the peer protocol:
 *
 * - keyHash(key) = xxh64(UTF-8 key, seed 0) — the same hash placement uses (lib/placement/hash.ts),
 *   so a caller that already has it for partitioning can pass it on.
 * - recordHash(key, version) = xxh64(UTF-8 key ‖ hlc as uint64 big-endian ‖ node id's 8 bytes,
 *   seed 0). The version part has a fixed width, so the encoding is unambiguous: no two
 *   (key, version) pairs share an input.
 */
export interface RecordDigester {
  keyHash(key: string): bigint
  recordHash(key: string, version: Version): bigint
  /**
   * recordHash from bytes already in wire order: the key's UTF-8 and the 16-byte version (hlc
   * uint64 BE ‖ node id), as the store's segment index holds them. Rebuilding trees at start this
   * way decodes nothing.
   */
  recordHashBytes(keyBytes: Uint8Array, versionBytes: Uint8Array): bigint
}

const HLC_BYTES = 8
const NODE_ID_BYTES = 8
const VERSION_BYTES = HLC_BYTES + NODE_ID_BYTES
/** UTF-8 needs at most 3 bytes per UTF-16 code unit. */
const MAX_UTF8_BYTES_PER_CODE_UNIT = 3
const INITIAL_SCRATCH_BYTES = 1024
/**
 * Node ids whose two 32-bit halves recordHash keeps, so a change's two hashes skip the id's
 * validation and hex parsing (a third of their cost): a cluster has a handful of writers, and
 * the map is emptied when a churn of ids fills it.
 */
const MAX_CACHED_NODE_IDS = 1024


/** Awaited once at start-up; the digester it returns is synchronous (no yield per write). */
export async function loadRecordDigester(): Promise<RecordDigester> {
  const { h64, h64Raw } = await loadXxh64()
  const encoder = new TextEncoder()
  // One scratch buffer, grown on demand: recordHash() runs to completion before anyone else uses it.
  let scratch = new Uint8Array(INITIAL_SCRATCH_BYTES)
  let view = new DataView(scratch.buffer)
  /** Validated node id → its 8 bytes as [high, low] uint32 halves. */
  const halvesByNode = new Map<string, readonly [number, number]>()
  const halvesOf = (node: string): readonly [number, number] => {
    let halves = halvesByNode.get(node)
    if (halves === undefined) {
      if (!isNodeId(node)) throw new TypeError(`not a node id (16 lowercase hex characters): ${JSON.stringify(node)}`)
      if (halvesByNode.size >= MAX_CACHED_NODE_IDS) halvesByNode.clear()
      halves = [Number.parseInt(node.slice(0, 8), 16), Number.parseInt(node.slice(8, 16), 16)]
      halvesByNode.set(node, halves)
    }
    return halves
  }
  return {
    keyHash: (key: string): bigint => h64(key, SEED),
    recordHash(key: string, version: Version): bigint {
      if (!Number.isSafeInteger(version.hlc) || version.hlc < 0) throw new RangeError(`version hlc must be a non-negative safe integer, got ${version.hlc}`)
      const nodeHalves = halvesOf(version.node)
      const worstCase = key.length * MAX_UTF8_BYTES_PER_CODE_UNIT + VERSION_BYTES
      if (scratch.length < worstCase) {
        scratch = new Uint8Array(worstCase)
        view = new DataView(scratch.buffer)
      }
      const keyBytes = encoder.encodeInto(key, scratch).written
      // hlc < 2^53, so the split into two uint32 halves is exact.
      view.setUint32(keyBytes, Math.floor(version.hlc / 2 ** 32), false)
      view.setUint32(keyBytes + 4, version.hlc >>> 0, false)
      view.setUint32(keyBytes + HLC_BYTES, nodeHalves[0], false)
      view.setUint32(keyBytes + HLC_BYTES + 4, nodeHalves[1], false)
      return h64Raw(scratch.subarray(0, keyBytes + VERSION_BYTES), SEED)
    },
    recordHashBytes(keyBytes: Uint8Array, versionBytes: Uint8Array): bigint {
      if (versionBytes.length !== VERSION_BYTES) throw new RangeError(`a version is ${VERSION_BYTES} bytes, got ${versionBytes.length}`)
      const length = keyBytes.length + VERSION_BYTES
      if (scratch.length < length) {
        scratch = new Uint8Array(length)
        view = new DataView(scratch.buffer)
      }
      scratch.set(keyBytes, 0)
      scratch.set(versionBytes, keyBytes.length)
      return h64Raw(scratch.subarray(0, length), SEED)
    },
  }
}
