import type { Clock, TimerHandle } from '../runtime/clock.js'
import type { PeerAddress, Transport } from '../transport/transport.js'
import { CLOCK_PROBE, CLOCK_PROBE_REPLY, type ClockProbeReplyBody } from './messages.js'
import type { NodeId } from './version.js'

/**
 * The clock offset monitor, after CockroachDB's RemoteClockMonitor: every CLOCK_PROBE_INTERVAL_MS
 * this node asks each alive peer for its wall clock and brackets the answer between its own send
 * and receive readings (Cristian's algorithm). The peer read its clock somewhere inside that
 * round trip, so
 *
 *   offset = remote − (sent + received) / 2,   uncertainty = (received − sent) / 2
 *
 * and the true offset lies within offset ± uncertainty (assuming the wall clocks do not jump
 * during one round trip). A node is skewed when a majority of the peers it has a fresh estimate
 * for say, beyond doubt, that its clock is further from theirs than the tolerated fraction of
 * `clock.maxSkewMs`. A skewed node coordinates no writes (lib/replication/guard.ts), so no
 * version from beyond the bound is created; docs/consistency.md states the guarantee.
 *
 * Split as the style asks: OffsetEstimates is the pure core (readings in, verdict out), and
 * ClockOffsetMonitor is the thin shell that owns the timer and the transport.
 */

/** How often every alive peer is probed. */
export const CLOCK_PROBE_INTERVAL_MS = 1_000
/** A probe not answered within this long is given up (the next round tries again). */
export const CLOCK_PROBE_TIMEOUT_MS = 1_000
/**
 * An estimate older than this has no vote: a peer that stopped answering (or a link that became
 * slow) must not keep this node skewed, or healthy, on old news.
 */
export const ESTIMATE_MAX_AGE_MS = 5 * CLOCK_PROBE_INTERVAL_MS
/**
 * A peer counts against this node once its offset is beyond this fraction of maxSkewMs for sure.
 * Below 1 (CockroachDB uses 0.8 of its max offset too) so a node drifting toward the bound stops
 * coordinating before the replicas start refusing its versions, not after.
 */
export const TOLERATED_SKEW_FRACTION = 0.8

/** One peer as the monitor needs it. */
export interface MonitoredPeer {
  readonly id: NodeId
  /** Member name, for /status and the metric label. */
  readonly name: string
  readonly peer: PeerAddress
}

/** The latest measurement against one peer. */
export interface OffsetEstimate {
  /** The peer's clock minus this node's, in ms (negative: this node is ahead). */
  readonly offsetMs: number
  /** Half the round trip of the probe, in ms: the true offset is within offsetMs ± this. */
  readonly uncertaintyMs: number
  /** This node's wall clock when the answer arrived, in ms. */
  readonly measuredAtMs: number
  /**
   * This node's wall clock minus its monotonic clock when the answer arrived: if the wall clock
   * is stepped later, the difference moves by the step, and the estimate moves with it.
   */
  readonly driftRefMs: number
}

export interface PeerOffset extends OffsetEstimate {
  readonly peer: MonitoredPeer
  /** True when this estimate says, beyond its uncertainty, that the offset is past the tolerated bound. */
  readonly beyond: boolean
}

/** What the monitor concludes about this node's clock. */
export interface ClockVerdict {
  /** A strict majority of the measured peers put this node beyond the tolerated offset. */
  readonly skewed: boolean
  /** Peers with a fresh estimate. */
  readonly peersMeasured: number
  /** Of those, how many put this node beyond the tolerated offset. */
  readonly peersBeyond: number
  /**
   * Median of how far this node's clock is ahead of the measured peers' clocks, in ms (negative:
   * behind); undefined while no peer is measured.
   */
  readonly aheadMs: number | undefined
  /** The configured bound, `clock.maxSkewMs`. */
  readonly maxSkewMs: number
}

/** The pure core: estimates per peer and the majority rule. Time comes in as arguments. */
export class OffsetEstimates {
  readonly #maxSkewMs: number
  readonly #maxAgeMs: number
  readonly #byPeer = new Map<NodeId, { peer: MonitoredPeer; estimate: OffsetEstimate }>()

  constructor(maxSkewMs: number, maxAgeMs = ESTIMATE_MAX_AGE_MS) {
    if (!Number.isSafeInteger(maxSkewMs) || maxSkewMs < 1) throw new RangeError(`maxSkewMs must be a positive integer, got ${maxSkewMs}`)
    if (!(maxAgeMs > 0)) throw new RangeError(`maxAgeMs must be positive, got ${maxAgeMs}`)
    this.#maxSkewMs = maxSkewMs
    this.#maxAgeMs = maxAgeMs
  }

  /** The offset a peer may show before it counts against this node, in ms. */
  get toleratedMs(): number {
    return this.#maxSkewMs * TOLERATED_SKEW_FRACTION
  }

