import { hlcWallMs } from '../clock/version.js'
import { differingLeaves, FANOUT, saltedProjection, type DigestWidth } from '../merkle/tree.js'
import type { Clock } from '../runtime/clock.js'
import type { Random } from '../runtime/random.js'
import type { PeerMessage } from '../transport/transport.js'
import { entryBytes, type LocalReplica } from './local-replica.js'
import {
  fromSyncRecord, MAX_BUCKETS_PER_REQUEST, MAX_KEYS_PER_LEAVES, MAX_PARTITIONS_PER_REQUEST, MAX_RECORDS_PER_BATCH, toSyncRecord, unpackDigests, VERSION_BYTES,
  type RepairFlag, type SyncLeavesReplyBody, type SyncNodesReplyBody, type SyncPushReplyBody, type SyncRootsReplyBody,
} from './messages.js'
import type { ByteRateLimiter } from './rate-limit.js'
import { forEachLimited } from './rate-limit.js'
import { encodeSegmentVersion, type SegmentEntry } from '../store/segment-index.js'

/**
 * `normal`: push what the peer lacks or holds older, pull what it holds newer.
 * `repair`: this node was away longer than the tombstone grace, so a record only it holds may be
 * one whose delete the others already collected: drop it instead of pushing it (docs/consistency.md).
 */
export type SessionMode = 'normal' | 'repair'

export interface SessionOptions {
  /** The peer's advertised peer address (for logs). */
  readonly peer: string
  readonly partitions: readonly number[]
  readonly mode: SessionMode
  /**
   * Repair mode: this node's last contact with the cluster before its absence (ms). A record
   * versioned after it was written while this node was back in touch (a replica write taken
   * during the repair) and cannot be a delete the others forgot: it is kept, not dropped.
   */
  readonly repairCutoffMs?: number
  /**
   * Partitions this node holds but no longer replicates, handed to the peer, and the wall time
   * (ms) at or before which a record of theirs the peer lacks is dropped instead of pushed: the
   * replicas collect a tombstone without waiting for non-replicas, so a copy that old may be
   * a value they deleted and forgot (see AntiEntropyOptions.handOffCutoffMs).
   */
  readonly handOff?: { readonly partitions: ReadonlySet<number>; readonly cutoffMs: number }
  readonly replica: LocalReplica
  /** A request to the peer; rejects on timeout, a lost link or an error answer. */
  readonly request: (message: PeerMessage) => Promise<PeerMessage>
  readonly limiter: ByteRateLimiter
  /** The session's duration. */
  readonly clock: Clock
  /** Each pass's digest salt. */
  readonly random: Random
  /** Partitions compared at once (each one descends level by level, a round trip per level). */
  readonly partitionConcurrency: number
  /** Budget of one push batch. */
  readonly batchBytes: number
  /** Abandons the session before its next request (the node is stopping). */
  readonly signal?: AbortSignal
}

/**
 * Digest widths below the root, by depth: 4 bytes for the inner levels, 2 at the leaves (the
 * level with the most digests). A collision hides a difference for one pass only: see passes.
 */
const WIDTH_AT_DEPTH: readonly DigestWidth[] = [8, 4, 4, 2]
/**
 * Passes per session: after each, the roots (full 64 bits) of the partitions that differed are
 * compared again and the ones still differing descend again with a new salt — a difference a
 * truncated digest hid, or a write that landed meanwhile.
 */
export const MAX_PASSES = 3

export interface SessionSummary {
  readonly peer: string
  readonly mode: SessionMode
  readonly partitionsCompared: number
  /** Partitions whose roots differed at the start. */
  readonly partitionsDiffering: number
  /** Descents run (1 when every differing partition agreed after the first). */
  readonly passes: number
  readonly leavesDiffering: number
  /** Records sent to the peer that it stored. */
  readonly pushed: number
  /** Records received from the peer that this node stored. */
  readonly pulled: number
  /** Bytes (keys and values) of the records sent and received, stored or not (node lifecycle progress). */
  readonly bytesMoved: number
  /** Local records removed: older than a version the peer no longer lets travel, or (repair) held by no one else. */
  readonly dropped: number
  /**
   * Partitions whose full 64-bit roots agreed at a check during the session, discounting records
   * past their grace that one side held back because the other lacks the key: at that moment the
   * peer held every record this node held, or a newer one, or (past the grace) nothing. Tombstone
   * collection counts on this (lib/antientropy/certificates.ts).
   */
  readonly agreedPartitions: readonly number[]
  readonly durationMs: number
}

interface Tally {
  partitionsDiffering: number; leavesDiffering: number; pushed: number; pulled: number; dropped: number; bytesMoved: number
  /** Per partition, this pass: XOR of the record hashes either side held back (see SyncLeavesReplyBody.heldBack). */
  readonly heldBack: Map<number, bigint>
}

