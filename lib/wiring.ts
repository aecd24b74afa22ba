import { HybridLogicalClock } from './clock/hlc.js'
import { ClockSkewedError } from './clock/errors.js'
import { ClockOffsetMonitor, type ClockVerdict, type MonitoredPeer } from './clock/offset-monitor.js'
import { compareVersions, type NodeId } from './clock/version.js'
import type { HearsayConfig } from './config/types.js'
import type { Logger } from './log/logger.js'
import type { Metrics } from './metrics/metrics.js'
import { AbsenceTracker } from './antientropy/absence.js'
import { partitionOfSegment } from './merkle/segment.js'
import { heldByEveryReplica, SyncCertificates } from './antientropy/certificates.js'
import { AntiEntropy, roundTotals, type RoundSummary } from './antientropy/anti-entropy.js'
import { LocalReplica } from './antientropy/local-replica.js'
import { registerSyncHandlers } from './antientropy/responder.js'
import { segmentIndexOptions } from './antientropy/segments.js'
import { MembershipDriver } from './membership/driver.js'
import type { Member } from './membership/member-table.js'
import { Swim } from './membership/swim.js'
import type { RecordDigester } from './merkle/digest.js'
import { MerkleForest } from './merkle/forest.js'
import { MerkleTree } from './merkle/tree.js'
import type { Hasher } from './placement/hash.js'
import { PlacementTable } from './placement/table.js'
import { Coordinator } from './replication/coordinator.js'
import { guardKvService } from './replication/guard.js'
import { HintedHandoff } from './replication/handoff.js'
import { HintStore } from './replication/hints.js'
import { MAX_RECORDS_PER_WRITE, type ReplicaWriteBody } from './replication/messages.js'
import { registerReplicaHandlers } from './replication/replica.js'
import type { KvService } from './replication/service.js'
import { ReplicaWriteBatcher } from './replication/write-batcher.js'
import type { Clock } from './runtime/clock.js'
import { createRandom, type Random } from './runtime/random.js'
import type { Scheduler } from './runtime/scheduler.js'
import { TombstoneCollector } from './store/gc.js'
import { StoreHighWaterMark } from './store/high-water.js'
import type { Store } from './store/store.js'
import { TransportError, type PeerAddress, type PeerIdentity, type PeerMessage, type Transport } from './transport/transport.js'
import { Acceptor, registerAcceptorHandlers } from './paxos/acceptor.js'
import { AcceptorStore } from './paxos/acceptor-store.js'
import { LearnBuffer } from './paxos/learn-buffer.js'
import { AcceptorSetGate } from './paxos/acceptor-sets.js'
import { CatchUp, registerCatchUpResponder } from './paxos/catch-up.js'
import { PAXOS_ACCEPT_MANY, PAXOS_CATCH_UP, PAXOS_PREPARE, promiseFromWire, type AcceptManyReplyBody, type CatchUpReplyBody, type PromiseBody } from './paxos/messages.js'
import { AcceptBatcher } from './paxos/accept-batcher.js'
import { rankIds } from './placement/rendezvous.js'
import { Proposer } from './paxos/proposer.js'
import { guardLinearizable, proposerService, type LinearizableService } from './paxos/service.js'
import { RemoteWatchFeeds } from './watch/remote.js'
import { registerWatchResponder } from './watch/responder.js'
import { WatchService } from './watch/service.js'
import { ChangeLogTrimmer } from './watch/trimmer.js'
import { validateLifecycleGossip, type LifecycleRecord, type RemovalRecord } from './lifecycle/messages.js'
import { LifecycleService, registerLifecycleHandlers } from './lifecycle/service.js'
import type { SyncRunner } from './lifecycle/sync-plan.js'
import { validateStoredRepairs, type StoredRepair } from './lifecycle/removal-repair.js'

/**
 * The node's wiring: every protocol module built and connected, from a world handed in from
 * outside. It knows nothing of WebSockets, LMDB, node-cron or the system clock: the daemon
 * (lib/node.ts) passes those, the simulator (lib/sim/) passes the in-memory network, a fake clock
 * with the node's skew, seeded randomness, a clock-driven scheduler and the memory store, so the
 * same assembly runs in both.
 */

/** Change log entries removed per transaction when trimming to watch.retention. */
const CHANGE_LOG_TRIM_BATCH = 10_000

/** How long a watch feed's poll waits at a replica for a change. */
const WATCH_POLL_WAIT_MS = 5000
/** Watch feed polls a node holds waiting at once (one per peer and watcher group in practice). */
const MAX_WAITING_WATCH_POLLS = 4096

/** Hinted handoff: how often hints for live owners are retried, and records per delivery. */
const HANDOFF_INTERVAL_MS = 1000
const HANDOFF_BATCH_SIZE = 256
/** A batch of replica writes to one peer is sent once it holds about this much (frames are limited to 4 MiB). */
const REPLICA_BATCH_MAX_BYTES = 1024 * 1024
/**
 * Replica write batches to one peer awaiting their answer at once; later writes gather into the
 * next batch meanwhile (lib/replication/write-batcher.ts). Two keep the link busy while one answer
 * is on its way back.
 */
const REPLICA_BATCHES_IN_FLIGHT = 2
/**
 * CASPaxos proposer bounds: rounds per operation before it gives up (503), the backoff between
 * them (full jitter below min(max, base × 2^attempt)), keys whose last ballot is remembered for
 * the one-round-trip path (~100 bytes each), and operations one key may have waiting per node.
 */
