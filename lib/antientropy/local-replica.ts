import { compareVersions, hlcWallMs, type Version } from '../clock/version.js'
import { bucketOfSegment, segmentOf } from '../merkle/segment.js'
import { childIndices, MerkleTree } from '../merkle/tree.js'
import type { MerkleForest } from '../merkle/forest.js'
import { fromWire, toWire, type WireEntry } from '../replication/messages.js'
import { collectibleKind } from '../store/gc.js'
import type { Store } from '../store/store.js'
import type { SegmentEntry } from '../store/segment-index.js'

/** See LocalReplica.compareLeaves; indices point into the peer's list. */
export interface LeavesAnswer {
  readonly records: WireEntry[]
  readonly older: number[]
  readonly missing: number[]
  readonly superseded: number[]
  done: number
  /** XOR of the hashes of records past their grace this node held back (see SyncLeavesReplyBody.heldBack). */
  heldBack: bigint
}

/** Records one leaves answer gathers before it stops at a bucket boundary (besides its byte budget). */
const MAX_RECORDS_PER_ANSWER = 4096

export interface LocalReplicaOptions {
  readonly store: Pick<Store, 'get' | 'applyMany' | 'deleteIfVersion' | 'segments'>
  readonly forest: MerkleForest
  readonly partitionCount: number
  readonly tombstoneGraceMs: number
  readonly nowMs: () => number
  /** Merges a remote version into the local clock; throws for one beyond the skew bound. */
  readonly observeHlc: (hlc: number) => void
}

/** Approximate wire size of a record, for batch and rate budgets (MessagePack adds a few bytes). */
export function entryBytes(entry: WireEntry): number {
  return entry.key.length + (entry.value?.byteLength ?? 0) + ENTRY_OVERHEAD_BYTES
}
const ENTRY_OVERHEAD_BYTES = 48

/**
 * This node's side of a sync session, the same whether it started the session or answers it:
 * tree digests, (key, version) lists per leaf, records that travel, and applying what arrives
 * with the store's one write primitive (apply-if-newer), so a session never overwrites newer data.
 */
export class LocalReplica {
  readonly #options: LocalReplicaOptions
  /** Stands in for a partition this node holds nothing of: every digest 0. */
  readonly #empty: MerkleTree

  constructor(options: LocalReplicaOptions, emptyTree: MerkleTree) {
    this.#options = options
    this.#empty = emptyTree
  }

  get partitionCount(): number {
    return this.#options.partitionCount
  }

  tree(partition: number): MerkleTree {
    this.#assertPartition(partition)
    return this.#options.forest.tree(partition) ?? this.#empty
  }

  /** Digests of every child of `parents` (at depth - 1), parent by parent. */
  childDigests(partition: number, depth: number, parents: readonly number[]): bigint[] {
    return this.tree(partition).nodes(depth, childIndices(depth - 1, parents))
  }

  leafEntries(partition: number, bucket: number): SegmentEntry[] {
    this.#assertPartition(partition)
    const segments = this.#options.store.segments
    if (segments === undefined) throw new Error('the store keeps no segment index; open it with `segments`')
    return segments.entries(segmentOf(partition, bucket))
  }

