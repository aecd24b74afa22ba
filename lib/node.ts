import { HybridLogicalClock } from './clock/hlc.js'
import type { NodeId } from './clock/version.js'
import type { HearsayConfig } from './config/types.js'
import type { Logger } from './log/logger.js'
import { createMetrics, type Metrics } from './metrics/metrics.js'
import { createApiServer, type ApiServer } from './api/server.js'
import { DEFAULT_API_LIMITS } from './api/limits.js'
import type { HealthView, MemberView } from './api/views.js'
import { Coordinator } from './replication/coordinator.js'
import { registerReplicaHandlers } from './replication/replica.js'
import { HintStore } from './replication/hints.js'
import { HintedHandoff } from './replication/handoff.js'
import { PlacementTable } from './placement/table.js'
import { loadHasher } from './placement/hash.js'
import { MerkleForest } from './merkle/forest.js'
import { loadRecordDigester } from './merkle/digest.js'
import { MerkleTree } from './merkle/tree.js'
import { AbsenceTracker } from './antientropy/absence.js'
import { partitionOfSegment } from './merkle/segment.js'
import { heldByEveryReplica, SyncCertificates } from './antientropy/certificates.js'
import { AntiEntropy, describeRound, roundTotals, type RoundSummary } from './antientropy/anti-entropy.js'
import { LocalReplica } from './antientropy/local-replica.js'
import { isAntiEntropyType } from './antientropy/messages.js'
import { registerSyncHandlers } from './antientropy/responder.js'
import { segmentIndexOptions } from './antientropy/segments.js'
import { guardKvService } from './replication/guard.js'
import { ClockOffsetMonitor, type ClockVerdict, type MonitoredPeer } from './clock/offset-monitor.js'
import { ClockSkewedError } from './clock/errors.js'
import { MAX_RECORDS_PER_WRITE, type ReplicaWriteBody } from './replication/messages.js'
import { ReplicaWriteBatcher } from './replication/write-batcher.js'
import { KvStore } from './store/kv-store.js'
import { TombstoneCollector } from './store/gc.js'
import { StoreHighWaterMark } from './store/high-water.js'
import { networkInterfaces } from 'node:os'
import { WsTransport } from './transport/ws-transport.js'
import type { TransportCounters } from './transport/counters.js'
import { Swim } from './membership/swim.js'
import { MembershipDriver } from './membership/driver.js'
import type { Member } from './membership/member-table.js'
import { cryptoSeededRandom } from './runtime/random.js'
import { systemClock } from './runtime/clock.js'
import { cronScheduler } from './runtime/scheduler.js'
import { resolveAdvertiseAddress } from './config/advertise.js'

export interface NodeInfo {
  /** Package version, shown in /status. */
  readonly version: string
}

/** Longest a graceful stop waits for the `left` news to spread before going on. */
const LEAVE_TIMEOUT_MS = 3000

/** Hinted handoff: how often hints for live owners are retried, and records per delivery. */
const HANDOFF_INTERVAL_MS = 1000
const HANDOFF_BATCH_SIZE = 256
/** A batch of replica writes to one peer is sent once it holds about this much (frames are limited to 4 MiB). */
const REPLICA_BATCH_MAX_BYTES = 1024 * 1024

/** How a stop ended: clean, or cut short by the shutdown deadline. */
export type StopOutcome = 'clean' | 'timed-out'

/**
 * The composition root: the only module that knows every other one. It builds the pieces in
 * dependency order, starts them, and stops them in reverse, so each module stays testable alone.
 */
export class HearsayNode {
  private state: HealthView['status'] = 'starting'
  private readonly startedAtMs = Date.now()

  private constructor(
    private readonly config: HearsayConfig,
    private readonly log: Logger,
    private readonly info: NodeInfo,
    readonly id: NodeId,
    readonly incarnation: number,
    private readonly store: KvStore,
    private readonly collector: TombstoneCollector,
    private readonly clock: HybridLogicalClock,
    private readonly metrics: Metrics,
    private readonly api: ApiServer,
    private readonly transport: WsTransport,
    private readonly membership: MembershipDriver,
    private readonly handoff: HintedHandoff,
    private readonly hints: HintStore,
    private readonly forest: MerkleForest,
    private readonly antiEntropy: AntiEntropy,
    private readonly offsetMonitor: ClockOffsetMonitor,
    /** Advertised `host:port` of the client API and the peer port. */
    readonly advertised: { readonly api: string; readonly peer: string },
  ) {}