const PAXOS_MAX_ATTEMPTS = 10
const PAXOS_BACKOFF_BASE_MS = 4
const PAXOS_BACKOFF_MAX_MS = 250
const PAXOS_MAX_CACHED_KEYS = 65_536
const PAXOS_MAX_QUEUED_PER_KEY = 1024
/**
 * How long a commit notice waits for an accept to the same acceptor to ride along with
 * (lib/paxos/accept-batcher.ts): the most a committed value reaches the other replicas' stores
 * later than it would on its own, for a key nobody changes again at once.
 */
const PAXOS_COMMIT_LINGER_MS = 20
/**
 * How long a committed value an acceptor learned waits for others to share its store write, and
 * how many go in one (lib/paxos/learn-buffer.ts); within the commit notices' own linger.
 */
const PAXOS_LEARN_LINGER_MS = 10
const PAXOS_LEARN_MAX_RECORDS = 1024
/**
 * Node lifecycle: push-pull of the removal and leaving records with one random member this often
 * (every change is pushed to every member at once; this heals what a push missed), the wait
 * before retrying sessions that made no progress, how long `left` may take to spread at the end
 * of a decommission, and the hints dropped per transaction for a removed member.
 */
const LIFECYCLE_PUSH_PULL_MS = 5000
const LIFECYCLE_RETRY_MS = 1000
const DECOMMISSION_LEAVE_TIMEOUT_MS = 3000
const REMOVED_HINTS_BATCH = 1024
/** How often a partition still catching up its acceptor state after a set change tries again. */
const PAXOS_CATCH_UP_RETRY_MS = 250

export interface NodeWorld {
  readonly config: HearsayConfig
  readonly log: Logger
  readonly metrics: Metrics
  /** The node's store, opened with segmentIndexOptions(digester, config.partitions). */
  readonly store: Store
  readonly digester: RecordDigester
  readonly hasher: Hasher
  /** Builds the node's transport once its identity is known; handlers are registered before it is used. */
  readonly transport: (local: PeerIdentity) => Transport
  /** The node's wall clock (its skew included) and its timers. */
  readonly clock: Clock
  /** Seeds every random choice of the node's modules. */
  readonly random: Random
  readonly scheduler: Scheduler
  /**
   * Runs a task soon, after the current turn (watch delivery, peer batch flushes). Default setImmediate; the simulator
   * passes its node clock's zero-delay timer, so a crashed node's watchers stop with it.
   */
  readonly defer?: (task: () => void) => void
  /** Advertised `host:port` of the client API and the peer port. */
  readonly advertised: { readonly api: string; readonly peer: string }
  /** Anti-entropy rounds beginning and ending, for the dashboard's round log (lib/dashboard). */
  readonly antiEntropyHooks?: { roundStarted(): void; roundFinished(summary: RoundSummary): void }
  /** This node learnt that it was removed from the cluster (hearsay members remove): it must stop. */
  readonly onRemovedSelf?: (record: RemovalRecord) => void
}

/** The wired node: its parts, for the composition root (API, status, stop) and the simulator. */
export interface WiredNode {
  readonly id: NodeId
  readonly local: PeerIdentity
  readonly transport: Transport
  readonly hlc: HybridLogicalClock
  readonly swim: Swim
  readonly membership: MembershipDriver
  readonly placement: PlacementTable
  readonly forest: MerkleForest
  readonly hints: HintStore
  readonly handoff: HintedHandoff
  readonly absence: AbsenceTracker
  readonly antiEntropy: AntiEntropy
  readonly collector: TombstoneCollector
  readonly coordinator: Coordinator
  readonly offsetMonitor: ClockOffsetMonitor
  /** What clients talk to: the coordinator behind the repair and clock-skew refusals. */
  readonly kv: KvService
  /** Watches served by this node (lib/watch). */
  readonly watches: WatchService
  /** Keeps the change log to watch.retention. */
  readonly changeLogTrimmer: ChangeLogTrimmer
  readonly proposer: Proposer
  /** The acceptor's durable state (its journal checkpointed into the store): close before the store. */
  readonly acceptorStore: AcceptorStore
  /** Committed values learned, on their way to the store: flush before the store closes. */
  readonly learnBuffer: LearnBuffer
  /** Which partitions this node answers paxos requests for after acceptor-set changes, and their catch-up. */
  readonly acceptorSets: AcceptorSetGate
  readonly catchUp: CatchUp
  /** Linearizable operations (CASPaxos) behind the same refusals. */
  readonly linearizable: LinearizableService
  /** Removal and decommission (lib/lifecycle). */
  readonly lifecycle: LifecycleService
  /** Starts the background work: joins through `seeds`, GC, handoff, anti-entropy, clock probes. */
  start(seeds: readonly string[]): void
}

