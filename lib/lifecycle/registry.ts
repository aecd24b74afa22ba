import type { NodeId } from '../clock/version.js'
import { MAX_LIFECYCLE_RECORDS, type LeavingRecord, type LifecycleRecord, type RemovalRecord } from './messages.js'

/**
 * The cluster's lifecycle records as this node holds them: which members were removed for good
 * and which are leaving. A state-based CRDT, so gossip in any order and any number of times
 * converges: a removal is never undone (two removals of one id keep the earlier, ties by the
 * remover's id), and a member's leaving records are ordered by their start time, a cancel
 * winning a tie. Pure: persisting and spreading the records is the service's job.
 */
export class LifecycleRegistry {
  readonly #removed = new Map<NodeId, RemovalRecord>()
  readonly #leaving = new Map<NodeId, LeavingRecord>()

  constructor(records: readonly LifecycleRecord[] = []) {
    this.merge(records)
  }

  get size(): number {
    return this.#removed.size + this.#leaving.size
  }

  /** Room for one more removal (the records are bounded by MAX_LIFECYCLE_RECORDS). */
  get full(): boolean {
    return this.size >= MAX_LIFECYCLE_RECORDS
  }

  /** Applies `records`; returns the ones that changed what this registry holds. */
  merge(records: readonly LifecycleRecord[]): LifecycleRecord[] {
    const changed: LifecycleRecord[] = []
    for (const record of records) if (this.#apply(record)) changed.push(record)
    return changed
  }

  records(): LifecycleRecord[] {
    return [...this.#removed.values(), ...this.#leaving.values()]
  }

  isRemoved(id: NodeId): boolean {
    return this.#removed.has(id)
  }

  removal(id: NodeId): RemovalRecord | undefined {
    return this.#removed.get(id)
  }

  removals(): RemovalRecord[] {
    return [...this.#removed.values()]
  }

  leaving(id: NodeId): LeavingRecord | undefined {
    return this.#leaving.get(id)
  }

  /** Members with an active leaving record that were not removed meanwhile. */
  activeLeaving(): Set<NodeId> {
    const ids = new Set<NodeId>()
    for (const record of this.#leaving.values()) if (record.active && !this.#removed.has(record.id)) ids.add(record.id)
    return ids
  }

  /** True when `theirs` lacks something this registry holds (a push-pull then answers). */
  knowsMoreThan(theirs: readonly LifecycleRecord[]): boolean {
    return new LifecycleRegistry(theirs).merge(this.records()).length > 0
  }

  #apply(record: LifecycleRecord): boolean {
    if (record.kind === 'removed') {
      const held = this.#removed.get(record.id)
      if (held !== undefined && !earlierRemoval(record, held)) return false
      // A removed member's leaving record is moot; dropping it keeps room for removals.
      if (held === undefined && this.#leaving.delete(record.id) === false && this.full) return false
      this.#removed.set(record.id, record)
      return true
    }
    if (this.#removed.has(record.id)) return false
    const held = this.#leaving.get(record.id)
    if (held === undefined) {
      if (this.full) return false
    } else if (!(record.startedAtMs > held.startedAtMs || (record.startedAtMs === held.startedAtMs && held.active && !record.active))) {
      return false
    }
    this.#leaving.set(record.id, record)
    return true
  }
}

function earlierRemoval(a: RemovalRecord, b: RemovalRecord): boolean {
  return a.atMs < b.atMs || (a.atMs === b.atMs && a.by < b.by)
}