  static async start(config: HearsayConfig, log: Logger, info: NodeInfo): Promise<HearsayNode> {
    // A test hook only (clock.offsetMs): shifts this node's notion of wall time for skew demos.
    const nowMs = config.clock.offsetMs === 0 ? Date.now : () => Date.now() + config.clock.offsetMs
    const digester = await loadRecordDigester()
    // The store orders (key, version) by Merkle segment too, so a sync lists a leaf without a walk.
    const segments = segmentIndexOptions(digester, config.partitions)
    const store = await KvStore.open({ dataDir: config.node.dataDir, mapSizeBytes: config.store.mapSizeBytes, segments, nowMs })
    let api: ApiServer | undefined
    let transport: WsTransport | undefined
    try {
      const { id, incarnation } = await store.identity.load()
      const nodeLog = log.child({ node: id })
      const clock = new HybridLogicalClock({
        nowMs,
        maxSkewMs: config.clock.maxSkewMs,
        highWater: new StoreHighWaterMark(store),
        onSaveError: (error) => nodeLog.error({ err: error }, 'could not persist the clock high-water mark; retrying'),
        clock: systemClock,
      })
      await clock.start()
      const metrics = createMetrics()
      const certificates = new SyncCertificates()
      const collector = new TombstoneCollector(store, {
        tombstoneGraceMs: config.store.tombstoneGraceMs,
        intervalMs: config.store.gcIntervalMs,
        batchSize: config.store.gcBatchSize,
        nowMs,
        // Only what every other replica is known to hold: see lib/antientropy/certificates.ts.
        heldByEveryReplica: heldByEveryReplica({
          certificates, localId: id, replicasOf: (partition) => placement.replicas(partition),
          partitionOf: (key) => partitionOfSegment(segments.segmentOf(key)), arrivalMs: (key) => store.arrivalMs(key),
        }),
        onCollected: (kind, count) => metrics.storeGcCollected.inc({ kind }, count),
        onSwept: (waiting) => metrics.storeGcWaiting.set(waiting),
        onError: (error) => nodeLog.error({ err: error }, 'garbage collection step failed; will retry'),
      })
      let node: HearsayNode | undefined
      const interfaces = networkInterfaces()
      const advertised = {
        api: resolveAdvertiseAddress({ key: 'api.advertise', bindHost: config.api.host, boundPort: config.api.port, advertise: config.api.advertise, interfaces }),
        peer: resolveAdvertiseAddress({ key: 'peer.advertise', bindHost: config.peer.host, boundPort: config.peer.port, advertise: config.peer.advertise, interfaces }),
      }
      const local = { id, name: config.node.name, peer: advertised.peer, api: advertised.api }
      transport = new WsTransport({
        bindHost: config.peer.host,
        bindPort: config.peer.port,
        local,
        clusterName: config.cluster.name,
        secret: config.cluster.secret,
        log: nodeLog.child({ component: 'transport' }),
        counters: transportCounters(metrics),
        clock: systemClock,
        random: cryptoSeededRandom(),
      })
      const swim = new Swim({ local, storedIncarnation: incarnation, config: config.membership, random: cryptoSeededRandom() })
      const membership = new MembershipDriver({
        transport,
        swim,
        // Async but prompt: a crash before it lands costs nothing, because every start bumps the
        // stored incarnation and SWIM starts one above it (see NodeIdentity.load).
        persistIncarnation: (value) => {
          store.meta.update('incarnation', (current) => Math.max(typeof current === 'number' ? current : 0, value))
            .catch((error: unknown) => nodeLog.error({ err: error }, 'could not store the incarnation'))
        },
      })
      watchMembership(membership, metrics, nodeLog.child({ component: 'membership' }))

      const placement = new PlacementTable(await loadHasher(), { partitionCount: config.partitions, replicationFactor: config.replication.factor }, swim.members())
      // One Merkle tree per partition, rebuilt from the segment index at start and kept current
      // by the store's change hook (writes, replica applies, sync, GC).
      const forest = new MerkleForest(digester)
      const rebuildStartedMs = Date.now()
      let records = 0
      for (const { segment, keyBytes, versionBytes } of store.segments!.raw()) {
        forest.addRaw(segment, keyBytes, versionBytes)
        records++
      }
      nodeLog.info({ records, ms: Date.now() - rebuildStartedMs }, 'rebuilt the Merkle trees from the store')
      // The store hashed each changed key for its segment index already; the trees reuse that.
      store.onChange(({ key, previous, current, segment }) => {
        forest.applyInSegment(segment ?? segments.segmentOf(key), key, previous?.version, current?.version)
      })
      const hints = new HintStore(store.hints, { maxBytes: config.replication.maxHintBytes, windowMs: config.replication.hintWindowMs, nowMs })
      const refreshHintsGauge = (): void => { metrics.hintsPending.set(hints.pending().count) }
      const handoff = new HintedHandoff({
        hints,
        deliver: async (owner, entries) => {
          const member = swim.member(owner)
          if (member === undefined) throw new Error(`member ${owner} is unknown`)
          await transport!.request(member.peer, { type: 'replicaWrite', body: { entries } }, config.replication.timeoutMs)
        },
        isAlive: (owner) => swim.member(owner)?.state === 'alive',
        intervalMs: HANDOFF_INTERVAL_MS,
        batchSize: HANDOFF_BATCH_SIZE,
        clock: systemClock,
        random: cryptoSeededRandom(),
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
        observeHlc: (hlc) => { clock.update(hlc) },
      }, new MerkleTree(digester))
      const antiEntropyLog = nodeLog.child({ component: 'antientropy' })
      const antiEntropy = new AntiEntropy({
        localId: id,
        schedule: config.antiEntropy.schedule,
        scheduler: cronScheduler,
        clock: systemClock,
        random: cryptoSeededRandom(),
        automatic: config.antiEntropy.enabled,
        replica,
        absence,
        certificates,
        ownedPartitions: (member) => placement.ownedPartitions(member),
        replicasOf: (partition) => placement.replicas(partition),
        inPlacement: () => placement.members.includes(id),
        heldPartitions: () => forest.partitions(),
        alivePeer: (member) => {
          const found = swim.member(member)
          return found?.state === 'alive' ? found.peer : undefined
        },
        aliveMembers: () => swim.members().filter((m) => m.state === 'alive').map((m) => m.id),
        request: (peer, message, timeoutMs) => transport!.request(peer, message, timeoutMs),
        requestTimeoutMs: config.antiEntropy.requestTimeoutMs,
        maxBytesPerSecond: config.antiEntropy.maxBytesPerSecond,
        batchBytes: config.antiEntropy.batchBytes,
        partitionConcurrency: config.antiEntropy.partitionConcurrency,
        log: antiEntropyLog,
        onRound: (summary) => recordRound(summary, metrics, antiEntropyLog),
      })
      // Measures this node's clock against its peers'; beyond clock.maxSkewMs it takes no writes.
      const offsetMonitor = new ClockOffsetMonitor({
        transport, clock: systemClock, wallMs: nowMs, maxSkewMs: config.clock.maxSkewMs,
        alivePeers: () => swim.members().filter((m) => m.state === 'alive' && m.id !== id),
        ...clockOffsetEvents(metrics, nodeLog.child({ component: 'clock' })),
      })
      membership.on('change', (member, previous) => {
        if (member.state === 'alive' && previous?.state !== 'alive' && member.id !== id) offsetMonitor.probe(member)
        if (placement.update(swim.members())) antiEntropy.placementChanged()
        if (member.state === 'alive' && previous?.state !== 'alive') {
          handoff.ownerAlive(member.id)
          antiEntropy.memberAlive(member.id)
        }
      })
      membership.on('reaped', (member) => {
        certificates.forget(member.id)
        if (placement.update(swim.members())) antiEntropy.placementChanged()
      })
      // Remote versions move our clock forward; one beyond clock.maxSkewMs is refused (throws).
      const observeHlc = (hlc: number): void => { clock.update(hlc) }
      const [delayMinMs, delayMaxMs] = [config.replication.testDelayMinMs, config.replication.testDelayMaxMs]
      const delayRandom = cryptoSeededRandom()
      const writeBatcher = new ReplicaWriteBatcher({
        send: (to, message, timeoutMs) => transport!.request(to, message, timeoutMs),
        maxEntries: MAX_RECORDS_PER_WRITE,
        maxBytes: REPLICA_BATCH_MAX_BYTES,
      })
      const coordinator = new Coordinator({
        localId: id,
        local: store,
        nextHlc: () => clock.next(),
        nowMs,
        clock: systemClock,
        observeHlc,
        replicasFor: (key) => placement.replicasFor(key).replicas,
        member: (memberId) => swim.member(memberId),
        aliveMembers: () => swim.members().filter((m) => m.state === 'alive' && m.id !== id).map((m) => m.id),
        holdsEverything: () => placement.members.length <= config.replication.factor,
        // Replica writes to one peer within a turn travel as one batch; everything else directly.
        request: (to, message, timeoutMs) => message.type === 'replicaWrite'
          ? writeBatcher.write(to, (message.body as ReplicaWriteBody).entries, timeoutMs)
          : transport!.request(to, message, timeoutMs),
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
        defaultWrite: config.replication.writeQuorum,
        defaultRead: config.replication.readQuorum,
        maxScanLimit: config.api.maxScanLimit,
        injectedDelayMs: delayMaxMs === 0 ? () => 0 : () => delayMinMs + delayRandom.next() * (delayMaxMs - delayMinMs),
        onReadRepair: (count) => metrics.readRepairs.inc(count),
        onQuorumFailure: (kind) => metrics.quorumFailures.inc({ kind }),
        onBackgroundError: (error, what) => nodeLog.warn({ err: error }, `${what} failed`),
      })
      api = createApiServer({
        kv: guardKvService(coordinator, repairRefusal, () => skewRefusal(offsetMonitor.verdict())),
        sync: async () => describeRound(await antiEntropy.syncNow()),
        status: () => node!.status(),
        health: () => {
          const clockVerdict = offsetMonitor.verdict()
          if (node?.state === 'ok' && !absence.repairRequired && clockVerdict.skewed) {
            return { status: 'skewed', id, name: config.node.name, clock: { aheadMs: Math.round(clockVerdict.aheadMs ?? 0), maxSkewMs: clockVerdict.maxSkewMs, peersMeasured: clockVerdict.peersMeasured, peersBeyond: clockVerdict.peersBeyond } }
          }
          return { status: node?.state === 'ok' && absence.repairRequired ? 'repairing' : node?.state ?? 'starting', id, name: config.node.name }
        },
        members: () => node?.members() ?? [],
        metrics,
        log: nodeLog,
        limits: {
          ...DEFAULT_API_LIMITS,
          maxKeyBytes: config.api.maxKeyBytes,
          maxValueBytes: config.api.maxValueBytes,
          maxBatchOps: config.api.maxBatchOps,
          maxBatchBodyBytes: config.api.maxBatchBodyBytes,
          maxScanLimit: config.api.maxScanLimit,
          defaultScanLimit: config.api.defaultScanLimit,
          requestTimeoutMs: config.api.requestTimeoutMs,
          maxHeaderBytes: config.api.maxHeaderBytes,
        },
        streamLimits: {
          maxConnectionBytes: config.api.maxStreamConnectionBytes,
          maxTotalBytes: config.api.maxStreamTotalBytes,
          messageTimeoutMs: config.api.streamMessageTimeoutMs,
        },
        ...(config.api.token !== '' ? { token: config.api.token } : {}),
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
        onReceived: (count) => metrics.antiEntropyRecords.inc({ direction: 'received' }, count),
      })
      await transport.start()
      const apiAddress = await api.listen(config.api.host, config.api.port)
      node = new HearsayNode(config, nodeLog, info, id, swim.local.incarnation, store, collector, clock, metrics, api, transport, membership, handoff, hints, forest, antiEntropy, offsetMonitor, advertised)
      // Our own address among the seeds (one config for every node) is not someone to join.
      membership.start(config.cluster.seeds.filter((seed) => seed !== advertised.peer))
      collector.start()
      handoff.start()
      antiEntropy.start()
      offsetMonitor.start()
      node.state = 'ok'
      nodeLog.info({
        incarnation: swim.local.incarnation, dataDir: config.node.dataDir,
        api: `${apiAddress.host}:${apiAddress.port}`,
        peer: `${config.peer.host}:${config.peer.port}`,
        seeds: config.cluster.seeds,
        advertise: advertised,
        version: info.version,
      }, 'hearsayd serving')
      return node
    } catch (error) {
      await api?.close(0).catch(() => undefined)
      await transport?.close().catch(() => undefined)
      await store.close().catch(() => undefined)
      throw error
    }
  }