/** Builds and connects every module; starts the HLC (a durable reservation), nothing else. */
export async function wireNode(world: NodeWorld): Promise<WiredNode> {
  const { config, store, metrics, clock, digester } = world
  const nowMs = (): number => clock.nowMs()
  // One stream per module, so a module drawing more often does not shift another's choices.
  const randomFor = (): Random => createRandom(world.random.int(2 ** 32))
  const { id, incarnation } = await store.identity.load()
  const nodeLog = world.log.child({ node: id })
  const hlc = new HybridLogicalClock({
    nowMs,
    maxSkewMs: config.clock.maxSkewMs,
    highWater: new StoreHighWaterMark(store),
    onSaveError: (error) => nodeLog.error({ err: error }, 'could not persist the clock high-water mark; retrying'),
    clock,
  })
  await hlc.start()
  const segments = store.segments
  if (segments === undefined) throw new Error('the node needs a store that keeps the segment index')
  const certificates = new SyncCertificates()
  const collector = new TombstoneCollector(store, {
    tombstoneGraceMs: config.store.tombstoneGraceMs,
    intervalMs: config.store.gcIntervalMs,
    batchSize: config.store.gcBatchSize,
    nowMs,
    clock,
    // Only what every other replica is known to hold: see lib/antientropy/certificates.ts.
    heldByEveryReplica: heldByEveryReplica({
      certificates, localId: id, replicasOf: (partition) => placement.replicas(partition),
      partitionOf: (key) => partitionOfSegment(segments.segmentOf(key)), arrivalMs: (key) => store.arrivalMs(key),
    }),
    onCollected: (kind, count) => metrics.storeGcCollected.inc({ kind }, count),
    onSwept: (waiting) => metrics.storeGcWaiting.set(waiting),
    recordHash: (key, version) => digester.recordHash(key, version),
    onError: (error) => nodeLog.error({ err: error }, 'garbage collection step failed; will retry'),
  })
  const local: PeerIdentity = { id, name: config.node.name, peer: world.advertised.peer, api: world.advertised.api }
  const transport = world.transport(local)
  const swim = new Swim({ local, storedIncarnation: incarnation, config: config.membership, random: randomFor() })
  const membership = new MembershipDriver({
    transport,
    swim,
    clock,
    // Async but prompt: a crash before it lands costs nothing, because every start bumps the
    // stored incarnation and SWIM starts one above it (see NodeIdentity.load).
    persistIncarnation: (value) => {
      store.meta.update('incarnation', (current) => Math.max(typeof current === 'number' ? current : 0, value))
        .catch((error: unknown) => nodeLog.error({ err: error }, 'could not store the incarnation'))
    },
  })
  watchMembership(membership, metrics, clock, nodeLog.child({ component: 'membership' }))

  const placement = new PlacementTable(world.hasher, { partitionCount: config.partitions, replicationFactor: config.replication.factor }, swim.members())
  // Removed members are out of placement for good, whatever SWIM says of them; leaving ones keep
  // their place with pending replicas beside them (lib/lifecycle). Set once lifecycle is built.
  let lifecycleRef: LifecycleService | undefined
  const isRemoved = (member: NodeId): boolean => lifecycleRef?.isRemoved(member) === true
  const placementMembers = (): Member[] => swim.members().filter((m) => !isRemoved(m.id))
  const aliveIds = (): NodeId[] => swim.members().filter((m) => m.state === 'alive' && !isRemoved(m.id)).map((m) => m.id)
  // One Merkle tree per partition, rebuilt from the stored records at start and kept current
  // by the store's change hook (writes, replica applies, sync, GC).
  const forest = new MerkleForest(digester)
  const rebuildStartedMs = nowMs()
  let records = 0
  for (const { segment, keyBytes, versionBytes } of segments.raw()) {
    forest.addRaw(segment, keyBytes, versionBytes)
    records++
  }
  nodeLog.info({ records, ms: nowMs() - rebuildStartedMs }, 'rebuilt the Merkle trees from the store')
  // The store hashed each changed key for its segment index already; the trees reuse that.
  const segmentOf = segmentIndexOptions(digester, config.partitions).segmentOf
  store.onChange(({ key, previous, current, segment }) => {
    forest.applyInSegment(segment ?? segmentOf(key), key, previous?.version, current?.version)
  })
  const hints = new HintStore(store.hints, { maxBytes: config.replication.maxHintBytes, windowMs: config.replication.hintWindowMs, nowMs })
  const refreshHintsGauge = (): void => { metrics.hintsPending.set(hints.pending().count) }
  const handoff = new HintedHandoff({
    hints,
    deliver: async (owner, entries) => {
      const member = swim.member(owner)
      if (member === undefined) throw new Error(`member ${owner} is unknown`)
      await transport.request(member.peer, { type: 'replicaWrite', body: { entries } }, config.replication.timeoutMs)
    },
    isAlive: (owner) => swim.member(owner)?.state === 'alive',
    intervalMs: HANDOFF_INTERVAL_MS,
    batchSize: HANDOFF_BATCH_SIZE,
    clock,
    random: randomFor(),
    log: nodeLog.child({ component: 'handoff' }),
    onDelivered: (count) => { metrics.hintsHandedOff.inc({ result: 'delivered' }, count); refreshHintsGauge() },
    onDropped: (count) => { metrics.hintsHandedOff.inc({ result: 'dropped' }, count); refreshHintsGauge() },
  })
  let lastPeerContactMs: number | undefined
  membership.on('heard', () => { lastPeerContactMs = nowMs() })
  const absence = new AbsenceTracker({
    meta: store.meta,
    tombstoneGraceMs: config.store.tombstoneGraceMs,
    nowMs,
    clock,
    lastPeerContactMs: () => lastPeerContactMs,
    onError: (error) => nodeLog.error({ err: error }, 'could not record the last peer contact'),
  })
  if (absence.repairRequired) {
    nodeLog.warn({ lastPeerContactMs: absence.lastContactMs, tombstoneGraceMs: config.store.tombstoneGraceMs },
      'away from the cluster longer than store.tombstoneGrace: repairing from the other replicas before serving')
  }
  const repairRefusal = (): string | undefined => absence.repairRequired
    ? 'this node is repairing after an absence longer than store.tombstoneGrace; ask another node'
    : undefined
  const replica = new LocalReplica({
    store, forest, partitionCount: config.partitions, tombstoneGraceMs: config.store.tombstoneGraceMs, nowMs,
    observeHlc: (tick) => { hlc.update(tick) },
  }, new MerkleTree(digester))
  const antiEntropyLog = nodeLog.child({ component: 'antientropy' })
  const antiEntropy = new AntiEntropy({
    localId: id,
    schedule: config.antiEntropy.schedule,
    scheduler: world.scheduler,
    clock,
    random: randomFor(),
    automatic: config.antiEntropy.enabled,
    replica,
    absence,
    certificates,
    // A pending replica (taking a leaving member's place) syncs and keeps its partitions like its own.
    ownedPartitions: (member) => withPending(placement.ownedPartitions(member), placement.pendingPartitions(member)),
    replicasOf: (partition) => placement.replicas(partition),
    inPlacement: () => placement.members.includes(id),
    heldPartitions: () => forest.partitions(),
    handOffCutoffMs: () => nowMs() - config.store.tombstoneGraceMs + config.clock.maxSkewMs,
    alivePeer: (member) => {
      const found = swim.member(member)
      return found?.state === 'alive' && !isRemoved(member) ? found.peer : undefined
    },
    aliveMembers: aliveIds,
    request: (peer, message, timeoutMs) => transport.request(peer, message, timeoutMs),
    requestTimeoutMs: config.antiEntropy.requestTimeoutMs,
    maxBytesPerSecond: config.antiEntropy.maxBytesPerSecond,
    batchBytes: config.antiEntropy.batchBytes,
    partitionConcurrency: config.antiEntropy.partitionConcurrency,
    log: antiEntropyLog,
    onRound: (summary) => {
      recordRound(summary, metrics, antiEntropyLog)
      world.antiEntropyHooks?.roundFinished(summary)
    },
    ...(world.antiEntropyHooks !== undefined ? { onRoundStart: world.antiEntropyHooks.roundStarted } : {}),
  })
  // Measures this node's clock against its peers'; beyond clock.maxSkewMs it takes no writes.
  const offsetMonitor = new ClockOffsetMonitor({
    transport, clock, wallMs: nowMs, maxSkewMs: config.clock.maxSkewMs,
    alivePeers: () => swim.members().filter((m) => m.state === 'alive' && m.id !== id),
    ...clockOffsetEvents(metrics, nodeLog.child({ component: 'clock' })),
  })
  const refreshPlacement = (rebalance = true): void => {
    if (placement.update(placementMembers(), lifecycleRef?.leavingIds()) && rebalance) antiEntropy.placementChanged()
  }
  membership.on('change', (member, previous) => {
    if (member.state === 'alive' && previous?.state !== 'alive' && member.id !== id) offsetMonitor.probe(member)
    refreshPlacement()
    if (member.state === 'alive' && previous?.state !== 'alive') {
      handoff.ownerAlive(member.id)
      antiEntropy.memberAlive(member.id)
      lifecycleRef?.memberAlive(member)
    }
  })
  membership.on('reaped', (member) => {
    certificates.forget(member.id)
    refreshPlacement()
  })
  // Remote versions move our clock forward; one beyond clock.maxSkewMs is refused (throws).
  const observeHlc = (tick: number): void => { hlc.update(tick) }
  const [delayMinMs, delayMaxMs] = [config.replication.testDelayMinMs, config.replication.testDelayMaxMs]
  const delayRandom = randomFor()
  // End-of-turn work (batch flushes, watch delivery) through the world, so the simulator drives it.
  const defer = world.defer ?? ((task: () => void) => { setImmediate(task) })
  const writeBatcher = new ReplicaWriteBatcher({
    send: (to, message, timeoutMs) => transport.request(to, message, timeoutMs),
    maxEntries: MAX_RECORDS_PER_WRITE,
    maxBytes: REPLICA_BATCH_MAX_BYTES,
    maxInFlight: REPLICA_BATCHES_IN_FLIGHT,
    nowMs,
    defer,
  })
  const coordinator = new Coordinator({
    localId: id,
    local: store,
    nextHlc: () => hlc.next(),
    nowMs,
    clock,
    observeHlc,
    replicasFor: (key) => placement.replicasFor(key).replicas,
    member: (memberId) => swim.member(memberId),
    aliveMembers: () => aliveIds().filter((m) => m !== id),
    pendingFor: (key) => placement.pendingFor(key),
    holdsEverything: () => placement.members.length <= config.replication.factor,
    // Replica writes to one peer within a turn travel as one batch; everything else directly.
    request: (to, message, timeoutMs) => message.type === 'replicaWrite'
      ? writeBatcher.write(to, (message.body as ReplicaWriteBody).entries, timeoutMs)
      : transport.request(to, message, timeoutMs),
    hint: config.replication.hints
      ? async (owner, entry) => {
        const outcome = await hints.add(owner, entry)
        if (outcome === 'dropped') metrics.hintsHandedOff.inc({ result: 'dropped' })
        else metrics.hintsStored.inc()
        refreshHintsGauge()
      }
      : undefined,
    replicationFactor: config.replication.factor,
    timeoutMs: config.replication.timeoutMs,
    waitForReplicasMs: config.replication.waitForReplicasMs,
    defaultWrite: config.replication.writeQuorum,
    defaultRead: config.replication.readQuorum,
    maxScanLimit: config.api.maxScanLimit,
    maxScanPageBytes: config.api.maxScanPageBytes,
    injectedDelayMs: delayMaxMs === 0 ? () => 0 : () => delayMinMs + delayRandom.next() * (delayMaxMs - delayMinMs),
    onReadRepair: (count) => metrics.readRepairs.inc(count),
    onQuorumFailure: (kind) => metrics.quorumFailures.inc({ kind }),
    onBackgroundError: (error, what) => nodeLog.warn({ err: error }, `${what} failed`),
  })
  registerReplicaHandlers(transport, {
    store,
    observeHlc,
    readRefusal: repairRefusal,
    log: nodeLog.child({ component: 'replica' }),
  })
  registerSyncHandlers(transport, {
    replica,
    refusal: repairRefusal,
    repairCutoffMs: () => absence.lastContactMs,
    onReceived: (count) => metrics.antiEntropyRecords.inc({ direction: 'received' }, count),
  })
  // Bumped on every member change, so watch feeds re-match their replicas only when something moved.
  let membershipEpoch = 0
  membership.on('change', () => { membershipEpoch++ })
  membership.on('reaped', () => { membershipEpoch++ })
  const watchBounds = { resumeMarginMs: config.watch.resumeMarginMs, maxSkewMs: config.clock.maxSkewMs }
  registerWatchResponder(transport, { store, partitionOf: (key) => placement.partitionOf(key), clock, maxWaitingPolls: MAX_WAITING_WATCH_POLLS })
  const remoteFeeds = new RemoteWatchFeeds({
    localId: id,
    partitionCount: config.partitions,
    replicas: (partition) => placement.replicas(partition),
    holdsEverything: () => placement.members.length <= config.replication.factor,
    membershipEpoch: () => membershipEpoch,
    alivePeer: (member) => {
      const found = swim.member(member)
      return found?.state === 'alive' ? found.peer : undefined
    },
    request: (peer, message, timeoutMs) => transport.request(peer, message, timeoutMs),
    clock,
    bounds: watchBounds,
    pollWaitMs: WATCH_POLL_WAIT_MS,
    requestTimeoutMs: config.replication.timeoutMs,
    log: nodeLog.child({ component: 'watch' }),
  })
  const watches = new WatchService({
    store,
    remote: remoteFeeds,
    limits: {
      maxWatchers: config.watch.maxWatchers,
      maxBufferedBytes: config.watch.maxBufferedBytes,
      ...watchBounds,
    },
    nowMs,
    defer,
    onWatchers: (count) => metrics.watchers.set(count),
    onCut: (reason) => metrics.watchCuts.inc({ reason }),
    onDelivered: (count) => metrics.watchEvents.inc(count),
  })
  metrics.watchLogEntries.set(store.changeLog.stats().entries)
  const changeLogTrimmer = new ChangeLogTrimmer({
    log: store.changeLog,
    retentionMs: config.watch.retentionMs,
    clock,
    batchSize: CHANGE_LOG_TRIM_BATCH,
    onTrimmed: (removed, entries) => {
      metrics.watchLogTrimmed.inc(removed)
      metrics.watchLogEntries.set(entries)
    },
    onError: (error) => nodeLog.error({ err: error }, 'trimming the change log failed; will retry'),
  })
  // CASPaxos: every replica of a key is one of its acceptors; any node proposes. The acceptor set
  // of a partition follows placement, with the rules of lib/paxos/acceptor-sets.ts on a change.
  const quorum = Math.floor(config.replication.factor / 2) + 1
  const paxosLog = nodeLog.child({ component: 'paxos' })
  const acceptorStore = await AcceptorStore.open({
    db: store.paxos,
    journal: store.paxosJournal,
    defer,
    onCheckpointError: (error) => paxosLog.error({ err: error }, 'could not checkpoint the acceptor journal into the store; the journal keeps the states, trying again later'),
    onTornSegment: (segment, validBytes, totalBytes) => paxosLog.warn({ segment, validBytes, totalBytes }, 'the acceptor journal ended in a torn record (a crash during a sync nobody was answered for); dropped it'),
  })
  const acceptorSets = new AcceptorSetGate({
    localId: id,
    quorum,
    partitionCount: config.partitions,
    persisted: store.meta.read('paxosAcceptorSets'),
    persist: async (state) => {
      await store.meta.update('paxosAcceptorSets', () => state).catch((error: unknown) => paxosLog.error({ err: error }, 'could not store the acceptor-set state'))
    },
    setWithoutSelf: (partition, without) => rankIds(world.hasher, partition, placement.members.filter((member) => member !== id && !without.has(member))).slice(0, config.replication.factor),
  })
  const catchUp = new CatchUp({
    localId: id,
    gate: acceptorSets,
    store: acceptorStore,
    quorum,
    request: async (member, body) => {
      const found = swim.member(member)
      if (found === undefined || (found.state !== 'alive' && found.state !== 'suspect')) throw new TransportError(`member ${member} is ${found?.state ?? 'unknown'}`, 'unreachable')
      return (await transport.request(found.peer as PeerAddress, { type: PAXOS_CATCH_UP, body }, config.replication.timeoutMs)).body as CatchUpReplyBody
    },
    clock,
    retryMs: PAXOS_CATCH_UP_RETRY_MS,
    log: paxosLog,
    onCaughtUp: (partitions) => {
      metrics.paxosCatchUps.inc(partitions)
      metrics.paxosPartitionsCatchingUp.set(acceptorSets.pending().length)
    },
  })
  const followPlacement = (): void => {
    acceptorSets.update((partition) => placement.replicas(partition))
    const pending = acceptorSets.pending().length
    metrics.paxosPartitionsCatchingUp.set(pending)
    if (pending > 0) catchUp.kick()
  }
  followPlacement()
  placement.onChange(followPlacement)
  registerCatchUpResponder(transport, { gate: acceptorSets, store: acceptorStore, partitionOf: (key) => placement.partitionOf(key) })
  const learnBuffer = new LearnBuffer({ write: (records) => store.applyMany(records), lingerMs: PAXOS_LEARN_LINGER_MS, maxRecords: PAXOS_LEARN_MAX_RECORDS, clock })
  const acceptor = new Acceptor({
    store: acceptorStore,
    stored: (key) => store.get(key),
    refusal: (key, set) => repairRefusal() ?? (set === undefined
      ? 'the proposer runs an older hearsay that does not send its acceptor set; upgrade every node'
      : acceptorSets.refusal(placement.partitionOf(key), set)),
    observeTick: (tick) => { hlc.update(tick) },
    learn: (records) => learnBuffer.add(records),
    onLearnError: (error) => paxosLog.warn({ err: error }, 'writing committed linearizable values learned from commit notices to the store failed; anti-entropy brings them from the other replicas'),
  })
  registerAcceptorHandlers(transport, acceptor)
  const paxosRequest = (to: NodeId, message: PeerMessage, timeoutMs = config.replication.timeoutMs): Promise<PeerMessage> => {
    const member = swim.member(to)
    if (member === undefined || (member.state !== 'alive' && member.state !== 'suspect')) {
      return Promise.reject(new TransportError(`acceptor ${to} is ${member?.state ?? 'unknown'}`, 'unreachable'))
    }
    return transport.request(member.peer as PeerAddress, message, timeoutMs)
  }
  // Accepts to one acceptor travel in batches, and committed values reach the remote acceptors
  // as commit notices they learn from (accept-batcher.ts); a value one did not learn is written
  // to it in full, hinted when that fails too.
  const acceptBatcher = new AcceptBatcher({
    send: async (to, body, timeoutMs) => (await paxosRequest(to, { type: PAXOS_ACCEPT_MANY, body }, timeoutMs)).body as AcceptManyReplyBody,
    maxBytes: REPLICA_BATCH_MAX_BYTES,
    maxInFlight: REPLICA_BATCHES_IN_FLIGHT,
    commitTimeoutMs: config.replication.timeoutMs,
    commitLingerMs: PAXOS_COMMIT_LINGER_MS,
    clock,
    nowMs,
    defer,
    unlearned: (to, key, record) => {
      coordinator.writeReplica(to, key, record).catch((error: unknown) => nodeLog.warn({ err: error, replica: to }, 'writing a committed linearizable value to a replica failed'))
    },
  })
  // This node's own acceptor takes the proposer's accepts the same way, without a frame: a
  // turn's accepts answered after one journal sync. It takes no commit notices: the proposer
  // holds the chosen value and gives it to the learn buffer itself (commit, below).
  const localAccepts = new AcceptBatcher({
    send: (_to, body) => acceptor.acceptBatch(body),
    maxBytes: REPLICA_BATCH_MAX_BYTES,
    maxInFlight: REPLICA_BATCHES_IN_FLIGHT,
    commitTimeoutMs: config.replication.timeoutMs,
    commitLingerMs: 0,
    clock,
    nowMs,
    defer,
    unlearned: () => { throw new Error('the local acceptor is sent no commit notices') },
  })
  const proposer = new Proposer({
    localId: id,
    acceptorsFor: (key) => placement.replicasFor(key).replicas,
    quorum,
    prepare: async (to, key, ballot, set) => to === id
      ? acceptor.prepare(key, ballot, set)
      : promiseFromWire(key, (await paxosRequest(to, { type: PAXOS_PREPARE, body: { key, ballot, set } })).body as PromiseBody),
    accept: (to, key, ballot, record, history, set, alone) => (to === id ? localAccepts : acceptBatcher).accept(to, key, ballot, record, history, set, config.replication.timeoutMs, alone),
    nextTick: () => hlc.next(),
    observeTick: (tick) => { hlc.update(tick) },
    clock,
    random: randomFor(),
    roundTimeoutMs: config.replication.timeoutMs,
    maxAttempts: PAXOS_MAX_ATTEMPTS,
    backoffBaseMs: PAXOS_BACKOFF_BASE_MS,
    backoffMaxMs: PAXOS_BACKOFF_MAX_MS,
    maxCachedKeys: PAXOS_MAX_CACHED_KEYS,
    maxQueuedPerKey: PAXOS_MAX_QUEUED_PER_KEY,
    commit: (key, record, ballot, acceptors, fresh) => {
      // Already here (a read found a value chosen long ago): the other replicas had the same
      // commit, and anti-entropy brings it from here to any that missed it.
      const held = fresh ? undefined : store.get(key)
      if (held?.strong === true && compareVersions(held.version, record.version) >= 0) return
      // The remote acceptors learn it from commit notices; propagate writes any other replica (a
      // pending one during a placement change). This node's store takes it through the learn
      // buffer like a learned value, whatever its own acceptor holds: the value is chosen, and a
      // notice to itself would cost a batch, a lookup and a turn per change for nothing.
      const learners = new Set(acceptors)
      coordinator.propagate(key, record, learners).catch((error: unknown) => nodeLog.warn({ err: error }, 'writing a committed linearizable value to the replicas failed'))
      for (const learner of learners) {
        if (learner !== id) acceptBatcher.commit(learner, key, ballot, record)
        else learnBuffer.add([{ key, record }]).catch((error: unknown) => nodeLog.warn({ err: error }, 'writing a committed linearizable value to the local store failed; anti-entropy brings it from the other replicas'))
      }
    },
    nowMs,
    onRound: (phase, outcome) => metrics.paxosRounds.inc({ phase, outcome }),
  })
  const lifecycleLog = nodeLog.child({ component: 'lifecycle' })
  const lifecycle = new LifecycleService({
    localId: id,
    localName: config.node.name,
    clock,
    random: randomFor(),
    log: lifecycleLog,
    replicationFactor: config.replication.factor,
    initial: storedLifecycleRecords(store.meta.read('lifecycle'), lifecycleLog),
    persist: async (records) => { await store.meta.update('lifecycle', () => records()) },
    initialRepairs: storedRemovalRepairs(store.meta.read('removalRepairs'), lifecycleLog),
    persistRepairs: async (repairs) => { await store.meta.update('removalRepairs', () => repairs()) },
    persistDecommissioned: async (atMs) => { await store.meta.update('decommissionedAtMs', () => atMs) },
    members: () => swim.members(),
    send: (peer, message) => transport.send(peer, message),
    request: (peer, message, timeoutMs) => transport.request(peer, message, timeoutMs),
    requestTimeoutMs: config.replication.timeoutMs,
    gossipIntervalMs: LIFECYCLE_PUSH_PULL_MS,
    retryDelayMs: LIFECYCLE_RETRY_MS,
    ownedPartitions: (member) => placement.ownedPartitions(member),
    replicasOf: (partition) => placement.replicas(partition),
    pendingReplicas: (partition) => placement.pendingReplicas(partition),
    placementMembers: () => placement.members,
    refreshPlacement: (rebalance) => refreshPlacement(rebalance),
    sync: lifecycleSync(antiEntropy, (member) => swim.member(member)?.peer),
    hintsPending: () => hints.owners().filter((owner) => swim.member(owner)?.state === 'alive' && !isRemoved(owner)).reduce((sum, owner) => sum + hints.pending(owner).count, 0),
    dropHints: async (owner) => {
      let dropped = 0
      for (;;) {
        const batch = hints.take(owner, REMOVED_HINTS_BATCH)
        if (batch.ids.length === 0) break
        await hints.remove(batch.ids)
        dropped += batch.ids.length
      }
      if (dropped > 0) { metrics.hintsHandedOff.inc({ result: 'dropped' }, dropped); refreshHintsGauge() }
      return dropped
    },
    leave: () => membership.leave(DECOMMISSION_LEAVE_TIMEOUT_MS),
    onRemovedSelf: (record) => world.onRemovedSelf?.(record),
  })
  lifecycleRef = lifecycle
  registerLifecycleHandlers(transport, lifecycle)
  refreshPlacement()
  return {
    id, local, transport, hlc, swim, membership, placement, forest, hints, handoff, absence, antiEntropy, collector, coordinator, offsetMonitor, proposer, lifecycle,
    acceptorStore, learnBuffer, acceptorSets, catchUp,
    kv: guardKvService(coordinator, repairRefusal, () => skewRefusal(offsetMonitor.verdict())),
    watches,
    changeLogTrimmer,
    linearizable: guardLinearizable(proposerService(proposer), repairRefusal, () => skewRefusal(offsetMonitor.verdict())),
    start: (seeds) => {
      // Our own address among the seeds (one config for every node) is not someone to join.
      membership.start(seeds.filter((seed) => seed !== local.peer))
      collector.start()
      handoff.start()
      antiEntropy.start()
      offsetMonitor.start()
      changeLogTrimmer.start()
      lifecycle.start()
      catchUp.kick()
    },
  }
}

