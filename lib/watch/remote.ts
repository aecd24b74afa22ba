import type { NodeId } from '../clock/version.js'
import type { Logger } from '../log/logger.js'
import { fromWire, type WireEntry } from '../replication/messages.js'
import type { Clock, TimerHandle } from '../runtime/clock.js'
import type { ChangePosition } from '../store/change-log.js'
import type { PeerMessage } from '../transport/transport.js'
import { eventOf, type WatchEvent } from './event.js'
import {
  MAX_POLL_REPLY_BYTES, MAX_SUBSCRIPTIONS_PER_POLL, WATCH_POLL, positionFromWire, positionToWire,
  type PollResult, type WatchPollReplyBody,
} from './messages.js'
import type { ResumeBounds } from './resume.js'
import type { RemoteFeeds } from './service.js'
import type { Watcher } from './watcher.js'

/**
 * Changes of the partitions this node does not replicate, for its watchers (docs/consistency.md
 * "Watches", "Nodes that hold part of the data"). For each watcher and each such partition, the
 * node follows one live replica's change log: partitions that follow the same replica form one
 * subscription, and the subscriptions of every watcher that follow one peer travel together in
 * that peer's long polls (at most MAX_POLLS_PER_PEER in flight).
 *
 * Failover: a subscription whose poll fails, or whose replica is no longer alive or no longer a
 * replica, is dropped and its partitions follow the next live replica from the arrival time the
 * old one had reached less resumeMarginMs and 2 · clock.maxSkewMs (or, before any reply, the
 * watch's own start), the same safe margin a client's resume uses. When a watcher goes, its
 * subscriptions go with it; a peer with none left is no longer polled.
 */

export interface RemoteFeedOptions {
  readonly localId: NodeId
  readonly partitionCount: number
  /** The replicas of a partition, in preference order. */
  readonly replicas: (partition: number) => readonly NodeId[]
  /** True while this node replicates every partition (then no watcher needs a feed). */
  readonly holdsEverything: () => boolean
  /** Changes whenever a member's state or the placement may have changed: a check that finds it unchanged does nothing. */
  readonly membershipEpoch: () => number
  /** The peer address of a member that is alive now; undefined otherwise. */
  readonly alivePeer: (member: NodeId) => string | undefined
  readonly request: (peer: string, message: PeerMessage, timeoutMs: number) => Promise<PeerMessage>
  readonly clock: Clock
  readonly bounds: ResumeBounds
  /** How long a poll may wait at the replica for a change. */
  readonly pollWaitMs: number
  /** Allowance for the network on top of pollWaitMs. */
  readonly requestTimeoutMs: number
  readonly log: Logger
}

/** Long polls in flight to one peer at most (one waiting, one bringing new subscriptions in). */
const MAX_POLLS_PER_PEER = 2
/** How often each watcher's subscriptions are checked against placement and liveness. */
const PLACEMENT_CHECK_INTERVAL_MS = 1000
/** A peer whose poll failed is not chosen again by that watcher for this long. */
const FAILED_PEER_AVOID_MS = 5000
/** A peer with subscriptions that are all paused (their watchers' buffers are full) is looked at again after this. */
const PAUSED_RECHECK_MS = 100

interface Subscription {
  readonly id: number
  readonly feed: WatcherFeed
  readonly peerId: NodeId
  readonly partitions: readonly number[]
  /** Where to read on in the peer's log, once a reply said. */
  position: ChangePosition | undefined
  /** For a new subscription: the arrival time (peer's clock) to start from. */
  readonly fromMs: number
  inPoll: boolean
  closed: boolean
}

export class RemoteWatchFeeds implements RemoteFeeds {
  readonly #options: RemoteFeedOptions
  readonly #pollers = new Map<NodeId, PeerPoller>()
  #nextSubscriptionId = 1

  constructor(options: RemoteFeedOptions) {
    this.#options = options
  }

  /** Peers polled now (for tests and status). */
  get polledPeers(): number {
    return this.#pollers.size
  }

  attach(watcher: Watcher, fromMs: number): () => void {
    const feed = new WatcherFeed(this, watcher, fromMs)
    feed.check()
    return () => feed.close()
  }

  /** @internal */
  get options(): RemoteFeedOptions {
    return this.#options
  }

