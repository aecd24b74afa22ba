import type { NodeId } from '../clock/version.js'
import type { Logger } from '../log/logger.js'
import { LEAF_COUNT } from '../merkle/tree.js'
import type { Clock } from '../runtime/clock.js'
import type { Random } from '../runtime/random.js'
import type { ScheduledJob, Scheduler } from '../runtime/scheduler.js'
import type { PeerMessage } from '../transport/transport.js'
import type { AbsenceTracker } from './absence.js'
import type { SyncCertificates } from './certificates.js'
import type { LocalReplica } from './local-replica.js'
import { ByteRateLimiter } from './rate-limit.js'
import { runSession, type SessionMode, type SessionSummary } from './session.js'

/**
 * What starts a round: the cron schedule, a member that came (back), a placement change, an
 * operator, or node lifecycle (a decommission streaming its partitions, a removal's repair).
 */
export type RoundTrigger = 'schedule' | 'member' | 'rebalance' | 'admin' | 'lifecycle'

export interface AntiEntropyOptions {
  readonly localId: NodeId
  /** node-cron expression (validated at config load). */
  readonly schedule: string
  /** Runs the schedule: node-cron in the daemon, the fake clock in simulations. */
  readonly scheduler: Scheduler
  /** Round durations and the rate limiter's waits. */
  readonly clock: Clock
  /** Picks the peer per partition and each session's digest salt. */
  readonly random: Random
  /** False: no rounds of its own (schedule, member, rebalance); only syncNow() and peers' sessions. */
  readonly automatic: boolean
  readonly replica: LocalReplica
  readonly absence: AbsenceTracker
  /** Where sessions that agreed are recorded, for tombstone collection. */
  readonly certificates: SyncCertificates
  /** Placement: the partitions a member replicates, and a partition's replicas. */
  readonly ownedPartitions: (id: NodeId) => readonly number[]
  readonly replicasOf: (partition: number) => readonly NodeId[]
  /**
   * True while this node is a placement member. A node that is leaving (or restarting: SIGTERM
   * leaves gracefully) owns nothing in its own view, which must not read as "hand everything off".
   */
  readonly inPlacement: () => boolean
  /** Partitions this node holds records of (its Merkle trees). */
  readonly heldPartitions: () => readonly number[]
  /**
   * Wall time (ms) at or before which a record of a partition this node no longer replicates is
   * not handed off but dropped when the replica lacks it: now − store.tombstoneGrace +
   * clock.maxSkewMs. Replicas collect a tombstone once every replica holds it and it is past the
   * grace on their clock, without waiting for nodes that merely still hold an older copy; any
   * value such a tombstone superseded is at least this old on this node's clock.
   */
  readonly handOffCutoffMs: () => number
  /** The peer address of an alive member; undefined when it is not alive. */
  readonly alivePeer: (id: NodeId) => string | undefined
  readonly aliveMembers: () => readonly NodeId[]
  readonly request: (peer: string, message: PeerMessage, timeoutMs: number) => Promise<PeerMessage>
  readonly requestTimeoutMs: number
  readonly maxBytesPerSecond: number
  readonly batchBytes: number
  readonly partitionConcurrency: number
  readonly log: Logger
  readonly onRound?: (summary: RoundSummary) => void
  /** Called as a round begins (the dashboard measures the bytes a round moves from here). */
  readonly onRoundStart?: () => void
}

export interface SessionFailure { readonly peer: string; readonly error: string }

export interface RoundSummary {
  readonly trigger: RoundTrigger
  readonly mode: SessionMode
  readonly sessions: readonly SessionSummary[]
  readonly failures: readonly SessionFailure[]
  /** Partitions this node no longer replicates whose records it removed after handing them over. */
  readonly handedOff: readonly number[]
  /** True while the node still repairs after a long absence (see AbsenceTracker). */
  readonly repairing: boolean
  readonly durationMs: number
}

interface PlannedSession { readonly id: NodeId; readonly peer: string; readonly partitions: readonly number[] }

/**
 * Schedules sync sessions: which peer, which partitions, when; one round at a time (a trigger
 * that arrives during a round waits for it). Also finishes a repair after a long absence and
 * hands off partitions this node no longer replicates before removing them.
 */
export class AntiEntropy {
  readonly #options: AntiEntropyOptions
  readonly #limiter: ByteRateLimiter
  #task: ScheduledJob | undefined
  #queue: Promise<unknown> = Promise.resolve()
  /** Aborts the session in flight at stop(). */
  readonly #stopping = new AbortController()
  /** Peers with a member-triggered round queued, so a flapping member queues one round. */
  readonly #pendingPeers = new Set<NodeId>()
  /** Partitions synced with a peer since the repair began. */
  readonly #repaired = new Set<number>()
  /** Partitions of the session in flight (the dashboard's partition map shows them). */
  #syncing: readonly number[] = []

  constructor(options: AntiEntropyOptions) {
    this.#options = options
    this.#limiter = new ByteRateLimiter(options.maxBytesPerSecond, options.clock)
  }

  get repairing(): boolean {
    return this.#options.absence.repairRequired
  }

