import type { Version } from '../clock/version.js'
import type { RecordDigester } from './digest.js'

/**
 * Shape of every partition's tree — part of the peer protocol, both sides must agree.
 *
 * Fan-out 16, depth 3 (4096 leaves): a descent takes 3 round trips below the root, and at the
 * design load (1M keys over 256 partitions ≈ 4K keys per partition) a leaf holds about one key,
 * so the (key, version) lists exchanged for a differing leaf carry almost nothing that is equal
 * (Cassandra's repair overstreams because its leaves are large). Memory: 4369 digests × 8 B
 * ≈ 35 KB per partition.
 */
export const FANOUT_BITS = 4
export const FANOUT = 1 << FANOUT_BITS
export const DEPTH = 3
export const LEAF_BITS = FANOUT_BITS * DEPTH
export const LEAF_COUNT = 1 << LEAF_BITS

/** Where each level starts in the flat digest array (level 0 = the root). */
const LEVEL_OFFSETS: readonly number[] = Array.from({ length: DEPTH + 1 }, (_, depth) => (FANOUT ** depth - 1) / (FANOUT - 1))
const NODE_COUNT = (FANOUT ** (DEPTH + 1) - 1) / (FANOUT - 1)
const MAX_DIGEST = (1n << 64n) - 1n
const LOW_32_BITS = 0xffffffffn
/** Where a 64-bit digest's low 32-bit word sits in the platform's byte order (0 little-endian, 1 big). */
const LOW_WORD = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1 ? 0 : 1

/** Number of nodes at a depth (1 at the root, LEAF_COUNT at the leaves). */
export function levelWidth(depth: number): number {
  assertDepth(depth)
  return FANOUT ** depth
}

/**
 * A record's leaf. The bucket is the key hash's TOP bits because partition = keyHash mod Q
 * takes the low bits: with Q a power of two, every key in a partition shares them.
 */
export function bucketOf(keyHash: bigint): number {
  return Number(BigInt.asUintN(64, keyHash) >> BigInt(64 - LEAF_BITS))
}

/** Indices at depth + 1 of the children of the given nodes at depth, in order. */
export function childIndices(depth: number, indices: readonly number[]): number[] {
  if (depth >= DEPTH) throw new RangeError(`leaves (depth ${DEPTH}) have no children`)
  assertIndices(depth, indices)
  const children: number[] = []
  for (const index of indices) {
    for (let child = 0; child < FANOUT; child++) children.push(index * FANOUT + child)
  }
  return children
}

/**
 * An incremental hash tree over one partition's records (Riak tictac AAE style).
 *
 * Every node's digest is the XOR of recordHash(key, version) over the records below it: a leaf
 * over its bucket, an inner node over its subtree, the root over the partition. XOR makes the
 * digest independent of insertion order and lets a write XOR its old contribution out and its new
 * one in along one leaf-to-root path, O(DEPTH), without reading any other record.
 *
 * Why XOR of children rather than a hash of them: change detection only needs "this subtree holds
 * a different set of records", and a single changed record always changes every node on its path
 * (its delta is a non-zero 64-bit value). Several changes in one subtree cancel only if their
 * deltas XOR to zero — probability 2^-64 for a non-adversarial hash. What it gives up: XOR is
 * linear, so anyone who can choose keys could craft cancelling sets (xxh64 is not a
 * cryptographic hash anyway; peers are trusted cluster members), and a record counted twice
 * would vanish — which the store rules out, as it holds one version per key.
 */
export class MerkleTree {
  /** All levels, root first, each level left to right. */
  readonly #digests = new BigUint64Array(NODE_COUNT)
  /**
   * The same digests as 32-bit words, for the per-write update: XORing two words per node
   * allocates nothing, where reading and writing a BigUint64Array element makes a BigInt each.
   */
  readonly #words = new Uint32Array(this.#digests.buffer)
  readonly #digester: RecordDigester

  constructor(digester: RecordDigester) {
    this.#digester = digester
  }