/** Partitions a member replicates and those it is a pending replica of, ascending. */
function withPending(owned: readonly number[], pending: readonly number[]): readonly number[] {
  return pending.length === 0 ? owned : [...new Set([...owned, ...pending])].sort((a, b) => a - b)
}

/** The records kept in meta, validated as if they came off the wire: a damaged value is dropped, not trusted. */
function storedLifecycleRecords(stored: unknown, log: Logger): LifecycleRecord[] {
  if (stored === undefined) return []
  try {
    return [...validateLifecycleGossip({ records: stored, reply: false }).records]
  } catch (error) {
    log.error({ err: error }, 'the stored lifecycle records do not validate; starting without them (peers gossip them back)')
    return []
  }
}

function storedRemovalRepairs(stored: unknown, log: Logger): StoredRepair[] {
  if (stored === undefined) return []
  try {
    return validateStoredRepairs(stored)
  } catch (error) {
    log.error({ err: error }, 'the stored removal repairs do not validate; starting without them (anti-entropy still brings the gained partitions up to date, without progress shown)')
    return []
  }
}

/** Lifecycle sessions as one anti-entropy round, reported per requested peer. */
function lifecycleSync(antiEntropy: AntiEntropy, peerOf: (member: NodeId) => string | undefined): SyncRunner {
  return async (requests) => {
    const summary = await antiEntropy.syncPartitions(requests)
    return requests.map(({ id }) => {
      const peer = peerOf(id)
      const session = summary.sessions.find((s) => s.peer === peer)
      if (session !== undefined) return { id, ok: true, agreed: session.agreedPartitions, moved: session.pushed + session.pulled, bytesMoved: session.bytesMoved }
      const failure = summary.failures.find((f) => f.peer === peer)
      return { id, ok: false, agreed: [], moved: 0, bytesMoved: 0, error: failure?.error ?? 'the member is not alive' }
    })
  }
}