  /** Applies reloadable settings (see lib/config/reload.ts); the rest need a restart. */
  reload(next: HearsayConfig, changed: readonly string[]): void {
    if (changed.includes('log.level')) this.log.level = next.log.level
    this.metrics.configReloads.inc()
  }

  /**
   * Graceful stop: answer /health 503, stop taking requests and let those in flight finish, then
   * stop background work and close the store (releasing the data-dir lock). Bounded by `timeoutMs`.
   */
  async stop(timeoutMs: number): Promise<StopOutcome> {
    this.state = 'leaving'
    const deadline = Date.now() + timeoutMs
    let outcome: StopOutcome = 'clean'
    const remaining = (): number => Math.max(0, deadline - Date.now())
    // No new sync sessions: leaving changes placement, which must not start a hand-off.
    await this.antiEntropy.stop()
    // Tell the cluster first (state left, not dead), while links still carry the news; bounded
    // to half the budget so requests in flight still get their share.
    await this.membership.leave(Math.min(LEAVE_TIMEOUT_MS, remaining() / 2))
    try {
      await this.api.close(remaining())
    } catch (error) {
      outcome = 'timed-out'
      this.log.warn({ err: error }, 'API did not close cleanly')
    }
    await this.handoff.stop()
    this.offsetMonitor.stop()
    this.membership.stop()
    await this.transport.close()
    await this.collector.stop()
    this.clock.stop()
    await this.store.close()
    if (Date.now() > deadline) outcome = 'timed-out'
    return outcome
  }

