import type { NodeId } from '../clock/version.js'

/** Sessions to run: per peer, the partitions to sync with it. */
export interface SyncRequest {
  readonly id: NodeId
  readonly partitions: readonly number[]
}

/** How one requested session went. */
export interface SyncOutcome {
  readonly id: NodeId
  /** False when the session failed (timeout, lost link, peer declined) or was not run (peer not alive). */
  readonly ok: boolean
  /** Partitions whose full Merkle roots were equal on both sides at a check during the session. */
  readonly agreed: readonly number[]
  /** Records that moved either way, and their bytes (keys and values). */
  readonly moved: number
  readonly bytesMoved: number
  readonly error?: string
}

/** Runs sessions (one anti-entropy round, lib/antientropy AntiEntropy.syncWith) and reports each. */
export type SyncRunner = (requests: readonly SyncRequest[]) => Promise<SyncOutcome[]>

/** Groups (partition, peer) pairs into one request per peer, partitions ascending. */
export function groupByPeer(pairs: Iterable<{ readonly partition: number; readonly id: NodeId }>): SyncRequest[] {
  const byPeer = new Map<NodeId, number[]>()
  for (const { partition, id } of pairs) {
    const list = byPeer.get(id)
    if (list === undefined) byPeer.set(id, [partition])
    else if (!list.includes(partition)) list.push(partition)
  }
  return [...byPeer].map(([id, partitions]) => ({ id, partitions: partitions.sort((a, b) => a - b) }))
}
