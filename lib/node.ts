import type { NodeId } from './clock/version.js'
import type { HearsayConfig } from './config/types.js'
import type { Logger } from './log/logger.js'
import { createMetrics, type Metrics } from './metrics/metrics.js'
import { createApiServer, type ApiServer } from './api/server.js'
import { DEFAULT_API_LIMITS } from './api/limits.js'
import type { HealthView, MemberView } from './api/views.js'
import { loadHasher } from './placement/hash.js'
import { loadRecordDigester } from './merkle/digest.js'
import { describeRound } from './antientropy/anti-entropy.js'
import { isAntiEntropyType } from './antientropy/messages.js'
import { segmentIndexOptions } from './antientropy/segments.js'
import type { ClockOffsetMonitor } from './clock/offset-monitor.js'
import { KvStore } from './store/kv-store.js'
import { networkInterfaces } from 'node:os'
import { WsTransport } from './transport/ws-transport.js'
import type { TransportCounters } from './transport/counters.js'
import { cryptoSeededRandom } from './runtime/random.js'
import { offsetClock, systemClock } from './runtime/clock.js'
import { cronScheduler, type ScheduledJob, type Scheduler } from './runtime/scheduler.js'
import { resolveAdvertiseAddress } from './config/advertise.js'
import { reloadTlsMaterial } from './config/reload.js'
import { openTlsMaterial } from './tls/check.js'
import type { TlsMaterialHolder } from './tls/material.js'
import { countByState, wireNode, type WiredNode } from './wiring.js'
import { Dashboard } from './dashboard/dashboard.js'
import { guardKvService } from './replication/guard.js'
import { prepareSnapshot } from './store/snapshot.js'
import { UnavailableError } from './errors.js'
import { join } from 'node:path'

export interface NodeInfo {
  /** Package version, shown in /status. */
  readonly version: string
}

/** Where a snapshot's copy is made, inside the data dir (same file system, removed when streamed). */
const SNAPSHOT_WORK_DIR = 'snapshot.tmp'

/** Longest a graceful stop waits for the `left` news to spread before going on. */
const LEAVE_TIMEOUT_MS = 3000

/**
 * node-cron's first schedule sets up ICU's date formatting and a pool of UUIDs: 35–50 ms of CPU
 * on this project's machine, as much as a tenth of a start. The node registers its schedules
 * this long after it serves, so a start's first `/health` does not wait behind them.
 */
const SCHEDULES_AFTER_START_MS = 500

/** How a stop ended: clean, or cut short by the shutdown deadline. */
export type StopOutcome = 'clean' | 'timed-out'

/**
 * The composition root of the daemon: it opens LMDB, binds the WebSocket transport and the HTTP
 * API, and hands them, the system clock, OS-seeded randomness and node-cron to the wiring
 * (lib/wiring.ts), which builds every protocol module; then it starts them, and stops them in
 * reverse. The simulator (lib/sim/) hands the same wiring its own world.
 */
export class HearsayNode {
  private state: HealthView['status'] = 'starting'
  private readonly startedAtMs = Date.now()

  private constructor(
    private readonly config: HearsayConfig,
    private readonly log: Logger,
    private readonly info: NodeInfo,
    private readonly parts: WiredNode,
    private readonly store: KvStore,
    private readonly transport: WsTransport,
    private readonly metrics: Metrics,
    private readonly api: ApiServer,
    private readonly dashboard: Dashboard,
    /** Advertised `host:port` of the client API and the peer port. */
    readonly advertised: { readonly api: string; readonly peer: string },
    /** This node's certificate and key with tls.peer or tls.api on; SIGHUP reloads it. */
    private readonly tlsMaterial: TlsMaterialHolder | undefined,
    /**
     * Resolves with a one-line reason when this node learns it was removed from the cluster
     * (hearsay members remove): the daemon then stops instead of serving as a member it no longer is.
     */
    readonly removed: Promise<string>,
  ) {}

  get id(): NodeId {
    return this.parts.id
  }

  get incarnation(): number {
    return this.parts.swim.local.incarnation
  }

