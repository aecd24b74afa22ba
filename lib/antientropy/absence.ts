import { repeatEvery, systemClock, type Clock, type Repeating } from '../runtime/clock.js'
import type { MetaStore } from '../store/meta.js'

export interface AbsenceOptions {
  readonly meta: MetaStore
  readonly tombstoneGraceMs: number
  readonly nowMs: () => number
  /** Runs the contact stamp timer; default systemClock (a simulation passes its fake clock). */
  readonly clock?: Clock
  /**
   * When another member last spoke to this node itself (any membership message it sent us), or
   * undefined if none has in this run. Not "a peer is listed alive": an isolated node whose
   * probing Lifeguard has slowed may list its peers alive long after it last heard from one.
   */
  readonly lastPeerContactMs: () => number | undefined
  readonly onError: (error: unknown) => void
}

/** How often the last-contact time is stamped: a small fraction of the grace, at most a minute. */
export function contactStampIntervalMs(tombstoneGraceMs: number): number {
  return Math.max(MIN_STAMP_INTERVAL_MS, Math.min(MAX_STAMP_INTERVAL_MS, Math.floor(tombstoneGraceMs / 4)))
}
const MIN_STAMP_INTERVAL_MS = 100
const MAX_STAMP_INTERVAL_MS = 60_000

/**
 * The away-past-grace rule (docs/consistency.md "Deletes stay deleted"). Tombstones are collected
 * `tombstoneGrace` after the delete; a node out of contact with every other member for longer may
 * hold values whose deletes were already collected elsewhere, and pushing them would bring them
 * back. So the node stamps in its meta when a peer last spoke to it; a node whose contacts are
 * further apart than the grace — a restart after a long stop, or a peer heard again after a long
 * partition — must repair before it serves or pushes. The flag is durable until the repair
 * completes, so a restart half way through still repairs.
 *
 * A node that never had a peer has nothing to fear: its records are all its own.
 */
export class AbsenceTracker {
  readonly #options: AbsenceOptions
  #lastContactMs: number | undefined
  #repairRequired = false
  #timer: Repeating | undefined

  constructor(options: AbsenceOptions) {
    this.#options = options
    const last = options.meta.read('lastPeerContactMs')
    this.#lastContactMs = typeof last === 'number' ? last : undefined
    this.#repairRequired = options.meta.read('repairRequired') === true
    this.#checkAbsence()
  }

  /** True while this node must repair before serving. */
  get repairRequired(): boolean {
    return this.#repairRequired
  }

  get lastContactMs(): number | undefined {
    return this.#lastContactMs
  }

  start(): void {
    this.#timer = repeatEvery(this.#options.clock ?? systemClock, contactStampIntervalMs(this.#options.tombstoneGraceMs), () => this.observe())
    this.observe()
  }

  stop(): void {
    this.#timer?.stop()
    this.#timer = undefined
  }

  /**
   * Checks the rule against the latest contact and stamps it. Call it also the moment a member
   * becomes alive, before syncing with it: after a long partition the rule must bite first.
   */
  observe(): void {
    const heardMs = this.#options.lastPeerContactMs()
    if (heardMs === undefined || (this.#lastContactMs !== undefined && heardMs <= this.#lastContactMs)) return
    // Silence between two contacts longer than the grace: deletes may have been collected meanwhile.
    if (this.#repairRequired || (this.#lastContactMs !== undefined && heardMs - this.#lastContactMs > this.#options.tombstoneGraceMs)) {
      this.#requireRepair()
      return
    }
    this.#lastContactMs = heardMs
    this.#persist('lastPeerContactMs', heardMs)
  }

  /** The repair completed: serve again and count contact from now. */
  repaired(): void {
    this.#repairRequired = false
    this.#lastContactMs = this.#options.nowMs()
    this.#persist('repairRequired', false)
    this.#persist('lastPeerContactMs', this.#lastContactMs)
  }

  /** At start: a node stopped for longer than the grace repairs before it serves. */
  #checkAbsence(): void {
    if (this.#lastContactMs !== undefined && this.#options.nowMs() - this.#lastContactMs > this.#options.tombstoneGraceMs) this.#requireRepair()
  }

  #requireRepair(): void {
    if (this.#repairRequired) return
    this.#repairRequired = true
    this.#persist('repairRequired', true)
  }

  #persist(key: 'lastPeerContactMs' | 'repairRequired', value: number | boolean): void {
    this.#options.meta.update(key, () => value).catch(this.#options.onError)
  }
}