/**
 * One sync session with one peer, started by this node (Merkle descent, then record exchange).
 * Every step is an apply-if-newer or a version-checked removal, so a session that fails half way
 * (timeout, lost link) leaves both stores consistent and the next round picks up what is left.
 */
export async function runSession(options: SessionOptions): Promise<SessionSummary> {
  const startedMs = options.clock.nowMs()
  const tally: Tally = { partitionsDiffering: 0, leavesDiffering: 0, pushed: 0, pulled: 0, dropped: 0, bytesMoved: 0, heldBack: new Map() }
  const agreedPartitions: number[] = []
  let candidates = options.partitions
  let passes = 0
  for (;;) {
    const differing = await differingRoots(options, candidates, tally.heldBack)
    tally.heldBack.clear()
    const stillDiffering = new Set(differing.map(({ partition }) => partition))
    for (const partition of candidates) if (!stillDiffering.has(partition)) agreedPartitions.push(partition)
    if (passes === 0) tally.partitionsDiffering = differing.length
    if (differing.length === 0 || passes === MAX_PASSES) break
    passes++
    const project = saltedProjection(options.random.int(2 ** 32), (depth) => WIDTH_AT_DEPTH[depth] as DigestWidth)
    await forEachLimited(differing, options.partitionConcurrency, async ({ partition, remoteRoot }) => {
      const leaves = await differingLeaves(options.replica.tree(partition), async (depth, indices) => {
        if (depth === 0) return [remoteRoot]
        // The descent asks for every child of the differing parents: send the parents only.
        const parents = indices.filter((_, i) => i % FANOUT === 0).map((index) => Math.floor(index / FANOUT))
        const width = WIDTH_AT_DEPTH[depth] as DigestWidth
        const reply = await ask<SyncNodesReplyBody>(options, { type: 'syncNodes', body: { partition, depth, parents, salt: project.salt, width, ...repairFlag(options) } }, 'syncNodesReply')
        return unpackDigests(reply.digests, indices.length, 'syncNodesReply.digests', width)
      }, project.projection)
      tally.leavesDiffering += leaves.length
      for (let start = 0; start < leaves.length; start += MAX_BUCKETS_PER_REQUEST) {
        await reconcileLeaves(options, partition, leaves.slice(start, start + MAX_BUCKETS_PER_REQUEST), tally)
      }
    })
    candidates = differing.map(({ partition }) => partition)
  }
  const { partitionsDiffering, leavesDiffering, pushed, pulled, dropped, bytesMoved } = tally
  return {
    peer: options.peer, mode: options.mode, partitionsCompared: options.partitions.length, passes,
    partitionsDiffering, leavesDiffering, pushed, pulled, dropped, bytesMoved, agreedPartitions, durationMs: options.clock.nowMs() - startedMs,
  }
}

/**
 * The partitions among `partitions` whose roots differ from the peer's, with the peer's root.
 * `discount` (XOR of held-back record hashes per partition) is taken out before comparing.
 */
async function differingRoots(options: SessionOptions, partitions: readonly number[], discount: ReadonlyMap<number, bigint>): Promise<{ partition: number; remoteRoot: bigint }[]> {
  const differing: { partition: number; remoteRoot: bigint }[] = []
  for (let start = 0; start < partitions.length; start += MAX_PARTITIONS_PER_REQUEST) {
    const chunk = partitions.slice(start, start + MAX_PARTITIONS_PER_REQUEST)
    const reply = await ask<SyncRootsReplyBody>(options, { type: 'syncRoots', body: { partitions: chunk, ...repairFlag(options) } }, 'syncRootsReply')
    const roots = unpackDigests(reply.roots, chunk.length, 'syncRootsReply.roots')
    chunk.forEach((partition, i) => {
      const remoteRoot = roots[i] as bigint
      if ((options.replica.tree(partition).root() ^ (discount.get(partition) ?? 0n)) !== remoteRoot) differing.push({ partition, remoteRoot })
    })
  }
  return differing
}

/**
 * Sends this node's (key, version) list for some differing leaves; the peer answers with the
 * records it holds newer and says which of ours it holds older or lacks — one round trip per
 * batch of leaves — and records move both ways.
 */