  /**
   * Record that `key` went from `previous` to `next` (undefined = not held: a first write has no
   * previous, a purged tombstone or expired record has no next). Tombstones are records like any
   * other. `keyHash` may be passed when the caller already computed it for placement.
   */
  apply(key: string, previous: Version | undefined, next: Version | undefined, keyHash?: bigint): void {
    this.applyInBucket(bucketOf(keyHash ?? this.#digester.keyHash(key)), key, previous, next)
  }

  /** apply() for a caller that already knows the key's bucket (e.g. from its segment). */
  applyInBucket(bucket: number, key: string, previous: Version | undefined, next: Version | undefined): void {
    let delta = 0n
    if (previous !== undefined) delta ^= this.#digester.recordHash(key, previous)
    if (next !== undefined) delta ^= this.#digester.recordHash(key, next)
    if (delta === 0n) return
    if (!Number.isInteger(bucket) || bucket < 0 || bucket >= LEAF_COUNT) throw new RangeError(`bucket must be an integer in [0, ${LEAF_COUNT}), got ${bucket}`)
    const low = Number(delta & LOW_32_BITS)
    const high = Number(delta >> 32n)
    const words = this.#words
    let index = bucket
    for (let depth = DEPTH; depth >= 0; depth--) {
      const at = 2 * ((LEVEL_OFFSETS[depth] as number) + index)
      words[at + LOW_WORD] = (words[at + LOW_WORD] as number) ^ low
      words[at + 1 - LOW_WORD] = (words[at + 1 - LOW_WORD] as number) ^ high
      index >>>= FANOUT_BITS
    }
  }

  /** XORs `delta` (record hashes coming or going) into leaf `bucket` and its ancestors. */
  applyDelta(bucket: number, delta: bigint): void {
    if (delta === 0n) return
    if (!Number.isInteger(bucket) || bucket < 0 || bucket >= LEAF_COUNT) throw new RangeError(`bucket must be an integer in [0, ${LEAF_COUNT}), got ${bucket}`)
    let index = bucket
    for (let depth = DEPTH; depth >= 0; depth--) {
      const at = (LEVEL_OFFSETS[depth] as number) + index
      this.#digests[at] = (this.#digests[at] as bigint) ^ delta
      index >>>= FANOUT_BITS
    }
  }

  root(): bigint {
    return this.#digests[0] as bigint
  }

  leaf(bucket: number): bigint {
    return this.nodes(DEPTH, [bucket])[0] as bigint
  }

  /** A whole level, left to right. */
  level(depth: number): bigint[] {
    const width = levelWidth(depth)
    const start = LEVEL_OFFSETS[depth] as number
    return Array.from(this.#digests.subarray(start, start + width))
  }

  /** Digests of the given nodes at depth — what a peer asks for; indices are validated. */
  nodes(depth: number, indices: readonly number[]): bigint[] {
    assertIndices(depth, indices)
    const start = LEVEL_OFFSETS[depth] as number
    return indices.map(index => this.#digests[start + index] as bigint)
  }

  /** Forget every record (e.g. before a rebuild from the store). */
  clear(): void {
    this.#digests.fill(0n)
  }
}

/** How a descent compares a node at `depth`: both sides' digests go through the same projection. */
export type DigestProjection = (depth: number, digest: bigint) => bigint
const identity: DigestProjection = (_depth, digest) => digest

/** Digest widths a projection may truncate to, in bytes. */
export const DIGEST_WIDTHS = [2, 4, 8] as const
export type DigestWidth = (typeof DIGEST_WIDTHS)[number]

/**
 * Node digests squeezed to `widthBytes` for the wire: multiply-shift hashing, (d · a mod 2^64)
 * >> (64 − bits), with an odd multiplier `a` derived from a per-pass salt. Two different digests
 * collide with probability about 2^(1−bits) for a random salt, so a sync session can send 2- or
 * 4-byte digests below the root — a quarter or half of the bytes — and catch the rare difference a
 * collision hid by checking the roots (full 64 bits) afterwards and descending again with a new
 * salt, under which the same pair almost surely no longer collides. Width 8 is the digest itself.
 */
export function projectDigests(digests: readonly bigint[], salt: number, widthBytes: DigestWidth): bigint[] {
  if (widthBytes === 8) return [...digests]
  const multiplier = saltMultiplier(salt)
  const shift = BigInt(64 - widthBytes * 8)
  return digests.map((digest) => BigInt.asUintN(64, digest * multiplier) >> shift)
}

/** The projection a descent applies to its own digests, matching a peer that projects with projectDigests. */
export function saltedProjection(salt: number, widthAt: (depth: number) => DigestWidth): { readonly salt: number; readonly projection: DigestProjection } {
  const multiplier = saltMultiplier(salt)
  return {
    salt,
    projection: (depth, digest) => {
      const width = widthAt(depth)
      return width === 8 ? digest : BigInt.asUintN(64, digest * multiplier) >> BigInt(64 - width * 8)
    },
  }
}

/** An odd 64-bit multiplier from a 32-bit salt (splitmix64's finalizer spreads the salt's bits). */
function saltMultiplier(salt: number): bigint {
  let z = BigInt.asUintN(64, BigInt(salt >>> 0) * 0x9e3779b97f4a7c15n + 0xbf58476d1ce4e5b9n)
  z = BigInt.asUintN(64, (z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n)
  z = BigInt.asUintN(64, (z ^ (z >> 27n)) * 0x94d049bb133111ebn)
  return (z ^ (z >> 31n)) | 1n
}

/** A request for node digests, issued by a descent and answered from the peer's tree. */
export interface NodeRequest {
  readonly depth: number
  readonly indices: readonly number[]
}

/**
 * The descent as a pure step machine: it yields which remote nodes it needs next and is resumed
 * with their digests (same order), and returns the leaves (buckets) whose digests differ, sorted.
 * It asks only for the children of nodes that differ, so the work follows the difference, not
 * the store. A sync session drives it over the network; `descend` drives it between two trees.
 */
export function* descent(local: MerkleTree, project: DigestProjection = identity): Generator<NodeRequest, number[], readonly bigint[]> {
  let depth = 0
  let differing = [0]
  for (;;) {
    const indices = depth === 0 ? differing : childIndices(depth - 1, differing)
    const remote = yield { depth, indices }
    assertDigests(remote, indices.length)
    const mine = local.nodes(depth, indices).map((digest) => project(depth, digest))
    differing = indices.filter((_, i) => mine[i] !== remote[i])
    if (differing.length === 0 || depth === DEPTH) return differing
    depth++
  }
}

/** Leaves that differ between two trees in the same process (tests, simulations). */
export function descend(local: MerkleTree, remote: MerkleTree): number[] {
  const steps = descent(local)
  let step = steps.next([])
  while (step.done !== true) step = steps.next(remote.nodes(step.value.depth, step.value.indices))
  return step.value
}

/**
 * Leaves that differ from a peer whose digests `fetchNodes` retrieves, one level per call. When
 * the peer answers with projected digests (see projectDigest), pass the same projection.
 */
export async function differingLeaves(
  local: MerkleTree,
  fetchNodes: (depth: number, indices: readonly number[]) => Promise<readonly bigint[]>,
  project: DigestProjection = identity,
): Promise<number[]> {
  const steps = descent(local, project)
  let step = steps.next([])
  while (step.done !== true) step = steps.next(await fetchNodes(step.value.depth, step.value.indices))
  return step.value
}

function assertDepth(depth: number): void {
  if (!Number.isInteger(depth) || depth < 0 || depth > DEPTH) throw new RangeError(`tree depth must be an integer in [0, ${DEPTH}], got ${depth}`)
}

function assertIndices(depth: number, indices: readonly number[]): void {
  const width = levelWidth(depth)
  if (indices.length > width) throw new RangeError(`asked for ${indices.length} nodes at depth ${depth}, which has only ${width}`)
  for (const index of indices) {
    if (!Number.isInteger(index) || index < 0 || index >= width) throw new RangeError(`node index at depth ${depth} must be an integer in [0, ${width}), got ${index}`)
  }
}

function assertDigests(digests: readonly bigint[], expected: number): void {
  if (digests.length !== expected) throw new RangeError(`expected ${expected} node digests, got ${digests.length}`)
  for (const digest of digests) {
    if (typeof digest !== 'bigint' || digest < 0n || digest > MAX_DIGEST) throw new RangeError(`a node digest must be a 64-bit unsigned integer, got ${String(digest)}`)
  }
}