export function countByState(members: readonly Member[]): Record<Member['state'], number> {
  const counts = { alive: 0, suspect: 0, dead: 0, left: 0 }
  for (const member of members) counts[member.state]++
  return counts
}

/** Logs every member state change and keeps the membership metrics current. */
function watchMembership(membership: MembershipDriver, metrics: Metrics, clock: Clock, log: Logger): void {
  const refreshGauge = (): void => {
    const counts = countByState(membership.members())
    for (const [state, count] of Object.entries(counts)) metrics.members.set({ state }, count)
  }
  membership.on('change', (member, previous) => {
    refreshGauge()
    const self = member.id === membership.local.id
    if (self && previous !== undefined && member.incarnation > previous.incarnation) metrics.membershipRefutations.inc()
    if (previous?.state === member.state) return
    metrics.memberTransitions.inc({ state: member.state })
    const fields = { member: member.id, memberName: member.name, peer: member.peer, incarnation: member.incarnation, from: previous?.state ?? 'unknown', to: member.state }
    if (member.state === 'suspect' || member.state === 'dead') log.warn(fields, `member ${member.name} is ${member.state}`)
    else log.info(fields, `member ${member.name} is ${member.state}`)
  })
  membership.on('reaped', (member) => { refreshGauge(); log.info({ member: member.id, memberName: member.name }, `forgot member ${member.name} (${member.state} for the reap period)`) })
  membership.on('probeAcked', (_target, rttMs, indirect) => metrics.probeRoundTrip.observe({ path: indirect ? 'indirect' : 'direct' }, rttMs / 1000))
  membership.on('joined', (seed) => log.info({ seed }, `joined the cluster through ${seed}`))
  membership.on('joinUnanswered', (attempt, seeds, retryAtMs) => log.warn({ attempt, seeds, retryInMs: Math.max(0, retryAtMs - clock.nowMs()) }, 'no seed answered; running alone and retrying'))
  membership.on('persistFailed', (error) => log.error({ err: error }, 'could not store the incarnation'))
}