async function reconcileLeaves(options: SessionOptions, partition: number, buckets: readonly number[], tally: Tally): Promise<void> {
  const { replica } = options
  let remaining = [...buckets]
  while (remaining.length > 0) {
    // As many leaves as fit one request's key list (at least one).
    const asked: number[] = []
    const mine: SegmentEntry[] = []
    for (const bucket of remaining) {
      const entries = replica.leafEntries(partition, bucket)
      if (asked.length > 0 && mine.length + entries.length > MAX_KEYS_PER_LEAVES) break
      asked.push(bucket)
      mine.push(...entries)
    }
    const versions = Buffer.concat(mine.map(({ version }) => encodeSegmentVersion(version)), mine.length * VERSION_BYTES)
    const reply = await ask<SyncLeavesReplyBody>(options, { type: 'syncLeaves', body: { partition, buckets: asked, keys: mine.map(({ key }) => key), versions, ...repairFlag(options) } }, 'syncLeavesReply')
    if (reply.done < 1 || reply.done > asked.length) throw new Error(`peer ${options.peer} answered a syncLeaves of ${asked.length} leaves with done ${reply.done}`)
    const ours = (index: number): SegmentEntry => {
      const entry = mine[index]
      if (entry === undefined) throw new Error(`peer ${options.peer} answered a syncLeaves with index ${index} of a ${mine.length}-key list`)
      return entry
    }
    if (reply.heldBack !== undefined) holdBack(tally, partition, unpackDigests(reply.heldBack, 1, 'syncLeavesReply.heldBack')[0] as bigint)
    const older = reply.older.map(ours)
    const missing = reply.missing.map(ours)
    const superseded = reply.superseded.map(ours)

    const entries = reply.records.map(fromSyncRecord)
    const pulledBytes = entries.reduce((sum, entry) => sum + entryBytes(entry), 0)
    tally.bytesMoved += pulledBytes
    await options.limiter.take(pulledBytes, options.signal)
    const applied = await replica.apply(entries)
    tally.pulled += applied.filter(Boolean).length
    // A key the peer lacks may be a delete the cluster already forgot when this node is repairing
    // (versioned before its last contact) or hands off a partition it no longer replicates
    // (older than the hand-off cutoff): such records are dropped; the others are pushed (and,
    // while repairing, kept without pushing).
    const forgetAtOrBeforeMs = options.mode === 'repair'
      ? options.repairCutoffMs ?? Infinity
      : options.handOff?.partitions.has(partition) === true ? options.handOff.cutoffMs : -Infinity
    const forgettable: SegmentEntry[] = []
    const pushable: string[] = []
    for (const entry of missing) {
      if (hlcWallMs(entry.version.hlc) <= forgetAtOrBeforeMs) forgettable.push(entry)
      else pushable.push(entry.key)
    }
    if (options.mode === 'normal') await pushRecords(options, partition, pushable, false, tally)
    // A peer holding an older version gets even a record past its grace: the value must not outlive the delete.
    await pushRecords(options, partition, older.map(({ key }) => key), true, tally)
    // The peer holds a newer version that no longer travels (a tombstone or expiry past the
    // grace): ours is dead either way, and pushing it later would bring it back.
    const dropping = [...superseded, ...forgettable]
    if (dropping.length > 0) {
      // Not `tally.dropped += await …`: that reads the tally before the await and loses concurrent partitions' counts.
      const removed = await replica.drop(dropping)
      tally.dropped += removed
    }
    remaining = remaining.slice(reply.done)
  }
}

/** A repairing node says so, so that a peer repairing too answers it (responder.ts). */
function repairFlag(options: SessionOptions): RepairFlag {
  return options.mode === 'repair' ? { repair: true } : {}
}

function holdBack(tally: Tally, partition: number, hashes: bigint): void {
  tally.heldBack.set(partition, (tally.heldBack.get(partition) ?? 0n) ^ hashes)
}

async function pushRecords(options: SessionOptions, partition: number, keys: readonly string[], evenCollectible: boolean, tally: Tally): Promise<void> {
  let next = 0
  while (next < keys.length) {
    const { entries, done, heldBack } = options.replica.fetch(keys.slice(next, next + MAX_RECORDS_PER_BATCH), options.batchBytes, evenCollectible)
    holdBack(tally, partition, heldBack)
    next += done
    if (entries.length === 0) continue
    const pushedBytes = entries.reduce((sum, entry) => sum + entryBytes(entry), 0)
    tally.bytesMoved += pushedBytes
    await options.limiter.take(pushedBytes, options.signal)
    const reply = await ask<SyncPushReplyBody>(options, { type: 'syncPush', body: { entries: entries.map(toSyncRecord) } }, 'syncPushReply')
    tally.pushed += reply.applied.filter(Boolean).length
  }
}

async function ask<T>(options: SessionOptions, message: PeerMessage, replyType: string): Promise<T> {
  options.signal?.throwIfAborted()
  const reply = await options.request(message)
  if (reply.type !== replyType) throw new Error(`peer ${options.peer} answered ${message.type} with ${reply.type}, expected ${replyType}`)
  return reply.body as T
}
