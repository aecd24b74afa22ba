import { isNodeId, type NodeId } from '../clock/version.js'
import { expectArray, expectObject, expectUint, field, MalformedBodyError } from '../codec/validate.js'
import type { RepairProgress } from './messages.js'
import { groupByPeer, type SyncOutcome, type SyncRequest } from './sync-plan.js'

/**
 * Re-replication after `hearsay members remove`: the partitions this node became a replica of
 * when a removed member left placement ("gained") are synced with every other replica of each,
 * so this node pulls the union of what the live replicas hold and pushes it back to them; then
 * every key that still had a live copy has N again. A partition is done once a session with each
 * of its other replicas succeeded since the removal. Pure bookkeeping: the service runs the
 * sessions (one anti-entropy round at a time), feeds the outcomes back and keeps `snapshot()` in
 * meta, so a node restarted mid-repair still knows which partitions it gained and owes (its
 * placement already counts them as its own, so they could not be told apart again).
 */

/** A repair as meta keeps it: the gained partitions and, per partition, the replicas synced with. */
export interface StoredRepair {
  readonly id: NodeId
  readonly gained: readonly number[]
  readonly synced: readonly (readonly [partition: number, replicas: readonly NodeId[]])[]
  readonly keysMoved: number
  readonly bytesMoved: number
}

/** Bounds on what a stored repair may hold: partitions (config allows at most 65,536) and members per partition. */
const MAX_STORED_PARTITIONS = 65_536
const MAX_STORED_REPLICAS = 64
const MAX_STORED_REPAIRS = 4096

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

  /** What to keep across a restart (restore takes it back). */
  snapshot(): StoredRepair[] {
    return [...this.#repairs].map(([id, repair]) => ({
      id, gained: repair.gained, synced: [...repair.synced].map(([partition, ids]) => [partition, [...ids]] as const),
      keysMoved: repair.keysMoved, bytesMoved: repair.bytesMoved,
    }))
  }

  /** Takes back the repairs a snapshot kept (before any start of this run). */
  restore(stored: readonly StoredRepair[]): void {
    for (const { id, gained, synced, keysMoved, bytesMoved } of stored) {
      this.#repairs.set(id, {
        gained: [...gained],
        synced: new Map(gained.map((partition) => [partition, new Set(synced.find(([p]) => p === partition)?.[1] ?? [])])),
        keysMoved, bytesMoved,
      })
    }
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

/** Reads back what snapshot() stored; throws MalformedBodyError with a one-line reason. */
export function validateStoredRepairs(value: unknown): StoredRepair[] {
  const nodeId = (item: unknown, what: string): NodeId => {
    if (!isNodeId(item)) throw new MalformedBodyError(`${what} must be a node id (16 lowercase hex characters)`)
    return item
  }
  const partition = (item: unknown, what: string): number => expectUint(item, what, MAX_STORED_PARTITIONS - 1)
  return expectArray(value, 'removal repairs', MAX_STORED_REPAIRS, (item, what) => {
    const repair = expectObject(item, what)
    return {
      id: nodeId(field(repair, 'id'), `${what}.id`),
      gained: expectArray(field(repair, 'gained'), `${what}.gained`, MAX_STORED_PARTITIONS, partition),
      synced: expectArray(field(repair, 'synced'), `${what}.synced`, MAX_STORED_PARTITIONS, (pair, pairWhat) => {
        if (!Array.isArray(pair) || pair.length !== 2) throw new MalformedBodyError(`${pairWhat} must be [partition, replicas]`)
        return [partition(pair[0], `${pairWhat}[0]`), expectArray(pair[1], `${pairWhat}[1]`, MAX_STORED_REPLICAS, nodeId)] as const
      }),
      keysMoved: expectUint(field(repair, 'keysMoved'), `${what}.keysMoved`),
      bytesMoved: expectUint(field(repair, 'bytesMoved'), `${what}.bytesMoved`),
    }
  })
}