  /**
   * The records of `keys` that travel, until about `maxBytes`; `done` = how many keys were
   * handled (the caller asks again for the rest). A key absent here or not travelling is skipped.
   * `evenCollectible`: also records past their grace — for a peer known to hold an older version,
   * which must learn of the delete before this node collects it (else the old value outlives it).
   */
  fetch(keys: readonly string[], maxBytes: number, evenCollectible = false): { entries: WireEntry[]; done: number; heldBack: bigint } {
    const entries: WireEntry[] = []
    let bytes = 0
    let done = 0
    let heldBack = 0n
    const nowMs = this.#options.nowMs()
    for (const key of keys) {
      const record = this.#options.store.get(key)
      if (record !== undefined && !evenCollectible && collectibleKind(record, nowMs, this.#options.tombstoneGraceMs) !== undefined) {
        heldBack ^= this.#options.forest.recordHash(key, record.version)
      } else if (record !== undefined) {
        const entry = toWire(key, record)
        // Always at least one record, so a value larger than the budget still moves.
        if (entries.length > 0 && bytes + entryBytes(entry) > maxBytes) break
        entries.push(entry)
        bytes += entryBytes(entry)
      }
      done++
    }
    return { entries, done, heldBack }
  }

  /**
   * Applies records from a peer if newer. One whose version is beyond the clock-skew bound is
   * refused (false), like a replica write would be, and the rest still apply.
   */
  async apply(entries: readonly WireEntry[]): Promise<boolean[]> {
    const accepted: WireEntry[] = []
    const acceptedAt: number[] = []
    entries.forEach((entry, i) => {
      try {
        this.#options.observeHlc(entry.hlc)
        accepted.push(entry)
        acceptedAt.push(i)
      } catch {
        // Refused: counts as not applied; the peer's own clock must come back within bounds.
      }
    })
    const applied = entries.map(() => false)
    const outcomes = await this.#options.store.applyMany(accepted.map((entry) => ({ key: entry.key, record: fromWire(entry) })))
    outcomes.forEach((outcome, i) => { applied[acceptedAt[i] as number] = outcome.applied })
    return applied
  }

  /** Removes records if they still have these versions (repair after a long absence). */
  async drop(entries: readonly { readonly key: string; readonly version: Version }[]): Promise<number> {
    const removed = await this.#options.store.deleteIfVersion(entries)
    return removed.filter(Boolean).length
  }

  /**
   * The answer to a peer's (key, version) list for some leaves of a partition: the records this
   * node holds newer or the peer lacks (those that travel, within about `maxBytes`), and which of
   * the peer's keys this node holds older, lacks, or holds newer without letting it travel.
   * Stops after the bucket that fills the budget; `done` = buckets handled.
   * `withholdMissingAtOrBeforeMs`: records the peer lacks versioned at or before this wall time
   * are not sent (this node repairs and may hold deletes the cluster forgot; see responder.ts).
   */
  compareLeaves(partition: number, buckets: readonly number[], theirs: readonly { readonly key: string; readonly version: Version }[], maxBytes: number, withholdMissingAtOrBeforeMs = -Infinity): LeavesAnswer {
    const segments = this.#options.store.segments
    if (segments === undefined) throw new Error('the store keeps no segment index; open it with `segments`')
    const theirIndex = new Map<string, number>()
    const bucketKeys = new Map<number, number[]>()
    theirs.forEach(({ key }, i) => {
      theirIndex.set(key, i)
      const bucket = bucketOfSegment(segments.segmentOf(key))
      const list = bucketKeys.get(bucket)
      if (list === undefined) bucketKeys.set(bucket, [i])
      else list.push(i)
    })
    const answer: LeavesAnswer = { records: [], older: [], missing: [], superseded: [], done: 0, heldBack: 0n }
    let bytes = 0
    const nowMs = this.#options.nowMs()
    for (const bucket of buckets) {
      if (answer.done > 0 && (bytes >= maxBytes || answer.records.length >= MAX_RECORDS_PER_ANSWER)) break
      const seen = new Set<number>()
      for (const { key, version } of this.leafEntries(partition, bucket)) {
        const index = theirIndex.get(key)
        const order = index === undefined ? 1 : compareVersions(version, (theirs[index] as { version: Version }).version)
        if (index !== undefined) seen.add(index)
        if (order < 0) answer.older.push(index as number)
        if (order === 0) continue
        if (index === undefined && hlcWallMs(version.hlc) <= withholdMissingAtOrBeforeMs) continue
        const record = this.#options.store.get(key)
        if (record === undefined) continue
        // A strong record outranks any plain one whatever the versions (compareRecords): it
        // travels even when the peer's version is higher, or the peer would keep its plain
        // record and the two replicas would never agree. (When the peer holds the strong one,
        // it travels in a session the peer answers.)
        if (order < 0 && record.strong !== true) continue
        if (collectibleKind(record, nowMs, this.#options.tombstoneGraceMs) === undefined) {
          const entry = toWire(key, record)
          answer.records.push(entry)
          bytes += entryBytes(entry)
        } else {
          if (index !== undefined) answer.superseded.push(index)
          answer.heldBack ^= this.#options.forest.recordHash(key, record.version)
        }
      }
      for (const index of bucketKeys.get(bucket) ?? []) if (!seen.has(index)) answer.missing.push(index)
      answer.done++
    }
    return answer
  }

  /** Forgets a partition's tree once its records are gone (hand-off after a rebalance). */
  release(partition: number): void {
    if (this.tree(partition).root() === 0n) this.#options.forest.drop(partition)
  }

  #assertPartition(partition: number): void {
    if (!Number.isInteger(partition) || partition < 0 || partition >= this.#options.partitionCount) {
      throw new RangeError(`partition must be an integer in [0, ${this.#options.partitionCount}), got ${partition}`)
    }
  }
}