  private members(): MemberView[] {
    return this.membership.members()
      .map(({ id, name, peer, api, state, incarnation }) => ({ id, name, peer, api, state, incarnation }))
      .sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id))
  }

  private status(): Record<string, unknown> {
    const stats = this.store.stats()
    this.metrics.storeKeys.set(stats.keys)
    return {
      id: this.id,
      name: this.config.node.name,
      version: this.info.version,
      state: this.state,
      uptimeSeconds: Math.round((Date.now() - this.startedAtMs) / 1000),
      keys: stats.keys,
      storeBytes: stats.sizeBytes,
      dataDir: this.config.node.dataDir,
      api: this.advertised.api,
      peer: this.advertised.peer,
      members: countByState(this.membership.members()),
      hintsPending: this.hints.pending().count,
      repairing: this.antiEntropy.repairing,
      clock: clockStatus(this.offsetMonitor),
      // Equal on two nodes exactly when they hold the same records (up to xxh64 collisions).
      digest: this.forest.digest().toString(16).padStart(16, '0'),
      replication: { factor: this.config.replication.factor, writeQuorum: this.config.replication.writeQuorum, readQuorum: this.config.replication.readQuorum },
    }
  }
}

function countByState(members: readonly Member[]): Record<Member['state'], number> {
  const counts = { alive: 0, suspect: 0, dead: 0, left: 0 }
  for (const member of members) counts[member.state]++
  return counts
}