  static async start(config: HearsayConfig, log: Logger, info: NodeInfo): Promise<HearsayNode> {
    // A test hook only (clock.offsetMs): shifts this node's notion of wall time for skew demos.
    const clock = offsetClock(systemClock, config.clock.offsetMs)
    const nowMs = (): number => clock.nowMs()
    const digester = await loadRecordDigester()
    // The store orders (key, version) by Merkle segment too, so a sync lists a leaf without a walk.
    const segments = segmentIndexOptions(digester, config.partitions)
    const store = await KvStore.open({ dataDir: config.node.dataDir, mapSizeBytes: config.store.mapSizeBytes, segments, nowMs })
    let api: ApiServer | undefined
    let transport: WsTransport | undefined
    try {
      const decommissionedAtMs = store.meta.read('decommissionedAtMs')
      if (typeof decommissionedAtMs === 'number') {
        throw new Error(`this node was decommissioned at ${new Date(decommissionedAtMs).toISOString()} and does not rejoin on its old data dir: empty node.dataDir (${config.node.dataDir}) to add this machine as a new member`)
      }
      let reportRemoved: (reason: string) => void = () => undefined
      const removed = new Promise<string>((resolve) => { reportRemoved = resolve })
      const metrics = createMetrics()
      let syncBytesTotal = 0
      const dashboard = new Dashboard(clock, () => syncBytesTotal)
      const interfaces = networkInterfaces()
      const advertised = {
        api: resolveAdvertiseAddress({ key: 'api.advertise', bindHost: config.api.host, boundPort: config.api.port, advertise: config.api.advertise, interfaces }),
        peer: resolveAdvertiseAddress({ key: 'peer.advertise', bindHost: config.peer.host, boundPort: config.peer.port, advertise: config.peer.advertise, interfaces }),
      }
      // Checked before any port is bound: a node that cannot do TLS as configured does not start.
      const tlsMaterial = openTlsMaterial(config, advertised, () => Date.now())
      if (tlsMaterial !== undefined) {
        metrics.trackCertificateExpiry(tlsMaterial.current().notAfterMs)
        tlsMaterial.onChange(material => metrics.trackCertificateExpiry(material.notAfterMs))
      }
      const parts = await wireNode({
        config, log, metrics, store, digester,
        hasher: await loadHasher(),
        transport: (local) => {
          transport = new WsTransport({
            bindHost: config.peer.host,
            bindPort: config.peer.port,
            local,
            clusterName: config.cluster.name,
            secret: config.cluster.secret,
            log: log.child({ node: local.id, component: 'transport' }),
            counters: transportCounters(metrics, (bytes) => { syncBytesTotal += bytes }),
            clock: systemClock,
            random: cryptoSeededRandom(),
            limits: { maxConnectionsPerAddress: config.peer.maxConnectionsPerAddress },
            ...(config.tls.peer === 'on' && tlsMaterial !== undefined ? { tls: { source: tlsMaterial, minVersion: config.tls.minVersion } } : {}),
          })
          return transport
        },
        clock,
        random: cryptoSeededRandom(),
        scheduler: registeredAfterStart(cronScheduler, SCHEDULES_AFTER_START_MS),
        advertised,
        antiEntropyHooks: { roundStarted: () => dashboard.rounds.started(), roundFinished: (summary) => dashboard.rounds.finished(summary) },
        onRemovedSelf: (record) => reportRemoved(`this node was removed from the cluster by ${record.byName} at ${new Date(record.atMs).toISOString()} (hearsay members remove); it does not rejoin: empty node.dataDir (${config.node.dataDir}) to add this machine as a new member`),
      })
      const removedBefore = parts.lifecycle.removedSelf
      if (removedBefore !== undefined) {
        throw new Error(`this node was removed from the cluster by ${removedBefore.byName} at ${new Date(removedBefore.atMs).toISOString()} (hearsay members remove) and does not rejoin: empty node.dataDir (${config.node.dataDir}) to add this machine as a new member`)
      }
      const { id, absence, antiEntropy, offsetMonitor } = parts
      const nodeLog = log.child({ node: id })
      let node: HearsayNode | undefined
      const health = (): HealthView => {
        const clockVerdict = offsetMonitor.verdict()
        const stored = store.stats()
        const room = store.storage()
        const storage = { keys: stored.keys, bytesUsed: room.usedBytes, mapBytes: room.mapBytes, mapFreeBytes: room.mapFreeBytes, diskFreeBytes: room.diskFreeBytes }
        const base = { id, name: config.node.name, storage }
        const state = node?.state ?? 'starting'
        if (state === 'starting') return { ...base, status: 'starting', reasons: ['starting: the node is not serving yet'] }
        if (state === 'leaving') return { ...base, status: 'leaving', reasons: ['leaving: the node is shutting down; use another node'] }
        const decommission = parts.lifecycle.decommissionPhase
        if (decommission === 'left') return { ...base, status: 'leaving', reasons: ['leaving: decommissioned: this node has left the cluster; stop it and use another node'] }
        if (decommission !== undefined && decommission !== 'stopped') {
          return { ...base, status: 'leaving', reasons: [`leaving: decommissioning (${decommission}): handing this node's partitions to their new owners; it serves requests until it has left`] }
        }
        if (absence.repairRequired) {
          return { ...base, status: 'repairing', reasons: ['repairing: away from the cluster longer than store.tombstoneGrace; syncing every partition with another replica before serving reads'] }
        }
        if (clockVerdict.skewed) {
          const aheadMs = Math.round(clockVerdict.aheadMs ?? 0)
          return {
            ...base, status: 'skewed',
            reasons: [`clock skew: this node's clock is ${aheadMs} ms off its peers', beyond clock.maxSkewMs ${clockVerdict.maxSkewMs}; it coordinates no writes until NTP corrects it`],
            clock: { aheadMs, maxSkewMs: clockVerdict.maxSkewMs, peersMeasured: clockVerdict.peersMeasured, peersBeyond: clockVerdict.peersBeyond },
          }
        }
        return { ...base, status: 'ok', reasons: [] }
      }
      const startedAtMs = Date.now()
      dashboard.attach({
        parts,
        version: info.version,
        name: config.node.name,
        status: () => health().status,
        uptimeSeconds: () => Math.round((Date.now() - startedAtMs) / 1000),
        storeStats: () => store.stats(),
        digest: () => storeDigest(parts),
        localRecord: (key) => store.get(key),
        partitionCount: config.partitions,
        replicationFactor: config.replication.factor,
        requestTimeoutMs: config.replication.timeoutMs,
      })
      let snapshotting = false
      api = createApiServer({
        // Until the node is fully up (joined, background work started) data requests answer 503
        // with nodeState "starting", so a client moves on to another node.
        kv: guardKvService(
          guardKvService(parts.kv, () => node?.state === 'ok' || node?.state === 'leaving' ? undefined : 'this node is starting; retry on another node', () => undefined, 'starting'),
          // A decommissioned node holds no partitions any more: clients move on (nodeState leaving).
          () => parts.lifecycle.decommissioned ? 'this node was decommissioned and has left the cluster; use another node' : undefined, () => undefined, 'leaving'),
        linearizable: parts.linearizable,
        snapshot: {
          // One at a time: each is a full copy of the store on disk until it has been streamed.
          prepare: async () => {
            if (snapshotting) throw new UnavailableError('a snapshot of this node is being taken already; retry when it is done')
            snapshotting = true
            try {
              const prepared = await prepareSnapshot({
                // The acceptor states the journal holds go into the copy too.
                backup: async (directory) => { await parts.acceptorStore.checkpoint(); await store.backup(directory) }, nodeId: id, nodeName: config.node.name,
                partitions: config.partitions, hearsayVersion: info.version, nowMs,
              }, join(config.node.dataDir, SNAPSHOT_WORK_DIR))
              return { ...prepared, discard: async () => { try { await prepared.discard() } finally { snapshotting = false } } }
            } catch (error) {
              snapshotting = false
              throw error
            }
          },
        },
        sync: async () => describeRound(await antiEntropy.syncNow()),
        lifecycle: {
          remove: async (target) => ({ ...await parts.lifecycle.remove(target) }),
          decommission: async () => ({ ...await parts.lifecycle.decommission() }),
          clusterStatus: async () => ({ ...await parts.lifecycle.clusterStatus() }),
        },
        status: () => node!.status(),
        health,
        dashboard: { subscribe: (listener) => dashboard.subscribe(listener), replicaVersions: (key) => dashboard.replicaVersions(key) },
        onDataRequest: (latencyMs) => dashboard.sampler.observe(latencyMs),
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
          maxConnectionsPerAddress: config.api.maxConnectionsPerAddress,
          idleTimeoutMs: config.api.idleTimeoutMs,
        },
        streamLimits: {
          maxConnectionBytes: config.api.maxStreamConnectionBytes,
          maxTotalBytes: config.api.maxStreamTotalBytes,
          messageTimeoutMs: config.api.streamMessageTimeoutMs,
          idleTimeoutMs: config.api.streamIdleTimeoutMs,
        },
        ...(config.api.token !== '' ? { token: config.api.token } : {}),
        // HTTPS and wss:// streams; the holder's reloads (SIGHUP) reach new client handshakes.
        ...(config.tls.api !== 'off' && tlsMaterial !== undefined ? { tls: { mode: config.tls.api, minVersion: config.tls.minVersion, material: tlsMaterial } } : {}),
        watches: parts.watches,
        watchHeartbeatMs: config.watch.heartbeatMs,
      })
      await transport!.start()
      const apiAddress = await api.listen(config.api.host, config.api.port)
      node = new HearsayNode(config, nodeLog, info, parts, store, transport!, metrics, api, dashboard, advertised, tlsMaterial, removed)
      parts.start(config.cluster.seeds)
      node.state = 'ok'
      nodeLog.info({
        incarnation: parts.swim.local.incarnation, dataDir: config.node.dataDir,
        api: `${apiAddress.host}:${apiAddress.port}`,
        peer: `${config.peer.host}:${config.peer.port}`,
        seeds: config.cluster.seeds,
        advertise: advertised,
        version: info.version,
      }, 'hearsayd serving')
      return node
    } catch (error) {
      await api?.close(0).catch(() => undefined)
      await (transport as WsTransport | undefined)?.close().catch(() => undefined)
      await store.close().catch(() => undefined)
      throw error
    }
  }

  /** Applies reloadable settings (see lib/config/reload.ts); the rest need a restart. */
  reload(next: HearsayConfig, changed: readonly string[]): void {
    if (changed.includes('log.level')) this.log.level = next.log.level
    this.metrics.configReloads.inc()
  }

  /** SIGHUP: re-reads tls.ca/cert/key for new handshakes; refused material keeps the old (lib/config/reload.ts). */
  reloadTls(): void {
    if (this.tlsMaterial !== undefined) reloadTlsMaterial({ holder: this.tlsMaterial, log: this.log, metrics: this.metrics })
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
    const { antiEntropy, membership, handoff, offsetMonitor, collector, hlc, lifecycle } = this.parts
    await antiEntropy.stop()
    // After anti-entropy: a decommission's or repair's session in flight is aborted there.
    await lifecycle.stop()
    // Tell the cluster first (state left, not dead), while links still carry the news; bounded
    // to half the budget so requests in flight still get their share.
    await membership.leave(Math.min(LEAVE_TIMEOUT_MS, remaining() / 2))
    // Watches never finish by themselves: end them (reason shutdown) so their clients resume elsewhere.
    this.parts.watches.stop()
    try {
      await this.api.close(remaining())
    } catch (error) {
      outcome = 'timed-out'
      this.log.warn({ err: error }, 'API did not close cleanly')
    }
    await handoff.stop()
    this.dashboard.stop()
    offsetMonitor.stop()
    this.parts.catchUp.stop()
    membership.stop()
    await this.transport.close()
    await collector.stop()
    await this.parts.changeLogTrimmer.stop()
    await hlc.stop()
    await this.parts.learnBuffer.flush().catch((error: unknown) => this.log.warn({ err: error }, 'writing learned linearizable values at shutdown failed; the acceptor state keeps them'))
    await this.parts.acceptorStore.close()
    await this.store.close()
    if (Date.now() > deadline) outcome = 'timed-out'
    return outcome
  }

  private members(): MemberView[] {
    return this.parts.membership.members()
      .map(({ id, name, peer, api, state, incarnation }) => ({ id, name, peer, api, state, incarnation }))
      .sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id))
  }

  private status(): Record<string, unknown> {
    const stats = this.store.stats()
    this.metrics.storeKeys.set(stats.keys)
    const changeLog = this.store.changeLog.stats()
    this.metrics.watchLogEntries.set(changeLog.entries)
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
      members: countByState(this.parts.membership.members()),
      // Open peer links; `serial` is the peer certificate's on a TLS link (shows a rotation).
      links: this.transport.links().map(({ id, name, peer, direction, serial }) => ({ id, name, peer, direction, ...(serial === undefined ? {} : { serial }) })),
      hintsPending: this.parts.hints.pending().count,
      repairing: this.parts.antiEntropy.repairing,
      clock: clockStatus(this.parts.offsetMonitor),
      watch: { watchers: this.parts.watches.watchers, changeLogEntries: changeLog.entries, changeLogHorizonMs: changeLog.horizonMs },
      digest: storeDigest(this.parts),
      replication: { factor: this.config.replication.factor, writeQuorum: this.config.replication.writeQuorum, readQuorum: this.config.replication.readQuorum },
      // Removed and leaving members, this node's share of re-replication, its own decommission.
      lifecycle: this.parts.lifecycle.status(),
    }
  }
}