/** The clock offset monitor's news as metrics and log lines. */
function clockOffsetEvents(metrics: Metrics, log: Logger): Pick<ConstructorParameters<typeof ClockOffsetMonitor>[0], 'onEstimate' | 'onForget' | 'onVerdictChange'> {
  metrics.clockSkewed.set(0)
  return {
    onEstimate: (peer, estimate) => metrics.clockOffset.set({ peer: peer.name }, estimate.offsetMs / 1000),
    onForget: (peer: MonitoredPeer) => metrics.clockOffset.remove({ peer: peer.name }),
    onVerdictChange: (verdict) => {
      metrics.clockSkewed.set(verdict.skewed ? 1 : 0)
      const fields = { aheadMs: verdict.aheadMs, maxSkewMs: verdict.maxSkewMs, peersMeasured: verdict.peersMeasured, peersBeyond: verdict.peersBeyond }
      if (verdict.skewed) log.error(fields, 'this node\'s clock is beyond clock.maxSkewMs from a majority of its peers: refusing to coordinate writes until it is corrected (check NTP)')
      else log.info(fields, 'this node\'s clock is back within clock.maxSkewMs of its peers: coordinating writes again')
    },
  }
}

/** The error a write gets while the clock is skewed; undefined while it is not. */
function skewRefusal(verdict: ClockVerdict): ClockSkewedError | undefined {
  return verdict.skewed ? new ClockSkewedError(verdict.aheadMs ?? 0, verdict.maxSkewMs, verdict.peersBeyond, verdict.peersMeasured) : undefined
}