  /**
   * Records one probe: sent at `sentMs` and answered at `receivedMs` (this node's wall clock),
   * the peer's clock read `remoteMs` in between. Replaces the peer's previous estimate.
   */
  record(peer: MonitoredPeer, sentMs: number, remoteMs: number, receivedMs: number, driftRefMs = 0): OffsetEstimate {
    if (!(receivedMs >= sentMs)) throw new RangeError(`a probe cannot be answered (${receivedMs}) before it was sent (${sentMs})`)
    const estimate = { offsetMs: remoteMs - (sentMs + receivedMs) / 2, uncertaintyMs: (receivedMs - sentMs) / 2, measuredAtMs: receivedMs, driftRefMs }
    this.#byPeer.set(peer.id, { peer, estimate })
    return estimate
  }

  /** Forgets every peer not in `alive`, and estimates older than the age bound; returns the forgotten peers. */
  retain(alive: ReadonlySet<NodeId>, nowMs: number): MonitoredPeer[] {
    const forgotten: MonitoredPeer[] = []
    for (const [id, { peer, estimate }] of this.#byPeer) {
      if (!alive.has(id) || !this.#fresh(estimate, nowMs)) {
        this.#byPeer.delete(id)
        forgotten.push(peer)
      }
    }
    return forgotten
  }