/**
 * One hash of the whole local store: equal on two nodes exactly when they hold the same records
 * (up to xxh64 collisions), leaving out those past their grace that wait for collection (they no
 * longer travel to a peer lacking the key, so in-sync replicas may differ by them until the next
 * GC sweep).
 */
function storeDigest(parts: WiredNode): string {
  return (parts.forest.digest() ^ parts.collector.waitingDigest()).toString(16).padStart(16, '0')
}

/**
 * `scheduler`, with each job registered `delayMs` after `every` is called. Its runs come at the
 * instants its expression names either way: only those in the first `delayMs` are skipped.
 */
function registeredAfterStart(scheduler: Scheduler, delayMs: number): Scheduler {
  return {
    every(expression, name, job) {
      let registered: ScheduledJob | undefined
      const timer = setTimeout(() => { registered = scheduler.every(expression, name, job) }, delayMs)
      return {
        stop: async () => {
          clearTimeout(timer)
          await registered?.stop()
        },
      }
    },
  }
}

/** Transport events as Prometheus counters; `onSyncBytes` also hears of anti-entropy frame bytes. */
function transportCounters(metrics: Metrics, onSyncBytes: (bytes: number) => void): TransportCounters {
  const bytesCounters = new Map<string, (bytes: number) => void>()
  return {
    linkOpened: (direction) => metrics.peerLinksOpened.inc({ direction }),
    linkClosed: (reason) => metrics.peerLinksClosed.inc({ reason }),
    refused: (by, code) => metrics.peerHandshakesRefused.inc({ by, code }),
    malformed: (reason) => metrics.peerMalformedFrames.inc({ reason }),
    tlsFailure: (reason) => metrics.tlsHandshakeFailures.inc({ side: 'peer', reason }),
    dropped: (reason) => metrics.peerMessagesDropped.inc({ reason }),
    frameBytes: (direction, type, bytes) => {
      // Called for every peer frame: resolve each label set to its child counter once, not per
      // frame (prom-client hashes the label object on every labelled inc).
      const key = `${direction}:${type}`
      let counter = bytesCounters.get(key)
      if (counter === undefined) {
        const peer = metrics.peerBytes.labels({ direction, type })
        const sync = isAntiEntropyType(type) ? metrics.antiEntropyBytes.labels({ direction }) : undefined
        counter = sync === undefined ? (count) => peer.inc(count) : (count) => { peer.inc(count); sync.inc(count); onSyncBytes(count) }
        bytesCounters.set(key, counter)
      }
      counter(bytes)
    },
  }
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