  /** Partitions being synced right now, and while repairing those not yet synced with another replica. */
  syncingPartitions(): number[] {
    const syncing = new Set(this.#syncing)
    if (this.repairing) {
      for (const partition of this.#options.ownedPartitions(this.#options.localId)) {
        if (!this.#repaired.has(partition)) syncing.add(partition)
      }
    }
    return [...syncing].sort((a, b) => a - b)
  }

  start(): void {
    this.#options.absence.start()
    if (!this.#options.automatic) return
    this.#task = this.#options.scheduler.every(this.#options.schedule, 'anti-entropy', async () => { void this.#enqueue('schedule', () => this.#scheduledPlan()).catch(() => undefined) })
  }

  async stop(): Promise<void> {
    this.#stopping.abort()
    this.#options.absence.stop()
    await this.#task?.stop()
    await this.#queue.catch(() => undefined)
  }

  /** POST /admin/sync: a round with every alive peer now; resolves with its summary. */
  syncNow(): Promise<RoundSummary> {
    return this.#enqueue('admin', () => this.#options.aliveMembers().filter((id) => id !== this.#options.localId).flatMap((id) => this.#planWith(id)))
  }

  /**
   * Sessions node lifecycle asks for (lib/lifecycle: a decommission's stream to the new owners, a
   * removal's re-replication), in the same queue as every other round; peers not alive are skipped.
   * Runs whether or not rounds are automatic: an operator started it.
   */
  syncPartitions(requests: readonly { readonly id: NodeId; readonly partitions: readonly number[] }[]): Promise<RoundSummary> {
    return this.#enqueue('lifecycle', () => requests.flatMap(({ id, partitions }) => {
      const peer = this.#options.alivePeer(id)
      return peer === undefined || partitions.length === 0 ? [] : [{ id, peer, partitions: [...partitions] }]
    }))
  }

  /** A member became alive or joined: sync with it at once. */
  memberAlive(id: NodeId): void {
    if (id === this.#options.localId) return
    // After a long partition the absence rule must bite before any session pushes.
    this.#options.absence.observe()
    if (!this.#options.automatic || this.#pendingPeers.has(id)) return
    this.#pendingPeers.add(id)
    void this.#enqueue('member', () => {
      this.#pendingPeers.delete(id)
      return this.#planWith(id)
    }).catch(() => undefined)
  }

  /** Members joined or left: pull newly replicated partitions, hand off the ones no longer ours. */
  placementChanged(): void {
    if (!this.#options.automatic) return
    void this.#enqueue('rebalance', () => this.#scheduledPlan()).catch(() => undefined)
  }

  #enqueue(trigger: RoundTrigger, plan: () => PlannedSession[]): Promise<RoundSummary> {
    const round = this.#queue.then(() => this.#round(trigger, plan()))
    this.#queue = round.catch(() => undefined)
    return round
  }