  /** Fresh estimates, one per peer, ordered by peer name. */
  offsets(nowMs: number, driftNowMs = 0): PeerOffset[] {
    const out: PeerOffset[] = []
    for (const { peer, estimate } of this.#byPeer.values()) {
      if (!this.#fresh(estimate, nowMs)) continue
      const offsetMs = this.#offsetNow(estimate, driftNowMs)
      out.push({ peer, ...estimate, offsetMs, beyond: this.#beyond(estimate, offsetMs) })
    }
    return out.sort((a, b) => a.peer.name.localeCompare(b.peer.name) || a.peer.id.localeCompare(b.peer.id))
  }

  /**
   * See offsets() for `driftNowMs`. Asked before every write a node coordinates, so it judges the
   * estimates in place, without offsets()'s objects and its sort by name (which only /status
   * needs): ~30 µs of the coordinator's critical path per write on the benchmark VM
   * (docs/benchmarks.md, "Session 6: where a lone CAS's time goes").
   */
  verdict(nowMs: number, driftNowMs = 0): ClockVerdict {
    const aheads: number[] = []
    let peersBeyond = 0
    for (const { estimate } of this.#byPeer.values()) {
      if (!this.#fresh(estimate, nowMs)) continue
      const offsetMs = this.#offsetNow(estimate, driftNowMs)
      if (this.#beyond(estimate, offsetMs)) peersBeyond++
      aheads.push(-offsetMs)
    }
    return {
      skewed: peersBeyond > 0 && peersBeyond * 2 > aheads.length,
      peersMeasured: aheads.length,
      peersBeyond,
      aheadMs: median(aheads),
      maxSkewMs: this.#maxSkewMs,
    }
  }

  /**
   * The estimate's offset now: a step of this node's wall clock since the estimate shifts the
   * offset by as much, so a clock that jumps is judged at once, not at the next probe.
   */
  #offsetNow(estimate: OffsetEstimate, driftNowMs: number): number {
    return estimate.offsetMs - (driftNowMs - estimate.driftRefMs)
  }

  /**
   * The smallest offset the measurement allows is still past the bound (CockroachDB's
   * isHealthy): an ambiguous reading from a slow round trip never counts against the node.
   */
  #beyond(estimate: OffsetEstimate, offsetMs: number): boolean {
    return Math.abs(offsetMs) - estimate.uncertaintyMs > this.toleratedMs
  }

  #fresh(estimate: OffsetEstimate, nowMs: number): boolean {
    // A reading "from the future" (the wall clock was set back since) is as useless as an old one.
    const ageMs = nowMs - estimate.measuredAtMs
    return ageMs >= 0 && ageMs <= this.#maxAgeMs
  }
}

function median(values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined
  const sorted = [...values].sort((a, b) => a - b)
  const middle = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

export interface ClockOffsetMonitorOptions {
  readonly transport: Pick<Transport, 'request' | 'handle'>
  /** Timers; systemClock in the daemon, a FakeClock in tests. */
  readonly clock: Clock
  /** The wall clock being judged, in ms (the one the HLC reads: Date.now, shifted by clock.offsetMs). */
  readonly wallMs: () => number
  readonly maxSkewMs: number
  /** The alive members other than this node. */
  readonly alivePeers: () => readonly MonitoredPeer[]
  readonly intervalMs?: number
  readonly probeTimeoutMs?: number
  /** A new estimate for a peer (for the per-peer gauge). */
  readonly onEstimate?: (peer: MonitoredPeer, estimate: OffsetEstimate) => void
  /** A peer's estimate was dropped (it is no longer alive, or stopped answering). */
  readonly onForget?: (peer: MonitoredPeer) => void
  /** The verdict flipped (for the log and the skewed gauge). */
  readonly onVerdictChange?: (verdict: ClockVerdict) => void
}

/**
 * The shell: answers other nodes' probes with this node's wall clock, and probes every alive
 * peer once per interval (one probe in flight per peer at most), feeding OffsetEstimates.
 */
export class ClockOffsetMonitor {
  readonly #options: ClockOffsetMonitorOptions
  readonly #estimates: OffsetEstimates
  readonly #intervalMs: number
  readonly #probeTimeoutMs: number
  /** Peers with a probe in flight, so a slow peer never has more than one. */
  readonly #inFlight = new Set<NodeId>()
  #timer: TimerHandle | undefined
  #running = false
  #skewed = false
  /** The median offset at the last verdict that had fresh estimates, and the drift reference then. */
  #lastMeasured: { readonly aheadMs: number; readonly driftRefMs: number } | undefined

  constructor(options: ClockOffsetMonitorOptions) {
    this.#options = options
    this.#estimates = new OffsetEstimates(options.maxSkewMs)
    this.#intervalMs = options.intervalMs ?? CLOCK_PROBE_INTERVAL_MS
    this.#probeTimeoutMs = options.probeTimeoutMs ?? CLOCK_PROBE_TIMEOUT_MS
    if (!(this.#intervalMs > 0) || !(this.#probeTimeoutMs > 0)) throw new RangeError('the probe interval and timeout must be positive')
    options.transport.handle(CLOCK_PROBE, () => ({ type: CLOCK_PROBE_REPLY, body: { wallMs: Math.floor(this.#options.wallMs()) } }))
  }

  /** Starts probing: one round at once, then one per interval. */
  start(): void {
    if (this.#running) return
    this.#running = true
    this.#round()
  }

  stop(): void {
    this.#running = false
    if (this.#timer !== undefined) this.#options.clock.clearTimeout(this.#timer)
    this.#timer = undefined
  }

  /** Probes one peer now (a member that just became alive), without waiting for the next round. */
  probe(peer: MonitoredPeer): void {
    if (!this.#running || this.#inFlight.has(peer.id)) return
    this.#inFlight.add(peer.id)
    const sentMs = this.#options.wallMs()
    this.#options.transport.request(peer.peer, { type: CLOCK_PROBE, body: { wallMs: Math.floor(sentMs) } }, this.#probeTimeoutMs)
      .then((reply) => {
        if (!this.#running) return
        const receivedMs = this.#options.wallMs()
        // The wall clock went back during the round trip: the reading brackets nothing.
        if (receivedMs < sentMs) return
        const estimate = this.#estimates.record(peer, sentMs, (reply.body as ClockProbeReplyBody).wallMs, receivedMs, this.#driftMs())
        this.#options.onEstimate?.(peer, estimate)
        this.#judge()
      }, () => undefined) // unanswered: the estimate ages out unless a later probe is answered
      .finally(() => this.#inFlight.delete(peer.id))
  }

  /**
   * The current verdict (estimates past the age bound no longer count; those that do are moved by
   * any step of this node's wall clock since they were taken). With no fresh estimate at all
   * (cut off, every peer gone or silent) the last measured offset stands, moved likewise: not
   * hearing from anyone proves nothing about a clock found skewed a moment ago, and a clock that
   * jumps while nobody can be asked is caught against its own monotonic clock.
   */
  verdict(): ClockVerdict {
    const driftMs = this.#driftMs()
    const verdict = this.#estimates.verdict(this.#options.wallMs(), driftMs)
    if (verdict.peersMeasured > 0) return verdict
    if (this.#lastMeasured === undefined) return this.#skewed ? { ...verdict, skewed: true } : verdict
    const aheadMs = this.#lastMeasured.aheadMs + (driftMs - this.#lastMeasured.driftRefMs)
    return { ...verdict, aheadMs, skewed: Math.abs(aheadMs) > this.#estimates.toleratedMs }
  }

  /** Fresh per-peer estimates, for /status. */
  offsets(): PeerOffset[] {
    return this.#estimates.offsets(this.#options.wallMs(), this.#driftMs())
  }

  /** The judged wall clock minus the monotonic clock: it moves exactly when the wall clock is stepped. */
  #driftMs(): number {
    return this.#options.wallMs() - this.#options.clock.monotonicMs()
  }

  #round(): void {
    if (!this.#running) return
    const peers = this.#options.alivePeers()
    for (const peer of this.#estimates.retain(new Set(peers.map((p) => p.id)), this.#options.wallMs())) this.#options.onForget?.(peer)
    this.#judge()
    for (const peer of peers) this.probe(peer)
    this.#timer = this.#options.clock.setTimeout(() => this.#round(), this.#intervalMs)
  }

  #judge(): void {
    const verdict = this.verdict()
    if (verdict.peersMeasured > 0 && verdict.aheadMs !== undefined) this.#lastMeasured = { aheadMs: verdict.aheadMs, driftRefMs: this.#driftMs() }
    if (verdict.skewed === this.#skewed) return
    this.#skewed = verdict.skewed
    this.#options.onVerdictChange?.(verdict)
  }
}
