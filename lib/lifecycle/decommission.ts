import type { NodeId } from '../clock/version.js'
import type { Logger } from '../log/logger.js'
import { sleep, type Clock } from '../runtime/clock.js'
import { groupByPeer, type SyncRunner } from './sync-plan.js'

/**
 * The decommission of this node as a state machine (`hearsay decommission`, docs/operations.md):
 *
 * - `streaming`: for every partition it replicates, sync it with each pending replica (the member
 *   that takes its place once it is gone, lib/placement PlacementTable.pendingReplicas) until a
 *   session saw their Merkle roots equal: that new owner confirmed it holds what this node holds.
 *   Writes arriving meanwhile reach the pending replicas too (extra write targets), so what was
 *   confirmed stays confirmed but for writes in flight.
 * - `draining`: hints this node keeps for alive members are handed off.
 * - `verifying`: one more session per (partition, new owner): roots must still be equal, else
 *   back to streaming for the ones that moved.
 * - `leaving`: this node announces `left` (SWIM); every node drops it from placement and its
 *   pending replicas become replicas, each already holding the partition.
 * - `settling` → `left`: one more session per pair, until each agrees: a write that reached this
 *   node after the verification but missed its new owner (the extra write lost, say) is pushed
 *   now that coordinators no longer send this node anything. Only then does it report `left`.
 *
 * Until `left` the node stays a replica of everything it held (reads, the CASPaxos acceptor set),
 * so no key has fewer than N copies at any moment. Time only through the injected Clock.
 */

export type DecommissionPhase = 'streaming' | 'draining' | 'verifying' | 'leaving' | 'settling' | 'left' | 'stopped'

export interface DecommissionOptions {
  readonly clock: Clock
  /** Partitions this node replicates now. */
  readonly ownedPartitions: () => readonly number[]
  /** The members that will replicate `partition` once this node is gone and do not now. */
  readonly pendingReplicas: (partition: number) => readonly NodeId[]
  readonly isAlive: (id: NodeId) => boolean
  readonly sync: SyncRunner
  /** Hints this node holds for alive members (those must be handed off before it goes). */
  readonly hintsPending: () => number
  /** Announces `left` and resolves once the news has spread (bounded by the caller). */
  readonly leave: () => Promise<void>
  /** Wait before retrying when a round made no progress (a new owner down, sessions failing). */
  readonly retryDelayMs: number
  readonly log: Logger
  readonly onPhase?: (phase: DecommissionPhase) => void
}

export interface DecommissionProgress {
  readonly phase: DecommissionPhase
  readonly startedAtMs: number
  /** (partition, new owner) pairs to confirm, and those confirmed so far. */
  readonly transfers: number
  readonly confirmed: number
  /** Partitions with at least one new owner still to confirm. */
  readonly partitionsPending: number
  /** Records moved to (or from) the new owners, and their bytes (keys and values). */
  readonly keysMoved: number
  readonly bytesMoved: number
  readonly rounds: number
  /** New owners not alive now, which the decommission waits for. */
  readonly waitingFor: readonly NodeId[]
  readonly lastError?: string
  readonly finishedAtMs?: number
}

const pairKey = (partition: number, id: NodeId): string => `${partition}:${id}`

export class Decommission {
  readonly #options: DecommissionOptions
  readonly #stopping = new AbortController()
  readonly #confirmed = new Set<string>()
  #phase: DecommissionPhase = 'streaming'
  #startedAtMs: number
  #finishedAtMs: number | undefined
  #keysMoved = 0
  #bytesMoved = 0
  #rounds = 0
  #lastError: string | undefined
  #pairs: { partition: number; id: NodeId }[] = []
  #running: Promise<void> | undefined

  constructor(options: DecommissionOptions) {
    this.#options = options
    this.#startedAtMs = options.clock.nowMs()
  }

  get phase(): DecommissionPhase {
    return this.#phase
  }

