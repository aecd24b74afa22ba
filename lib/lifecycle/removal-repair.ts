import type { NodeId } from '../clock/version.js'
import type { RepairProgress } from './messages.js'
import { groupByPeer, type SyncOutcome, type SyncRequest } from './sync-plan.js'

/**
 * Re-replication after `hearsay members remove`: the partitions this node became a replica of
 * when a removed member left placement ("gained") are synced with every other replica of each,
 * so this node pulls the union of what the live replicas hold and pushes it back to them; then
 * every key that still had a live copy has N again. A partition is done once a session with each
 * of its other replicas succeeded since the removal. Pure bookkeeping: the service runs the
 * sessions (one anti-entropy round at a time) and feeds the outcomes back.
 */

export interface RemovalRepairOptions {
  readonly localId: NodeId
  /** The partition's replicas now (this node among them while it still replicates it). */
  readonly replicasOf: (partition: number) => readonly NodeId[]
}

interface Repair {
  readonly gained: readonly number[]
  /** Per gained partition, the other replicas a session succeeded with. */
  readonly synced: Map<number, Set<NodeId>>
  keysMoved: number
  bytesMoved: number
}

export class RemovalRepairs {
  readonly #options: RemovalRepairOptions
  readonly #repairs = new Map<NodeId, Repair>()

  constructor(options: RemovalRepairOptions) {
    this.#options = options
  }

  /** `removed` left placement and this node gained `partitions` (a repeated call adds to them). */
  start(removed: NodeId, partitions: readonly number[]): void {
    const held = this.#repairs.get(removed)
    const gained = [...new Set([...(held?.gained ?? []), ...partitions])].sort((a, b) => a - b)
    const synced = held?.synced ?? new Map<number, Set<NodeId>>()
    for (const partition of gained) if (!synced.has(partition)) synced.set(partition, new Set())
    this.#repairs.set(removed, { gained, synced, keysMoved: held?.keysMoved ?? 0, bytesMoved: held?.bytesMoved ?? 0 })
  }

  /** Per removed member: what is left to do here. */
  progress(): RepairProgress[] {
    return [...this.#repairs].map(([id, repair]) => ({
      id, gained: repair.gained.length, pending: this.#pendingPartitions(repair).length, keysMoved: repair.keysMoved, bytesMoved: repair.bytesMoved,
    }))
  }

  get done(): boolean {
    return [...this.#repairs.values()].every((repair) => this.#pendingPartitions(repair).length === 0)
  }

  /** The sessions still owed, with peers that are alive now. */
  plan(isAlive: (id: NodeId) => boolean): SyncRequest[] {
    const pairs: { partition: number; id: NodeId }[] = []
    for (const repair of this.#repairs.values()) {
      for (const partition of this.#pendingPartitions(repair)) {
        for (const id of this.#owed(repair, partition)) if (isAlive(id)) pairs.push({ partition, id })
      }
    }
    return groupByPeer(pairs)
  }

  /** Records the outcome of the sessions `plan` asked for. */
  record(requests: readonly SyncRequest[], outcomes: readonly SyncOutcome[]): void {
    for (const outcome of outcomes) {
      const request = requests.find((r) => r.id === outcome.id)
      if (request === undefined) continue
      const shares = [...this.#repairs.values()].filter((repair) => request.partitions.some((p) => repair.synced.has(p)))
      // Moved records are counted once, on the first repair the session served.
      if (shares[0] !== undefined) {
        shares[0].keysMoved += outcome.moved
        shares[0].bytesMoved += outcome.bytesMoved
      }
      if (!outcome.ok) continue
      for (const repair of shares) {
        for (const partition of request.partitions) repair.synced.get(partition)?.add(outcome.id)
      }
    }
  }

  #pendingPartitions(repair: Repair): number[] {
    return repair.gained.filter((partition) => this.#owed(repair, partition).length > 0)
  }

  /** Other replicas of `partition` not yet synced with; none once this node no longer replicates it. */
  #owed(repair: Repair, partition: number): NodeId[] {
    const replicas = this.#options.replicasOf(partition)
    if (!replicas.includes(this.#options.localId)) return []
    const synced = repair.synced.get(partition) ?? new Set<NodeId>()
    return replicas.filter((id) => id !== this.#options.localId && !synced.has(id))
  }
}
