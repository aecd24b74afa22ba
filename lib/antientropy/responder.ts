import { decodeSegmentVersion } from '../store/segment-index.js'
import { declineIf, type Transport } from '../transport/transport.js'
import type { LocalReplica } from './local-replica.js'
import { projectDigests } from '../merkle/tree.js'
import {
  fromSyncRecord, packDigests, toSyncRecord, VERSION_BYTES,
  type SyncLeavesBody, type SyncNodesBody, type SyncPushBody, type SyncRootsBody,
} from './messages.js'

/** Budget of the records in one syncLeaves reply, well below the transport's frame limit. */
export const LEAVES_REPLY_MAX_BYTES = 1024 * 1024

export interface ResponderOptions {
  readonly replica: LocalReplica
  /**
   * While this node repairs after an absence longer than the tombstone grace, it answers no
   * session: a peer would otherwise pull records whose deletes were already collected.
   */
  readonly refusal: () => string | undefined
  /** Called with the records a peer pushed that this node stored. */
  readonly onReceived?: (applied: number) => void
}

/** Answers the sync sessions peers start with this node (the initiator side is session.ts). */
export function registerSyncHandlers(transport: Pick<Transport, 'handle'>, options: ResponderOptions): void {
  const { replica } = options
  const refuseIfRepairing = (): void => declineIf(options.refusal())

  transport.handle('syncRoots', (_from, message) => {
    refuseIfRepairing()
    const { partitions } = message.body as SyncRootsBody
    return { type: 'syncRootsReply', body: { roots: packDigests(partitions.map((p) => replica.tree(p).root())) } }
  })

  transport.handle('syncNodes', (_from, message) => {
    refuseIfRepairing()
    const { partition, depth, parents, salt, width } = message.body as SyncNodesBody
    return { type: 'syncNodesReply', body: { digests: packDigests(projectDigests(replica.childDigests(partition, depth, parents), salt, width), width) } }
  })

  transport.handle('syncLeaves', (_from, message) => {
    refuseIfRepairing()
    const { partition, buckets, keys, versions } = message.body as SyncLeavesBody
    const theirs = keys.map((key, i) => ({ key, version: decodeSegmentVersion(versions.subarray(i * VERSION_BYTES, (i + 1) * VERSION_BYTES)) }))
    const { records, heldBack, ...rest } = replica.compareLeaves(partition, buckets, theirs, LEAVES_REPLY_MAX_BYTES)
    return { type: 'syncLeavesReply', body: { records: records.map(toSyncRecord), ...rest, ...(heldBack === 0n ? {} : { heldBack: packDigests([heldBack]) }) } }
  })

  transport.handle('syncPush', async (_from, message) => {
    const { entries } = message.body as SyncPushBody
    const applied = await replica.apply(entries.map(fromSyncRecord))
    options.onReceived?.(applied.filter(Boolean).length)
    return { type: 'syncPushReply', body: { applied } }
  })
}
