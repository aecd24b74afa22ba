import { randomBytes } from 'node:crypto'
import { isNodeId, type NodeId } from '../clock/version.js'
import type { MetaStore } from './meta.js'

/** Bytes of randomness in a node id (16 hex characters). */
const NODE_ID_BYTES = 8

export interface LoadedIdentity {
  readonly id: NodeId
  /** This run's incarnation: 1 on the first start, one more at every start after. */
  readonly incarnation: number
}

/**
 * Who this node is, kept in `meta`: an id created once per data dir (so a restarted node rejoins
 * as the same member) and an incarnation counter bumped at every start (SWIM refutes suspicion
 * with incarnations, so each run must start above the last).
 */
export class NodeIdentity {
  constructor(private readonly meta: MetaStore) {}

  /** Call once per start: the node id (created on first use) and a freshly bumped incarnation. */
  async load(): Promise<LoadedIdentity> {
    const id = await this.nodeId()
    const incarnation = await this.bumpIncarnation()
    return { id, incarnation }
  }

  /** The node id, created and stored durably on first use. */
  async nodeId(): Promise<NodeId> {
    const stored = this.meta.read('nodeId')
    if (stored !== undefined) return storedNodeId(stored)
    // In a transaction: if two callers race, the first id written wins and both return it.
    const id = await this.meta.update('nodeId', current => current ?? randomBytes(NODE_ID_BYTES).toString('hex'))
    return storedNodeId(id)
  }

  /** Increments the incarnation durably and returns the new value. */
  async bumpIncarnation(): Promise<number> {
    return this.meta.update('incarnation', current => {
      if (current === undefined) return 1
      if (typeof current !== 'number' || !Number.isSafeInteger(current) || current < 0) {
        throw new Error(`meta incarnation is not a counter: ${JSON.stringify(current)}`)
      }
      return current + 1
    })
  }
}

function storedNodeId(stored: unknown): NodeId {
  if (!isNodeId(stored)) throw new Error(`meta nodeId is not a node id: ${JSON.stringify(stored)}`)
  return stored
}
