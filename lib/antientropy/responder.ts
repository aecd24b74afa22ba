import { decodeSegmentVersion } from '../store/segment-index.js'
import { declineIf, type Transport } from '../transport/transport.js'
import type { LocalReplica } from './local-replica.js'
import { projectDigests } from '../merkle/tree.js'
import {
  fromSyncRecord, packDigests, toSyncRecord, VERSION_BYTES,
  type RepairFlag, type SyncLeavesBody, type SyncNodesBody, type SyncPushBody, type SyncRootsBody,
} from './messages.js'

/** Budget of the records in one syncLeaves reply, well below the transport's frame limit. */
export const LEAVES_REPLY_MAX_BYTES = 1024 * 1024

export interface ResponderOptions {
  readonly replica: LocalReplica
  /**
   * While this node repairs after an absence longer than the tombstone grace, it answers no
   * normal session: a peer would otherwise pull records whose deletes were already collected.
   */
  readonly refusal: () => string | undefined
  /**
   * While repairing: this node's last contact before its absence. A peer repairing too is
   * answered (otherwise replicas that were all away wait for each other forever), but records
   * it lacks versioned at or before this are withheld: this node drops those in its own session
   * with that peer unless someone holds them, exactly as when it repairs from a peer that stayed.
   */
  readonly repairCutoffMs: () => number | undefined
  /** Called with the records a peer pushed that this node stored. */
  readonly onReceived?: (applied: number) => void
}

/** Answers the sync sessions peers start with this node (the initiator side is session.ts). */
export function registerSyncHandlers(transport: Pick<Transport, 'handle'>, options: ResponderOptions): void {
  const { replica } = options
  /** Declines a normal session while repairing; answers the bound of what is withheld. */
  const admit = (body: RepairFlag): number => {
    const refusal = options.refusal()
    if (refusal === undefined) return -Infinity
    if (body.repair !== true) declineIf(refusal)
    return options.repairCutoffMs() ?? Infinity
  }

  transport.handle('syncRoots', (_from, message) => {
    admit(message.body as SyncRootsBody)
    const { partitions } = message.body as SyncRootsBody
    return { type: 'syncRootsReply', body: { roots: packDigests(partitions.map((p) => replica.tree(p).root())) } }
  })

  transport.handle('syncNodes', (_from, message) => {
    admit(message.body as SyncNodesBody)
    const { partition, depth, parents, salt, width } = message.body as SyncNodesBody
    return { type: 'syncNodesReply', body: { digests: packDigests(projectDigests(replica.childDigests(partition, depth, parents), salt, width), width) } }
  })

  transport.handle('syncLeaves', (_from, message) => {
    const withholdAtOrBeforeMs = admit(message.body as SyncLeavesBody)
    const { partition, buckets, keys, versions } = message.body as SyncLeavesBody
    const theirs = keys.map((key, i) => ({ key, version: decodeSegmentVersion(versions.subarray(i * VERSION_BYTES, (i + 1) * VERSION_BYTES)) }))
    const { records, heldBack, ...rest } = replica.compareLeaves(partition, buckets, theirs, LEAVES_REPLY_MAX_BYTES, withholdAtOrBeforeMs)
    return { type: 'syncLeavesReply', body: { records: records.map(toSyncRecord), ...rest, ...(heldBack === 0n ? {} : { heldBack: packDigests([heldBack]) }) } }
  })

  transport.handle('syncPush', async (_from, message) => {
    const { entries } = message.body as SyncPushBody
    const applied = await replica.apply(entries.map(fromSyncRecord))
    options.onReceived?.(applied.filter(Boolean).length)
    return { type: 'syncPushReply', body: { applied } }
  })
}
