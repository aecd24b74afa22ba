import { HybridLogicalClock } from './clock/hlc.js'
import type { NodeId } from './clock/version.js'
import type { HearsayConfig } from './config/types.js'
import type { Logger } from './log/logger.js'
import { createMetrics, type Metrics } from './metrics/metrics.js'
import { createApiServer, type ApiServer } from './api/server.js'
import { DEFAULT_API_LIMITS, MAX_TTL_SECONDS } from './api/limits.js'
import type { HealthView, MemberView } from './api/views.js'
import { Coordinator } from './replication/coordinator.js'
import { KvStore } from './store/kv-store.js'
import { TombstoneCollector } from './store/gc.js'
import { StoreHighWaterMark } from './store/high-water.js'
import { networkInterfaces } from 'node:os'
import { resolveAdvertiseAddress } from './config/advertise.js'

export interface NodeInfo {
  /** Package version, shown in /status. */
  readonly version: string
}

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
    /** Advertised `host:port` of the client API and the peer port. */
    readonly advertised: { readonly api: string; readonly peer: string },
  ) {}

  static async start(config: HearsayConfig, log: Logger, info: NodeInfo): Promise<HearsayNode> {
    // A test hook only (clock.offsetMs): shifts this node's notion of wall time for skew demos.
    const nowMs = config.clock.offsetMs === 0 ? Date.now : () => Date.now() + config.clock.offsetMs
    const store = await KvStore.open({ dataDir: config.node.dataDir, mapSizeBytes: config.store.mapSizeBytes })
    let api: ApiServer | undefined
    try {
      const { id, incarnation } = await store.identity.load()
      const nodeLog = log.child({ node: id })
      const clock = new HybridLogicalClock({
        nowMs,
        maxSkewMs: config.clock.maxSkewMs,
        highWater: new StoreHighWaterMark(store),
        onSaveError: (error) => nodeLog.error({ err: error }, 'could not persist the clock high-water mark; retrying'),
      })
      await clock.start()
      const metrics = createMetrics()
      const collector = new TombstoneCollector(store, {
        tombstoneGraceMs: config.store.tombstoneGraceMs,
        intervalMs: config.store.gcIntervalMs,
        batchSize: config.store.gcBatchSize,
        nowMs,
        onCollected: (kind, count) => metrics.storeGcCollected.inc({ kind }, count),
        onError: (error) => nodeLog.error({ err: error }, 'garbage collection step failed; will retry'),
      })
      const coordinator = new Coordinator({
        localId: id,
        local: store,
        nextHlc: () => clock.now(),
        nowMs,
        replicationFactor: config.replication.factor,
        replicaCount: () => 1,
        defaultWrite: config.replication.writeQuorum,
        defaultRead: config.replication.readQuorum,
        maxScanLimit: config.api.maxScanLimit,
        maxTtlSeconds: MAX_TTL_SECONDS,
      })
      let node: HearsayNode | undefined
      api = createApiServer({
        kv: coordinator,
        status: () => node!.status(),
        health: () => ({ status: node?.state ?? 'starting', id, name: config.node.name }),
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
        ...(config.api.token !== '' ? { token: config.api.token } : {}),
      })
      const apiAddress = await api.listen(config.api.host, config.api.port)
      const interfaces = networkInterfaces()
      const advertised = {
        api: resolveAdvertiseAddress({ key: 'api.advertise', bindHost: config.api.host, boundPort: apiAddress.port, advertise: config.api.advertise, interfaces }),
        peer: resolveAdvertiseAddress({ key: 'peer.advertise', bindHost: config.peer.host, boundPort: config.peer.port, advertise: config.peer.advertise, interfaces }),
      }
      node = new HearsayNode(config, nodeLog, info, id, incarnation, store, collector, clock, metrics, api, advertised)
      collector.start()
      node.state = 'ok'
      nodeLog.info({
        incarnation, dataDir: config.node.dataDir,
        api: `${apiAddress.host}:${apiAddress.port}`,
        advertise: advertised,
        version: info.version,
      }, 'hearsayd serving')
      return node
    } catch (error) {
      await api?.close(0).catch(() => undefined)
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
    try {
      await this.api.close(remaining())
    } catch (error) {
      outcome = 'timed-out'
      this.log.warn({ err: error }, 'API did not close cleanly')
    }
    await this.collector.stop()
    this.clock.stop()
    await this.store.close()
    if (Date.now() > deadline) outcome = 'timed-out'
    return outcome
  }

  private members(): MemberView[] {
    return [{
      id: this.id, name: this.config.node.name,
      peer: this.advertised.peer, api: this.advertised.api,
      state: 'alive', incarnation: this.incarnation,
    }]
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
      members: 1,
      replication: { factor: this.config.replication.factor, writeQuorum: this.config.replication.writeQuorum, readQuorum: this.config.replication.readQuorum },
    }
  }
}