  /**
   * One random alive peer per partition this node replicates; every alive replica of a partition
   * it holds but no longer replicates (the hand-off must reach all of them before removal).
   */
  #scheduledPlan(): PlannedSession[] {
    const { localId } = this.#options
    const byPeer = new Map<NodeId, number[]>()
    const add = (id: NodeId, partition: number): void => {
      const list = byPeer.get(id)
      if (list === undefined) byPeer.set(id, [partition])
      else list.push(partition)
    }
    for (const partition of this.#options.ownedPartitions(localId)) {
      const peers = this.#options.replicasOf(partition).filter((id) => id !== localId && this.#options.alivePeer(id) !== undefined)
      const chosen = peers.length === 0 ? undefined : peers[this.#options.random.int(peers.length)]
      if (chosen !== undefined) add(chosen, partition)
    }
    for (const partition of this.#handOffCandidates()) {
      for (const id of this.#options.replicasOf(partition)) if (this.#options.alivePeer(id) !== undefined) add(id, partition)
    }
    return [...byPeer].map(([id, partitions]) => ({ id, peer: this.#options.alivePeer(id) as string, partitions }))
  }

  /** Every partition both replicate, plus the ones this node hands off to the peer. */
  #planWith(id: NodeId): PlannedSession[] {
    const peer = this.#options.alivePeer(id)
    if (peer === undefined) return []
    const theirs = new Set(this.#options.ownedPartitions(id))
    const partitions = [...this.#options.ownedPartitions(this.#options.localId), ...this.#handOffCandidates()].filter((p) => theirs.has(p))
    return partitions.length === 0 ? [] : [{ id, peer, partitions: [...new Set(partitions)].sort((a, b) => a - b) }]
  }

  /** Partitions this node holds records of but does not replicate (not while repairing). */
  #handOffCandidates(): number[] {
    if (this.repairing || !this.#options.inPlacement()) return []
    const owned = new Set(this.#options.ownedPartitions(this.#options.localId))
    return this.#options.heldPartitions().filter((p) => !owned.has(p))
  }

  async #round(trigger: RoundTrigger, plan: readonly PlannedSession[]): Promise<RoundSummary> {
    const startedMs = this.#options.clock.nowMs()
    this.#options.onRoundStart?.()
    const mode: SessionMode = this.repairing ? 'repair' : 'normal'
    const sessions: SessionSummary[] = []
    const failures: SessionFailure[] = []
    const succeeded = new Map<number, Set<NodeId>>()
    const handingOff = new Set(this.#handOffCandidates())
    for (const { id, peer, partitions } of plan) {
      if (this.#stopping.signal.aborted) break
      try {
        const sessionStartedMs = this.#options.clock.nowMs()
        this.#syncing = partitions
        const summary = await runSession({
          peer, partitions, mode,
          handOff: { partitions: handingOff, cutoffMs: this.#options.handOffCutoffMs() },
          ...(mode === 'repair' && this.#options.absence.lastContactMs !== undefined ? { repairCutoffMs: this.#options.absence.lastContactMs } : {}),
          signal: this.#stopping.signal,
          replica: this.#options.replica,
          request: (message) => this.#options.request(peer, message, this.#options.requestTimeoutMs),
          limiter: this.#limiter,
          clock: this.#options.clock,
          random: this.#options.random,
          partitionConcurrency: this.#options.partitionConcurrency,
          batchBytes: this.#options.batchBytes,
        })
        sessions.push(summary)
        this.#options.certificates.record(id, summary.agreedPartitions, sessionStartedMs)
        for (const partition of partitions) {
          const peers = succeeded.get(partition) ?? new Set<NodeId>()
          peers.add(id)
          succeeded.set(partition, peers)
          if (mode === 'repair') this.#repaired.add(partition)
        }
      } catch (error) {
        failures.push({ peer, error: error instanceof Error ? error.message : String(error) })
      } finally {
        this.#syncing = []
      }
    }
    if (mode === 'repair') this.#finishRepairIfDone()
    const handedOff = mode === 'normal' && !this.#stopping.signal.aborted ? await this.#dropHandedOff(succeeded) : []
    const summary: RoundSummary = { trigger, mode, sessions, failures, handedOff, repairing: this.repairing, durationMs: this.#options.clock.nowMs() - startedMs }
    this.#options.onRound?.(summary)
    return summary
  }

  /** The repair is done once every partition this node replicates was synced with another replica. */
  #finishRepairIfDone(): void {
    const { localId } = this.#options
    // Before it has joined, a node's placement holds only itself: that is not "no one to ask".
    if (!this.#options.aliveMembers().some((id) => id !== localId)) return
    const pending = this.#options.ownedPartitions(localId).filter((p) => {
      // A partition only this node replicates has no one to repair from, nor anyone to resurrect into.
      const others = this.#options.replicasOf(p).some((id) => id !== localId)
      return others && !this.#repaired.has(p)
    })
    if (pending.length > 0) {
      this.#options.log.warn({ pendingPartitions: pending.length }, 'still repairing after a long absence: some partitions have no reachable replica to sync with yet')
      return
    }
    this.#repaired.clear()
    this.#options.absence.repaired()
    this.#options.log.info('repair after a long absence is complete; serving again')
  }

  /** Removes the records of handed-off partitions whose every replica took them in this round. */
  async #dropHandedOff(succeeded: ReadonlyMap<number, ReadonlySet<NodeId>>): Promise<number[]> {
    const dropped: number[] = []
    for (const partition of this.#handOffCandidates()) {
      const replicas = this.#options.replicasOf(partition)
      const reached = succeeded.get(partition)
      if (replicas.length === 0 || reached === undefined || !replicas.every((id) => reached.has(id))) continue
      for (let bucket = 0; bucket < LEAF_COUNT; bucket++) {
        const entries = this.#options.replica.leafEntries(partition, bucket)
        if (entries.length > 0) await this.#options.replica.drop(entries)
      }
      this.#options.replica.release(partition)
      dropped.push(partition)
    }
    return dropped
  }
}

export interface RoundTotals {
  readonly partitionsCompared: number
  readonly partitionsDiffering: number
  readonly leavesDiffering: number
  readonly pushed: number
  readonly pulled: number
  readonly dropped: number
}

export function roundTotals(summary: RoundSummary): RoundTotals {
  const totals = { partitionsCompared: 0, partitionsDiffering: 0, leavesDiffering: 0, pushed: 0, pulled: 0, dropped: 0 }
  for (const session of summary.sessions) {
    for (const field of Object.keys(totals) as (keyof RoundTotals)[]) totals[field] += session[field]
  }
  return totals
}

/** The round as POST /admin/sync answers it: totals first, then one entry per peer. */
export function describeRound(summary: RoundSummary): Record<string, unknown> {
  return {
    trigger: summary.trigger,
    mode: summary.mode,
    repairing: summary.repairing,
    durationMs: summary.durationMs,
    peers: summary.sessions.length,
    ...roundTotals(summary),
    handedOffPartitions: summary.handedOff.length,
    failures: summary.failures.length,
    sessions: Object.fromEntries(summary.sessions.map(({ peer, mode: _mode, ...rest }) => [peer, rest])),
    ...(summary.failures.length > 0 ? { failed: Object.fromEntries(summary.failures.map(({ peer, error }) => [peer, error])) } : {}),
  }
}
