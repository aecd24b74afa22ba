import type { NodeId } from '../clock/version.js'
import { ConflictError, NotFoundError } from '../errors.js'
import type { Logger } from '../log/logger.js'
import type { Member } from '../membership/member-table.js'
import { repeatEvery, sleep, type Clock, type Repeating } from '../runtime/clock.js'
import type { Random } from '../runtime/random.js'
import type { PeerAddress, PeerMessage, Transport } from '../transport/transport.js'
import { Decommission, type DecommissionProgress } from './decommission.js'
import {
  LIFECYCLE_GOSSIP, LIFECYCLE_PROGRESS, LIFECYCLE_PROGRESS_REPLY, MAX_LIFECYCLE_RECORDS, validateLifecycleProgressReply,
  type LeavingRecord, type LifecycleGossipBody, type LifecycleRecord, type RemovalRecord, type RepairProgress,
} from './messages.js'
import { LifecycleRegistry } from './registry.js'
import { RemovalRepairs, type StoredRepair } from './removal-repair.js'
import type { SyncRunner } from './sync-plan.js'

/**
 * Node lifecycle (issue 16): `hearsay members remove` and `hearsay decommission`, and the
 * cluster-wide records they leave. SWIM believes `left` only from the member itself, so removal
 * has a record of its own: written by the node an operator asked (an authenticated API call on a
 * member), persisted in every node's meta, spread by push on every change and push-pull every
 * gossip interval, and never undone. A removed id is out of placement on every node for good; a
 * removed process that comes back is told and stops. Leaving records make a decommissioning
 * node's successors pending replicas (lib/placement) while it streams its partitions to them.
 */

export interface LifecycleServiceOptions {
  readonly localId: NodeId
  readonly localName: string
  readonly clock: Clock
  readonly random: Random
  readonly log: Logger
  /** N (replication.factor): a decommission must leave at least N live members. */
  readonly replicationFactor: number
  /** Records persisted before this start (meta). */
  readonly initial: readonly LifecycleRecord[]
  /**
   * Stores the records durably (meta); resolves once flushed. `records` is read inside the
   * store's transaction, so overlapping calls cannot leave an older set on disk than a newer one.
   */
  readonly persist: (records: () => readonly LifecycleRecord[]) => Promise<void>
  /** Removal repairs persisted before this start (meta): partitions gained and still owed. */
  readonly initialRepairs: readonly StoredRepair[]
  /** Stores the removal repairs durably (meta); `repairs` is read inside the store's transaction, as `persist`'s records. */
  readonly persistRepairs: (repairs: () => readonly StoredRepair[]) => Promise<void>
  /** Remembers for good that this node was decommissioned (it will not start on this data dir again). */
  readonly persistDecommissioned: (atMs: number) => Promise<void>
  /** Every member in this node's SWIM table, itself included. */
  readonly members: () => readonly Member[]
  readonly send: (peer: PeerAddress, message: PeerMessage) => void
  readonly request: (peer: PeerAddress, message: PeerMessage, timeoutMs: number) => Promise<PeerMessage>
  readonly requestTimeoutMs: number
  /** Push-pull of the records with one random alive member, this often. */
  readonly gossipIntervalMs: number
  /** Wait before retrying sessions that made no progress. */
  readonly retryDelayMs: number
  /** Placement as it stands (after refreshPlacement). */
  readonly ownedPartitions: (id: NodeId) => readonly number[]
  readonly replicasOf: (partition: number) => readonly NodeId[]
  readonly pendingReplicas: (partition: number) => readonly NodeId[]
  readonly placementMembers: () => readonly NodeId[]
  /**
   * Recomputes placement from the members and these records (wiring); `rebalance` false skips
   * the anti-entropy round a placement change starts, when this service syncs what moved itself.
   */
  readonly refreshPlacement: (rebalance: boolean) => void
  readonly sync: SyncRunner
  /** Hints this node holds for alive members. */
  readonly hintsPending: () => number
  /** Deletes the hints this node holds for a removed member (they can never be delivered). */
  readonly dropHints: (owner: NodeId) => Promise<number>
  /** Announces `left` (SWIM) and resolves once it has spread (bounded). */
  readonly leave: () => Promise<void>
  /** This node learnt it was removed: it must stop serving (lib/node.ts stops the daemon). */
  readonly onRemovedSelf: (record: RemovalRecord) => void
}

