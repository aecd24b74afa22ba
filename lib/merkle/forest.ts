import type { Version } from '../clock/version.js'
import type { RecordDigester } from './digest.js'
import { bucketOfSegment, partitionOfSegment } from './segment.js'
import { MerkleTree } from './tree.js'

/**
 * One tree per partition this node holds. The store digest is the XOR of the roots, i.e. the XOR
 * of every record's hash: equal on two nodes exactly when they hold the same records (up to a
 * 2^-64 collision), whichever partitions each splits them into.
 */
export class MerkleForest {
  readonly #trees = new Map<number, MerkleTree>()
  readonly #digester: RecordDigester

  constructor(digester: RecordDigester) {
    this.#digester = digester
  }

  /** See MerkleTree.apply; creates the partition's tree on its first record. */
  apply(partition: number, key: string, previous: Version | undefined, next: Version | undefined, keyHash?: bigint): void {
    this.#treeFor(partition).apply(key, previous, next, keyHash)
  }

  /** apply() for a key whose segment (partition and bucket) the caller already knows. */
  applyInSegment(segment: number, key: string, previous: Version | undefined, next: Version | undefined): void {
    this.#treeFor(partitionOfSegment(segment)).applyInBucket(bucketOfSegment(segment), key, previous, next)
  }

  /** The hash one record contributes to its tree's digests (XOR). */
  recordHash(key: string, version: Version): bigint {
    return this.#digester.recordHash(key, version)
  }

  /** Adds one stored record from its raw bytes (segment index entry), for the rebuild at start. */
  addRaw(segment: number, keyBytes: Uint8Array, versionBytes: Uint8Array): void {
    this.#treeFor(partitionOfSegment(segment)).applyDelta(bucketOfSegment(segment), this.#digester.recordHashBytes(keyBytes, versionBytes))
  }

  #treeFor(partition: number): MerkleTree {
    if (!Number.isInteger(partition) || partition < 0) throw new RangeError(`partition must be a non-negative integer, got ${partition}`)
    let tree = this.#trees.get(partition)
    if (tree === undefined) {
      tree = new MerkleTree(this.#digester)
      this.#trees.set(partition, tree)
    }
    return tree
  }

  /** The partition's tree, or undefined when this node holds no record of it. */
  tree(partition: number): MerkleTree | undefined {
    return this.#trees.get(partition)
  }

  /** Partitions with a tree, ascending. */
  partitions(): number[] {
    return [...this.#trees.keys()].sort((a, b) => a - b)
  }

  /** Forget a partition this node no longer holds (after its records were dropped). */
  drop(partition: number): void {
    this.#trees.delete(partition)
  }

  digest(): bigint {
    let digest = 0n
    for (const tree of this.#trees.values()) digest ^= tree.root()
    return digest
  }
}
