import type { NodeId } from '../clock/version.js'
import type { Clock } from '../runtime/clock.js'
import type { StoredRecord } from '../store/record.js'
import type { WiredNode } from '../wiring.js'
import { ClusterView, type ClusterState } from './cluster-view.js'
import { MAX_SUMMARY_MEMBERS, MAX_SUMMARY_SAMPLES, NODE_SUMMARY, NODE_SUMMARY_REPLY, type NodeSummary } from './messages.js'
import { replicaVersions, type ReplicaVersions } from './replica-versions.js'
import { RequestSampler } from './request-sampler.js'
import { RoundLog } from './round-log.js'

/**
 * The dashboard's server side (the page at `/`, see lib/api/dashboard-routes.ts): request
 * samples for the sparklines, the round log, probe round trips per member, the node summary
 * peers ask for, and the cluster view the page streams. Built before the wiring (the round log
 * hooks into anti-entropy) and attached to the wired node after.
 */

/** One sparkline point per 5 s, 120 of them: the last 10 minutes. */
const SAMPLE_INTERVAL_MS = 5000
const MAX_SAMPLES = 120
/** Anti-entropy rounds the page lists. */
const MAX_ROUNDS = 20
/** The page's data is refreshed this often while someone watches. */
const REFRESH_INTERVAL_MS = 2000
/** Pages watching one node at once. */
const MAX_SUBSCRIBERS = 16
/** Hints read per owner to find which partitions have hints waiting (the oldest ones). */
const HINTS_SCANNED_PER_OWNER = 1024

export interface DashboardAttachment {
  readonly parts: WiredNode
  readonly version: string
  readonly name: string
  readonly status: () => NodeSummary['status']
  readonly uptimeSeconds: () => number
  readonly storeStats: () => { readonly keys: number; readonly sizeBytes: number }
  readonly digest: () => string
  readonly localRecord: (key: string) => StoredRecord | undefined
  readonly partitionCount: number
  readonly replicationFactor: number
  /** Deadline of a peer's answer (summary or replica read). */
  readonly requestTimeoutMs: number
}

export class Dashboard {
  readonly sampler: RequestSampler
  readonly rounds: RoundLog
  readonly #clock: Clock
  readonly #rttMs = new Map<NodeId, number>()
  #attached: { view: ClusterView; deps: DashboardAttachment } | undefined

  constructor(clock: Clock, syncBytesTotal: () => number) {
    this.#clock = clock
    this.sampler = new RequestSampler({ clock, intervalMs: SAMPLE_INTERVAL_MS, maxSamples: Math.min(MAX_SAMPLES, MAX_SUMMARY_SAMPLES) })
    this.rounds = new RoundLog({ maxRounds: MAX_ROUNDS, nowMs: () => clock.nowMs(), syncBytesTotal })
  }

  /** Hooks into the wired node: answers peers' summary requests, watches probe round trips. */
  attach(deps: DashboardAttachment): void {
    const { parts } = deps
    parts.transport.handle(NODE_SUMMARY, () => ({ type: NODE_SUMMARY_REPLY, body: this.summary() }))
    parts.membership.on('probeAcked', (target, rttMs) => { this.#rttMs.set(target, rttMs) })
    parts.membership.on('reaped', (member) => { this.#rttMs.delete(member.id) })
    const view = new ClusterView({
      localId: parts.id,
      clock: this.#clock,
      localSummary: () => this.summary(),
      members: () => parts.membership.members(),
      request: (peer, message, timeoutMs) => parts.transport.request(peer, message, timeoutMs),
      partitionCount: deps.partitionCount,
      replicationFactor: deps.replicationFactor,
      replicas: (partition) => parts.placement.replicas(partition),
      rounds: () => this.rounds.rounds(),
      refreshIntervalMs: REFRESH_INTERVAL_MS,
      requestTimeoutMs: deps.requestTimeoutMs,
      maxSubscribers: MAX_SUBSCRIBERS,
      lifecycle: () => parts.lifecycle.clusterStatus(),
    })
    this.#attached = { view, deps }
    this.sampler.start()
  }

  stop(): void {
    this.sampler.stop()
    this.#attached?.view.stop()
  }

  /** Streams the cluster state to `listener`; undefined when too many pages watch already. */
  subscribe(listener: (state: ClusterState) => void): (() => void) | undefined {
    return this.#need().view.subscribe(listener)
  }

  replicaVersions(key: string): Promise<ReplicaVersions> {
    const { parts, localRecord, requestTimeoutMs } = this.#need().deps
    return replicaVersions(key, {
      localId: parts.id,
      replicasFor: (k) => parts.placement.replicasFor(k),
      member: (id) => parts.swim.member(id),
      localRecord,
      request: (peer, message, timeoutMs) => parts.transport.request(peer, message, timeoutMs),
      timeoutMs: requestTimeoutMs,
      nowMs: () => this.#clock.nowMs(),
    })
  }

  /** How this node sees itself and the cluster: what it answers a peer's nodeSummary. */
  summary(): NodeSummary {
    const { parts, ...deps } = this.#need().deps
    const stats = deps.storeStats()
    const members = parts.membership.members()
      .sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id))
      .slice(0, MAX_SUMMARY_MEMBERS)
      .map(m => ({ id: m.id, name: m.name, state: m.state, incarnation: m.incarnation, rttMs: m.id === parts.id ? null : this.#rttMs.get(m.id) ?? null }))
    return {
      id: parts.id,
      name: deps.name,
      version: deps.version,
      status: deps.status(),
      uptimeSeconds: deps.uptimeSeconds(),
      keys: stats.keys,
      storeBytes: stats.sizeBytes,
      hintsPending: parts.hints.pending().count,
      digest: deps.digest(),
      members,
      samples: [...this.sampler.samples()],
      hintedPartitions: this.#hintedPartitions(),
      syncingPartitions: parts.antiEntropy.syncingPartitions(),
    }
  }

  #hintedPartitions(): number[] {
    const { parts } = this.#need().deps
    const partitions = new Set<number>()
    for (const owner of parts.hints.owners()) {
      for (const entry of parts.hints.take(owner, HINTS_SCANNED_PER_OWNER).entries) partitions.add(parts.placement.partitionOf(entry.key))
    }
    return [...partitions].sort((a, b) => a - b)
  }

  #need(): { view: ClusterView; deps: DashboardAttachment } {
    if (this.#attached === undefined) throw new Error('the dashboard is not attached to a node yet')
    return this.#attached
  }
}