/** A removed member as /status and /admin/lifecycle show it. */
export interface RemovalView extends Omit<RemovalRecord, 'kind'> {
  readonly repair: Omit<RepairProgress, 'id'>
}

export interface LifecycleStatus {
  readonly removed: readonly RemovalView[]
  readonly leaving: readonly Omit<LeavingRecord, 'kind' | 'active'>[]
  /** This node's own decommission, once started here. */
  readonly decommission: DecommissionProgress | null
}

/** The cluster's repair of one removed member, summed over the members that answered. */
export interface ClusterRemovalView extends Omit<RemovalRecord, 'kind'> {
  /** Gained partitions still to sync, over all members that answered. */
  readonly underReplicatedPartitions: number
  readonly gainedPartitions: number
  readonly keysMoved: number
  readonly bytesMoved: number
  /** Alive members that did not answer, and members that are down: their share is unknown. */
  readonly unanswered: readonly string[]
  /** True once every alive member answered and none has partitions left to sync. */
  readonly complete: boolean
}

export interface ClusterLifecycleView {
  readonly removed: readonly ClusterRemovalView[]
  readonly leaving: LifecycleStatus['leaving']
  readonly decommission: DecommissionProgress | null
}

/** The answer to a remove: the record, and whether it was there already. */
export interface RemoveOutcome {
  readonly removal: Omit<RemovalRecord, 'kind'>
  readonly alreadyRemoved: boolean
}

export class LifecycleService {
  readonly #options: LifecycleServiceOptions
  readonly #registry: LifecycleRegistry
  readonly #repairs: RemovalRepairs
  readonly #stopping = new AbortController()
  #gossip: Repeating | undefined
  #repairLoop: Promise<void> | undefined
  #decommission: Decommission | undefined
  #removedSelf: RemovalRecord | undefined