/** Transport events as Prometheus counters. */
function transportCounters(metrics: Metrics): TransportCounters {
  const bytesCounters = new Map<string, (bytes: number) => void>()
  return {
    linkOpened: (direction) => metrics.peerLinksOpened.inc({ direction }),
    linkClosed: (reason) => metrics.peerLinksClosed.inc({ reason }),
    refused: (by, code) => metrics.peerHandshakesRefused.inc({ by, code }),
    malformed: (reason) => metrics.peerMalformedFrames.inc({ reason }),
    dropped: (reason) => metrics.peerMessagesDropped.inc({ reason }),
    frameBytes: (direction, type, bytes) => {
      // Called for every peer frame: resolve each label set to its child counter once, not per
      // frame (prom-client hashes the label object on every labelled inc).
      const key = `${direction}:${type}`
      let counter = bytesCounters.get(key)
      if (counter === undefined) {
        const peer = metrics.peerBytes.labels({ direction, type })
        const sync = isAntiEntropyType(type) ? metrics.antiEntropyBytes.labels({ direction }) : undefined
        counter = (count) => { peer.inc(count); sync?.inc(count) }
        bytesCounters.set(key, counter)
      }
      counter(bytes)
    },
  }
}

/** Logs every member state change and keeps the membership metrics current. */
function watchMembership(membership: MembershipDriver, metrics: Metrics, log: Logger): void {
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
  membership.on('joinUnanswered', (attempt, seeds, retryAtMs) => log.warn({ attempt, seeds, retryInMs: Math.max(0, retryAtMs - Date.now()) }, 'no seed answered; running alone and retrying'))
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

/** /status `clock`: the verdict and each measured peer's offset. */
function clockStatus(monitor: ClockOffsetMonitor): Record<string, unknown> {
  const verdict = monitor.verdict()
  return {
    skewed: verdict.skewed,
    maxSkewMs: verdict.maxSkewMs,
    aheadMs: verdict.aheadMs === undefined ? null : Math.round(verdict.aheadMs),
    peers: monitor.offsets().map((o) => ({ id: o.peer.id, name: o.peer.name, offsetMs: Math.round(o.offsetMs), uncertaintyMs: Math.round(o.uncertaintyMs), beyond: o.beyond })),
  }
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