/** A finished anti-entropy round as metrics and one log line. */
function recordRound(summary: RoundSummary, metrics: Metrics, log: Logger): void {
  const totals = roundTotals(summary)
  metrics.antiEntropyRounds.inc({ result: summary.failures.length > 0 ? 'failed' : summary.sessions.length === 0 ? 'skipped' : 'ok' })
  metrics.antiEntropyRoundDuration.observe(summary.durationMs / 1000)
  metrics.antiEntropyRecords.inc({ direction: 'sent' }, totals.pushed)
  metrics.antiEntropyRecords.inc({ direction: 'received' }, totals.pulled)
  metrics.antiEntropyPartitions.inc({ outcome: 'equal' }, totals.partitionsCompared - totals.partitionsDiffering)
  metrics.antiEntropyPartitions.inc({ outcome: 'differing' }, totals.partitionsDiffering)
  metrics.antiEntropyDropped.inc(totals.dropped)
  const fields = { trigger: summary.trigger, mode: summary.mode, peers: summary.sessions.length, ...totals, handedOff: summary.handedOff.length, failures: summary.failures, durationMs: summary.durationMs }
  if (summary.failures.length > 0) log.warn(fields, 'anti-entropy round had failed sessions; they are retried in a later round')
  else if (totals.partitionsDiffering > 0 || summary.trigger === 'admin') log.info(fields, 'anti-entropy round')
  else log.debug(fields, 'anti-entropy round: replicas agree')
}