  /** Runs to `left` (or until stop()); resolves when it is over. Calling it again returns the same run. */
  run(): Promise<void> {
    this.#running ??= this.#run().catch((error: unknown) => {
      if (this.#stopping.signal.aborted) return
      // Nothing in the loop throws by design (sessions report failures); this is a bug, said loudly.
      this.#lastError = error instanceof Error ? error.message : String(error)
      this.#options.log.error({ err: error }, 'decommission stopped by an unexpected error; run hearsay decommission again')
      this.#setPhase('stopped')
    })
    return this.#running
  }

  /** Abandons the decommission (the node is stopping); the node stays a member. */
  async stop(): Promise<void> {
    this.#stopping.abort()
    if (this.#phase !== 'left') this.#setPhase('stopped')
    await this.#running
  }

  progress(): DecommissionProgress {
    const pairs = this.#pairs
    const confirmed = pairs.filter(({ partition, id }) => this.#confirmed.has(pairKey(partition, id)))
    const pendingPartitions = new Set(pairs.filter(({ partition, id }) => !this.#confirmed.has(pairKey(partition, id))).map(({ partition }) => partition))
    const waitingFor = [...new Set(pairs.filter(({ partition, id }) => !this.#confirmed.has(pairKey(partition, id)) && !this.#options.isAlive(id)).map(({ id }) => id))].sort()
    return {
      phase: this.#phase,
      startedAtMs: this.#startedAtMs,
      transfers: pairs.length,
      confirmed: confirmed.length,
      partitionsPending: pendingPartitions.size,
      keysMoved: this.#keysMoved,
      bytesMoved: this.#bytesMoved,
      rounds: this.#rounds,
      waitingFor,
      ...(this.#lastError !== undefined ? { lastError: this.#lastError } : {}),
      ...(this.#finishedAtMs !== undefined ? { finishedAtMs: this.#finishedAtMs } : {}),
    }
  }

  async #run(): Promise<void> {
    const { log } = this.#options
    log.info('decommission started: streaming this node\'s partitions to their new owners')
    for (;;) {
      await this.#streamUntilConfirmed()
      this.#setPhase('draining')
      while (this.#options.hintsPending() > 0) await this.#pause()
      this.#setPhase('verifying')
      // Confirmed pairs are checked once more: roots equal still, or streamed again.
      const stale = await this.#round(this.#pairs, true)
      if (stale === 0) break
      log.info({ stale }, 'decommission: partitions changed since they were confirmed; streaming them again')
      this.#setPhase('streaming')
    }
    this.#setPhase('leaving')
    await this.#options.leave()
    this.#setPhase('settling')
    while ((await this.#round(this.#pairs, true)) > 0) await this.#pause()
    this.#finishedAtMs = this.#options.clock.nowMs()
    this.#setPhase('left')
    log.info({ ...this.progress() }, 'decommissioned: every partition is confirmed by its new owners and this node has left the cluster; stop this daemon (its data dir is no longer needed)')
  }

  async #streamUntilConfirmed(): Promise<void> {
    for (;;) {
      this.#stopping.signal.throwIfAborted()
      this.#pairs = this.#currentPairs()
      const open = this.#pairs.filter(({ partition, id }) => !this.#confirmed.has(pairKey(partition, id)))
      if (open.length === 0) return
      const confirmedBefore = this.#confirmed.size
      await this.#round(open, false)
      if (this.#confirmed.size === confirmedBefore) await this.#pause()
    }
  }

  /** Every (partition this node replicates, member taking its place there). */
  #currentPairs(): { partition: number; id: NodeId }[] {
    const pairs: { partition: number; id: NodeId }[] = []
    for (const partition of this.#options.ownedPartitions()) {
      for (const id of this.#options.pendingReplicas(partition)) pairs.push({ partition, id })
    }
    return pairs
  }

  /**
   * One round of sessions over `pairs` with the alive new owners. Pairs whose roots agreed are
   * confirmed; with `recheck`, a confirmed pair that did not agree loses its confirmation.
   * Resolves with the pairs that are not confirmed afterwards.
   */
  async #round(pairs: readonly { partition: number; id: NodeId }[], recheck: boolean): Promise<number> {
    this.#stopping.signal.throwIfAborted()
    const reachable = pairs.filter(({ id }) => this.#options.isAlive(id))
    const outcomes = reachable.length === 0 ? [] : await this.#options.sync(groupByPeer(reachable))
    this.#stopping.signal.throwIfAborted()
    this.#rounds++
    const agreed = new Set<string>()
    for (const outcome of outcomes) {
      this.#keysMoved += outcome.moved
      this.#bytesMoved += outcome.bytesMoved
      if (!outcome.ok && outcome.error !== undefined) this.#lastError = `session with ${outcome.id} failed: ${outcome.error}`
      for (const partition of outcome.agreed) agreed.add(pairKey(partition, outcome.id))
    }
    let open = 0
    for (const { partition, id } of pairs) {
      const key = pairKey(partition, id)
      if (agreed.has(key)) this.#confirmed.add(key)
      else {
        if (recheck) this.#confirmed.delete(key)
        open++
      }
    }
    return open
  }

  async #pause(): Promise<void> {
    await sleep(this.#options.clock, this.#options.retryDelayMs, this.#stopping.signal)
  }

  #setPhase(phase: DecommissionPhase): void {
    if (this.#phase === phase) return
    this.#phase = phase
    this.#options.onPhase?.(phase)
  }
}