  /** @internal */
  subscribe(feed: WatcherFeed, peerId: NodeId, partitions: readonly number[], fromMs: number): Subscription {
    const subscription: Subscription = { id: this.#nextSubscriptionId++, feed, peerId, partitions, position: undefined, fromMs, inPoll: false, closed: false }
    if (this.#nextSubscriptionId > 0xffff_ffff) this.#nextSubscriptionId = 1
    let poller = this.#pollers.get(peerId)
    if (poller === undefined) {
      poller = new PeerPoller(this, peerId)
      this.#pollers.set(peerId, poller)
    }
    poller.add(subscription)
    return subscription
  }

  /** @internal */
  unsubscribe(subscription: Subscription): void {
    subscription.closed = true
    const poller = this.#pollers.get(subscription.peerId)
    if (poller === undefined) return
    poller.remove(subscription)
    if (poller.empty) {
      poller.stop()
      this.#pollers.delete(subscription.peerId)
    }
  }
}

/** One watcher's subscriptions: which peer each remote partition follows, and failover. */
class WatcherFeed {
  readonly #feeds: RemoteWatchFeeds
  readonly watcher: Watcher
  /** Where a partition with no subscription yet starts (peer arrival time, ms). */
  readonly #startMs = new Map<number, number>()
  readonly #defaultStartMs: number
  readonly #byPartition = new Map<number, Subscription>()
  readonly #avoid = new Map<NodeId, number>()
  #timer: TimerHandle | undefined
  #closed = false
  /** The membership epoch of the last full check; undefined forces the next one. */
  #checkedEpoch: number | undefined

  constructor(feeds: RemoteWatchFeeds, watcher: Watcher, fromMs: number) {
    this.#feeds = feeds
    this.watcher = watcher
    this.#defaultStartMs = fromMs
  }

  /**
   * Matches subscriptions to placement and liveness now, then every PLACEMENT_CHECK_INTERVAL_MS.
   * Right after a failed poll (`afterFailure`) only replicas not avoided are taken: falling back to
   * one that just failed is left to the periodic check, or a peer whose requests fail at once
   * (listed alive, link down) would be polled again and again without the event loop ever turning
   * (found by the simulator's watch scenario, seed 3).
   */
  check(afterFailure = false): void {
    if (this.#closed || this.watcher.closed) return
    const { options } = this.#feeds
    const epoch = options.membershipEpoch()
    // Nothing moved since the last check and no subscription failed: nothing to do.
    if (epoch === this.#checkedEpoch && this.#avoid.size === 0) return this.#reschedule()
    this.#checkedEpoch = epoch
    const nowMs = options.clock.nowMs()
    for (const [peer, untilMs] of this.#avoid) if (untilMs <= nowMs) this.#avoid.delete(peer)
    const wanted = new Map<NodeId, number[]>()
    // The common case (full replication) costs one call a second per watcher.
    const everything = this.#byPartition.size === 0 && options.holdsEverything()
    for (let partition = 0; !everything && partition < options.partitionCount; partition++) {
      const replicas = options.replicas(partition)
      const current = this.#byPartition.get(partition)
      if (replicas.includes(options.localId)) {
        // Held here now: the local change log and hub carry it.
        if (current !== undefined) this.#drop(current, undefined)
        continue
      }
      if (current !== undefined && !current.closed && replicas.includes(current.peerId) && options.alivePeer(current.peerId) !== undefined) continue
      if (current !== undefined) this.#drop(current, undefined)
      const peer = replicas.find((id) => id !== options.localId && !this.#avoid.has(id) && options.alivePeer(id) !== undefined)
        ?? (afterFailure ? undefined : replicas.find((id) => id !== options.localId && options.alivePeer(id) !== undefined))
      if (peer === undefined) continue
      const list = wanted.get(peer) ?? []
      list.push(partition)
      wanted.set(peer, list)
    }
    for (const [peer, partitions] of wanted) {
      // Partitions that start together from the same place share a subscription.
      const byStart = new Map<number, number[]>()
      for (const partition of partitions) {
        const startMs = this.#startMs.get(partition) ?? this.#defaultStartMs
        const list = byStart.get(startMs) ?? []
        list.push(partition)
        byStart.set(startMs, list)
      }
      for (const [startMs, group] of byStart) {
        const subscription = this.#feeds.subscribe(this, peer, group, startMs)
        for (const partition of group) this.#byPartition.set(partition, subscription)
      }
    }
    this.#reschedule()
  }

  #reschedule(): void {
    if (this.#timer !== undefined) return
    this.#timer = this.#feeds.options.clock.setTimeout(() => {
      this.#timer = undefined
      this.check()
    }, PLACEMENT_CHECK_INTERVAL_MS)
  }

  /** A poll carrying `subscription` failed: follow its partitions elsewhere. */
  failed(subscription: Subscription, error: unknown): void {
    if (this.#closed || subscription.closed) return
    const { options } = this.#feeds
    options.log.debug({ err: error instanceof Error ? error.message : String(error), peer: subscription.peerId }, 'watch feed poll failed; following another replica')
    this.#avoid.set(subscription.peerId, options.clock.nowMs() + FAILED_PEER_AVOID_MS)
    this.#drop(subscription, undefined)
    this.#checkedEpoch = undefined
    this.check(true)
  }

  /** Drops a subscription; its partitions restart from where it had read, less the safe margin. */
  #drop(subscription: Subscription, _reason: undefined): void {
    const { bounds } = this.#feeds.options
    const resumeMs = subscription.position === undefined
      ? subscription.fromMs
      : Math.max(0, subscription.position.arrivedMs - bounds.resumeMarginMs - 2 * bounds.maxSkewMs)
    for (const partition of subscription.partitions) {
      if (this.#byPartition.get(partition) === subscription) {
        this.#byPartition.delete(partition)
        this.#startMs.set(partition, Math.min(resumeMs, this.#startMs.get(partition) ?? resumeMs))
      }
    }
    this.#feeds.unsubscribe(subscription)
  }

  /** A reply for `subscription`. */
  delivered(subscription: Subscription, result: PollResult): void {
    if (this.#closed || subscription.closed) return
    if (result.lostHorizonMs !== undefined) {
      this.watcher.cut('compacted', { peer: subscription.peerId })
      return
    }
    if (result.next !== undefined) {
      subscription.position = positionFromWire(result.next)
      // From here on, a failover resumes from this subscription's position (less the margin).
      for (const partition of subscription.partitions) this.#startMs.delete(partition)
    }
    const events: WatchEvent[] = []
    for (const entry of result.events) {
      if (entry.key.startsWith(this.watcher.prefix)) events.push(toEvent(entry))
    }
    if (events.length > 0) this.watcher.offerRemote(events)
  }

  close(): void {
    if (this.#closed) return
    this.#closed = true
    if (this.#timer !== undefined) this.#feeds.options.clock.clearTimeout(this.#timer)
    for (const subscription of new Set(this.#byPartition.values())) this.#feeds.unsubscribe(subscription)
    this.#byPartition.clear()
  }
}

function toEvent(entry: WireEntry): WatchEvent {
  return eventOf(entry.key, fromWire(entry))
}

/** The long polls to one peer, carrying the subscriptions of every watcher that follows it. */
class PeerPoller {
  readonly #feeds: RemoteWatchFeeds
  readonly #peerId: NodeId
  readonly #subscriptions = new Map<number, Subscription>()
  #inFlight = 0
  #kickQueued = false
  #recheck: TimerHandle | undefined
  #stopped = false

  constructor(feeds: RemoteWatchFeeds, peerId: NodeId) {
    this.#feeds = feeds
    this.#peerId = peerId
  }

  get empty(): boolean {
    return this.#subscriptions.size === 0
  }

  add(subscription: Subscription): void {
    this.#subscriptions.set(subscription.id, subscription)
    // After the caller has added all it is adding now, so they share a poll.
    if (this.#kickQueued) return
    this.#kickQueued = true
    queueMicrotask(() => {
      this.#kickQueued = false
      this.#kick()
    })
  }

  remove(subscription: Subscription): void {
    this.#subscriptions.delete(subscription.id)
  }

  stop(): void {
    this.#stopped = true
    if (this.#recheck !== undefined) this.#feeds.options.clock.clearTimeout(this.#recheck)
    this.#recheck = undefined
  }

  /** Sends a poll if there are subscriptions ready for one and room in flight. */
  #kick(): void {
    if (this.#stopped || this.#inFlight >= MAX_POLLS_PER_PEER) return
    const { options } = this.#feeds
    const ready: Subscription[] = []
    let paused = false
    for (const subscription of this.#subscriptions.values()) {
      if (subscription.inPoll || subscription.closed) continue
      // A watcher whose buffer is half full fetches nothing more until its consumer catches up.
      if (!subscription.feed.watcher.hasRoom()) {
        paused = true
        continue
      }
      ready.push(subscription)
      if (ready.length === MAX_SUBSCRIPTIONS_PER_POLL) break
    }
    if (ready.length === 0) {
      if (paused && this.#recheck === undefined) {
        this.#recheck = options.clock.setTimeout(() => {
          this.#recheck = undefined
          this.#kick()
        }, PAUSED_RECHECK_MS)
      }
      return
    }
    const peer = options.alivePeer(this.#peerId)
    if (peer === undefined) {
      for (const subscription of ready) subscription.feed.failed(subscription, new Error(`member ${this.#peerId} is not alive`))
      return
    }
    for (const subscription of ready) subscription.inPoll = true
    // A new subscription is answered at once (the replica tells it its position); the rest wait there.
    const waitMs = ready.some((subscription) => subscription.position === undefined) ? 0 : options.pollWaitMs
    const body = {
      waitMs,
      maxBytes: MAX_POLL_REPLY_BYTES,
      subscriptions: ready.map((subscription) => ({
        id: subscription.id,
        prefix: subscription.feed.watcher.prefix,
        partitions: subscription.partitions,
        ...(subscription.position === undefined ? { fromMs: subscription.fromMs } : { after: positionToWire(subscription.position) }),
      })),
    }
    this.#inFlight++
    options.request(peer, { type: WATCH_POLL, body }, waitMs + options.requestTimeoutMs).then(
      (reply) => {
        this.#inFlight--
        const byId = new Map((reply.body as WatchPollReplyBody).results.map((result) => [result.id, result]))
        for (const subscription of ready) {
          subscription.inPoll = false
          const result = byId.get(subscription.id)
          if (result === undefined) subscription.feed.failed(subscription, new Error('the replica left a subscription out of its reply'))
          else subscription.feed.delivered(subscription, result)
        }
        this.#kick()
      },
      (error: unknown) => {
        this.#inFlight--
        for (const subscription of ready) {
          subscription.inPoll = false
          subscription.feed.failed(subscription, error)
        }
        this.#kick()
      },
    )
    // Subscriptions left over (a new one while a poll waits) go in a second poll.
    this.#kick()
  }
}