  constructor(options: LifecycleServiceOptions) {
    this.#options = options
    this.#registry = new LifecycleRegistry(options.initial)
    this.#repairs = new RemovalRepairs({ localId: options.localId, replicasOf: options.replicasOf })
    // Partitions gained before a restart: placement counts them as this node's own now, so only
    // the stored repair still says they are owed.
    this.#repairs.restore(options.initialRepairs)
    this.#removedSelf = this.#registry.removal(options.localId)
    // Known removals from before a restart: nothing gained this time, but the node answers for them.
    for (const removal of this.#registry.removals()) if (removal.id !== options.localId) this.#repairs.start(removal.id, [])
  }

  /** Set when this node was removed (known before start from its own records, or learnt since). */
  get removedSelf(): RemovalRecord | undefined {
    return this.#removedSelf
  }

  /** Members out of placement for good. */
  isRemoved(id: NodeId): boolean {
    return this.#registry.isRemoved(id)
  }

  /** Members streaming their partitions away (placement keeps them, with pending replicas). */
  leavingIds(): ReadonlySet<NodeId> {
    return this.#registry.activeLeaving()
  }

  /** The node's own decommission has finished: it is out of the cluster. */
  get decommissioned(): boolean {
    return this.#decommission?.phase === 'left'
  }

  get decommissionPhase(): DecommissionProgress['phase'] | undefined {
    return this.#decommission?.phase
  }

  start(): void {
    const own = this.#registry.leaving(this.#options.localId)
    if (own?.active === true) {
      // A restart interrupted a decommission: stop being a leaving member everywhere.
      this.#options.log.warn({ startedAtMs: own.startedAtMs }, 'a decommission of this node was interrupted by a restart and is cancelled; run hearsay decommission again to retire it')
      void this.#absorb([{ ...own, active: false }]).then(() => this.#broadcast())
    }
    this.#gossip = repeatEvery(this.#options.clock, this.#options.gossipIntervalMs, () => this.#pushPull())
    this.#kickRepairs()
  }

  async stop(): Promise<void> {
    this.#stopping.abort()
    this.#gossip?.stop()
    await this.#decommission?.stop()
    await this.#repairLoop
  }

  /** A lifecycleGossip frame from a peer. */
  receive(from: { readonly peer: PeerAddress }, body: LifecycleGossipBody): void {
    void this.#absorb(body.records)
    if (body.reply && this.#registry.knowsMoreThan(body.records)) this.#sendRecords(from.peer, false)
  }

  /** A member became alive or joined: it gets our records (a removed one learns it is), and owed sessions may run. */
  memberAlive(member: Member): void {
    if (member.id === this.#options.localId) return
    this.#sendRecords(member.peer, true)
    this.#kickRepairs()
  }

  /** Local repair progress per removed member (what a peer's lifecycleProgress asks). */
  repairProgress(): RepairProgress[] {
    return this.#repairs.progress()
  }

  status(): LifecycleStatus {
    const repairs = new Map(this.#repairs.progress().map((p) => [p.id, p]))
    return {
      removed: this.#registry.removals().map(({ kind: _kind, ...record }) => {
        const repair = repairs.get(record.id)
        return { ...record, repair: { gained: repair?.gained ?? 0, pending: repair?.pending ?? 0, keysMoved: repair?.keysMoved ?? 0, bytesMoved: repair?.bytesMoved ?? 0 } }
      }),
      // A member that has left (or was forgotten since) is leaving no more, whatever its last record said.
      leaving: [...this.#registry.activeLeaving()].filter((id) => this.#options.members().some((m) => m.id === id && m.state !== 'left')).map((id) => {
        const { kind: _kind, active: _active, ...record } = this.#registry.leaving(id) as LeavingRecord
        return record
      }),
      decommission: this.#decommission?.progress() ?? null,
    }
  }

  /** status() with each removal's repair summed over every alive member (asked over the peer links). */
  async clusterStatus(): Promise<ClusterLifecycleView> {
    const local = this.status()
    const { localId } = this.#options
    // Only a removal has shares on other members; without one nobody needs asking.
    const others = local.removed.length === 0 ? [] : this.#options.members().filter((m) => m.id !== localId && m.state !== 'left' && !this.#registry.isRemoved(m.id))
    const answers = await Promise.all(others.map(async (member): Promise<{ name: string; repairs?: readonly RepairProgress[] }> => {
      if (member.state !== 'alive') return { name: member.name }
      try {
        const reply = await this.#options.request(member.peer, { type: LIFECYCLE_PROGRESS, body: {} }, this.#options.requestTimeoutMs)
        return { name: member.name, repairs: validateLifecycleProgressReply(reply.body).repairs }
      } catch {
        return { name: member.name }
      }
    }))
    const all = [{ name: this.#options.localName, repairs: this.#repairs.progress() }, ...answers]
    return {
      removed: local.removed.map(({ repair: _repair, ...record }) => {
        let gained = 0
        let pending = 0
        let keysMoved = 0
        let bytesMoved = 0
        const unanswered: string[] = []
        for (const { name, repairs } of all) {
          // A member that has not heard of this removal yet has a share nobody knows.
          const repair = repairs?.find((r) => r.id === record.id)
          if (repair === undefined) {
            unanswered.push(repairs === undefined ? name : `${name} (has not heard of the removal yet)`)
            continue
          }
          gained += repair.gained
          pending += repair.pending
          keysMoved += repair.keysMoved
          bytesMoved += repair.bytesMoved
        }
        unanswered.sort()
        return { ...record, gainedPartitions: gained, underReplicatedPartitions: pending, keysMoved, bytesMoved, unanswered, complete: pending === 0 && unanswered.length === 0 }
      }),
      leaving: local.leaving,
      decommission: local.decommission,
    }
  }

  /**
   * `hearsay members remove NODE`: `target` is a member id or name in this node's table. Refused
   * (409) for a member that is alive or suspect (decommission it instead) and for this node
   * itself; 404 for a name or id this node does not know. Removing a removed member again
   * answers the record it has.
   */
  async remove(target: string): Promise<RemoveOutcome> {
    const { localId } = this.#options
    const members = this.#options.members()
    const byId = members.filter((m) => m.id === target)
    const matches = byId.length > 0 ? byId : members.filter((m) => m.name === target && !this.#registry.isRemoved(m.id))
    if (matches.length === 0) {
      const removed = this.#registry.removals().find((r) => r.id === target || r.name === target)
      if (removed !== undefined) return { removal: withoutKind(removed), alreadyRemoved: true }
      throw new NotFoundError(`no member ${JSON.stringify(target)} in this node's member table: give a member id or name as hearsay members lists them`, { node: target })
    }
    if (matches.length > 1) {
      const ids = matches.map((m) => m.id).sort()
      throw new ConflictError(`${matches.length} members are called ${JSON.stringify(target)}: give the id of the one to remove (${ids.join(', ')})`, { ids })
    }
    const member = matches[0] as Member
    const held = this.#registry.removal(member.id)
    if (held !== undefined) return { removal: withoutKind(held), alreadyRemoved: true }
    if (member.id === localId) {
      throw new ConflictError('a node cannot remove itself: ask another member to remove it, or retire this live node with hearsay decommission', { state: member.state })
    }
    if (member.state === 'alive' || member.state === 'suspect') {
      throw new ConflictError(`member ${member.name} (${member.id}) is ${member.state}: hearsay members remove is for dead members; retire a live one with hearsay decommission --node <its API URL>`, { state: member.state })
    }
    if (this.#registry.full) {
      throw new ConflictError(`the cluster already keeps ${MAX_LIFECYCLE_RECORDS} lifecycle records, its limit: no more members can be removed`, { limit: MAX_LIFECYCLE_RECORDS })
    }
    const local = members.find((m) => m.id === localId)
    const record: RemovalRecord = { kind: 'removed', id: member.id, name: member.name, by: localId, byName: local?.name ?? this.#options.localName, atMs: this.#options.clock.nowMs() }
    await this.#absorb([record])
    this.#broadcast()
    this.#options.log.warn({ member: member.id, memberName: member.name, state: member.state }, `removed member ${member.name} for good at an operator's request: its partitions are re-replicated from the live replicas`)
    return { removal: withoutKind(this.#registry.removal(member.id) ?? record), alreadyRemoved: false }
  }

  /**
   * `hearsay decommission` against this node: refused (409) when the live members other than
   * this one would be fewer than N; otherwise starts streaming (a second call answers progress).
   */
  async decommission(): Promise<DecommissionProgress> {
    const { localId, replicationFactor } = this.#options
    const running = this.#decommission
    if (running !== undefined && running.phase !== 'stopped') return running.progress()
    if (this.#removedSelf !== undefined) throw new ConflictError('this node was removed from the cluster; there is nothing to decommission')
    const leaving = this.#registry.activeLeaving()
    const inPlacement = new Set(this.#options.placementMembers())
    const live = this.#options.members().filter((m) => m.state === 'alive' && inPlacement.has(m.id) && (m.id === localId || !leaving.has(m.id)))
    if (live.length - 1 < replicationFactor) {
      throw new ConflictError(`decommissioning this node would leave ${live.length - 1} live members, fewer than replication.factor ${replicationFactor}: start a replacement member first, then decommission this one`,
        { liveMembers: live.length, replicationFactor })
    }
    const record: LeavingRecord = { kind: 'leaving', id: localId, name: this.#options.localName, startedAtMs: this.#options.clock.nowMs(), active: true }
    await this.#absorb([record])
    this.#broadcast()
    const decommission = new Decommission({
      clock: this.#options.clock,
      ownedPartitions: () => this.#options.ownedPartitions(localId),
      pendingReplicas: (partition) => this.#options.pendingReplicas(partition),
      isAlive: (id) => this.#isAlive(id),
      sync: this.#options.sync,
      hintsPending: this.#options.hintsPending,
      leave: async () => {
        await this.#options.persistDecommissioned(this.#options.clock.nowMs())
        await this.#options.leave()
      },
      retryDelayMs: this.#options.retryDelayMs,
      log: this.#options.log,
    })
    this.#decommission = decommission
    void decommission.run()
    return decommission.progress()
  }

  /** Merges records; on news: persist, placement, repairs, hints, and the removed-self check. */
  async #absorb(records: readonly LifecycleRecord[]): Promise<void> {
    const { localId, log } = this.#options
    const ownedBefore = new Set(this.#options.ownedPartitions(localId))
    const changed = this.#registry.merge(records)
    if (changed.length === 0) return
    const persisted = this.#options.persist(() => this.#registry.records())
    // A removal only adds partitions to nodes (the repair below syncs them) and a new leave only
    // adds pending ones (the decommission streams them): their own sessions do the work and count
    // it. A cancelled leave takes pending partitions away, which a rebalance round hands back.
    this.#options.refreshPlacement(changed.some((r) => r.kind === 'leaving' && !r.active))
    const gained = this.#options.ownedPartitions(localId).filter((p) => !ownedBefore.has(p))
    let first = true
    for (const record of changed) {
      if (record.kind !== 'removed') continue
      if (record.id === localId) {
        this.#removedSelf ??= record
        log.error({ removedBy: record.by, removedByName: record.byName, removedAtMs: record.atMs },
          `this node was removed from the cluster by ${record.byName} at ${new Date(record.atMs).toISOString()} (hearsay members remove) and will not rejoin: start the machine with an empty node.dataDir to add it as a new member`)
        this.#options.onRemovedSelf(record)
        continue
      }
      this.#repairs.start(record.id, first ? gained : [])
      first = false
      void this.#options.dropHints(record.id).catch((error: unknown) => log.warn({ err: error, member: record.id }, 'could not drop the hints kept for a removed member'))
    }
    if (gained.length > 0) this.#persistRepairs()
    this.#kickRepairs()
    try {
      await persisted
    } catch (error) {
      log.error({ err: error }, 'could not store the lifecycle records; they are gossiped again and stored with the next change')
    }
  }

  /** Not awaited: a repair whose progress was not stored is redone after a restart, which is safe. */
  #persistRepairs(): void {
    this.#options.persistRepairs(() => this.#repairs.snapshot())
      .catch((error: unknown) => this.#options.log.error({ err: error }, 'could not store the removal repairs\' progress; after a restart this node may not know which partitions it still owes'))
  }

  #kickRepairs(): void {
    if (this.#repairLoop !== undefined || this.#stopping.signal.aborted || this.#removedSelf !== undefined) return
    this.#repairLoop = this.#runRepairs().finally(() => { this.#repairLoop = undefined })
  }

  async #runRepairs(): Promise<void> {
    try {
      for (;;) {
        const plan = this.#repairs.plan((id) => this.#isAlive(id))
        if (plan.length === 0) return
        const outcomes = await this.#options.sync(plan)
        if (this.#stopping.signal.aborted) return
        this.#repairs.record(plan, outcomes)
        this.#persistRepairs()
        if (!outcomes.some((o) => o.ok)) await sleep(this.#options.clock, this.#options.retryDelayMs, this.#stopping.signal)
      }
    } catch (error) {
      if (!this.#stopping.signal.aborted) this.#options.log.error({ err: error }, 're-replication after a removal stopped by an unexpected error; it resumes when a member comes back')
    }
  }

  #isAlive(id: NodeId): boolean {
    return this.#options.members().some((m) => m.id === id && m.state === 'alive') && !this.#registry.isRemoved(id)
  }

  #pushPull(): void {
    const { localId, random } = this.#options
    const alive = this.#options.members().filter((m) => m.id !== localId && m.state === 'alive')
    const partner = alive.length === 0 ? undefined : alive[random.int(alive.length)]
    if (partner !== undefined) this.#sendRecords(partner.peer, true)
  }

  #broadcast(): void {
    for (const member of this.#options.members()) {
      if (member.id !== this.#options.localId && (member.state === 'alive' || member.state === 'suspect')) this.#sendRecords(member.peer, false)
    }
  }

  #sendRecords(peer: PeerAddress, reply: boolean): void {
    this.#options.send(peer, { type: LIFECYCLE_GOSSIP, body: { records: this.#registry.records(), reply } satisfies LifecycleGossipBody })
  }
}

/** Answers peers' lifecycle frames. */
export function registerLifecycleHandlers(transport: Pick<Transport, 'handle'>, service: LifecycleService): void {
  transport.handle(LIFECYCLE_GOSSIP, (from, message) => {
    service.receive(from, message.body as LifecycleGossipBody)
    return undefined
  })
  transport.handle(LIFECYCLE_PROGRESS, () => ({ type: LIFECYCLE_PROGRESS_REPLY, body: { repairs: service.repairProgress() } }))
}

function withoutKind({ kind: _kind, ...record }: RemovalRecord): Omit<RemovalRecord, 'kind'> {
  return record
}
