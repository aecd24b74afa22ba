import { formatVersion, type Version } from '../clock/version.js'
import { GoneError, UnavailableError } from '../errors.js'
import type { ChangeLog, ChangePosition } from '../store/change-log.js'
import type { Store } from '../store/store.js'
import type { LoggedEvent } from './event.js'
import { eventOf } from './event.js'
import { WatchHub } from './hub.js'
import { liveFromMs, oldestResumable, replayFromMs, type ResumeBounds } from './resume.js'
import { Watcher, type CutReason, type ReplaySource, type WatchSink } from './watcher.js'

/**
 * Watches on this node (docs/consistency.md "Watches"): opens a watcher for a prefix, replays
 * the change log from a `since` (410 when the log no longer reaches back that far), feeds it the
 * live changes of the partitions this node holds through the hub, and those of the partitions it
 * does not hold through a RemoteFeeds (peers' change logs).
 */

export interface WatchLimits extends ResumeBounds {
  /** Watchers this node serves at once (watch.maxWatchers); more are refused with 503. */
  readonly maxWatchers: number
  /** Bytes one watcher may have waiting for its consumer (watch.maxBufferedBytes); more cut it. */
  readonly maxBufferedBytes: number
}

/** Changes of partitions this node does not replicate, for one watcher. */
export interface RemoteFeeds {
  /** Feeds `watcher` from peers' change logs from arrival time `fromMs`; returns the detach. */
  attach(watcher: Watcher, fromMs: number): () => void
}

export interface WatchServiceOptions {
  readonly store: Pick<Store, 'changeLog' | 'onChange'>
  readonly limits: WatchLimits
  readonly nowMs: () => number
  readonly defer: (task: () => void) => void
  readonly remote?: RemoteFeeds
  readonly onWatchers?: (count: number) => void
  readonly onCut?: (reason: CutReason) => void
  readonly onDelivered?: (count: number) => void
}

export interface WatchRequest {
  /** Keys starting with this ('' = every key). */
  readonly prefix: string
  /** Resume after this version; absent = changes from now on. */
  readonly since?: Version
}

/** Log entries one replay page reads at most (and entries skipped for another prefix). */
const REPLAY_PAGE_EVENTS = 256
const REPLAY_PAGE_SCANNED = 4096

export class WatchService {
  readonly #options: WatchServiceOptions
  readonly #hub = new WatchHub()
  readonly #detachRemote = new Map<Watcher, () => void>()
  readonly #unsubscribe: () => void
  #stopped = false

  constructor(options: WatchServiceOptions) {
    this.#options = options
    this.#unsubscribe = options.store.onChange((change) => this.#hub.publish(change))
  }

  get watchers(): number {
    return this.#hub.size
  }

  /**
   * Opens a watch delivering to `sink` (from the next event-loop turn on). Throws 503 at
   * watch.maxWatchers or while stopping, 410 when `since` is older than the change log reaches.
   */
  open(request: WatchRequest, sink: WatchSink): Watcher {
    const { limits } = this.#options
    if (this.#stopped) throw new UnavailableError('this node is shutting down; watch on another node')
    if (this.#hub.size >= limits.maxWatchers) {
      throw new UnavailableError(`this node serves ${limits.maxWatchers} watchers, its limit (watch.maxWatchers); watch on another node or retry later`, { maxWatchers: limits.maxWatchers })
    }
    const log = this.#options.store.changeLog
    const fromMs = request.since === undefined ? undefined : replayFromMs(request.since, limits)
    if (fromMs !== undefined && fromMs < log.horizonMs) throw this.#gone(log.horizonMs)
    const watcher = new Watcher(request.prefix, {
      maxBufferedBytes: limits.maxBufferedBytes,
      defer: this.#options.defer,
      onClose: (closed) => this.#closed(closed),
      ...(this.#options.onCut === undefined ? {} : { onCut: this.#options.onCut }),
      ...(this.#options.onDelivered === undefined ? {} : { onDelivered: this.#options.onDelivered }),
    })
    // Subscribed before the replay reads anything: nothing committed meanwhile falls between.
    this.#hub.add(watcher)
    this.#options.onWatchers?.(this.#hub.size)
    if (fromMs !== undefined) watcher.replayFrom(replaySource(log, request.prefix, fromMs))
    const remote = this.#options.remote
    if (remote !== undefined) this.#detachRemote.set(watcher, remote.attach(watcher, fromMs ?? liveFromMs(this.#options.nowMs(), limits)))
    watcher.attach(sink)
    return watcher
  }

  /** The 410 for a `since` older than a log with this horizon reaches. */
  #gone(horizonMs: number): GoneError {
    const oldest = formatVersion(oldestResumable(horizonMs, this.#options.limits))
    return new GoneError(`since is older than this node's change log reaches (watch.retention); list the keys again and watch from ${oldest} or later`, { oldest })
  }

  /** Cuts every watcher ('shutdown') and takes no more. */
  stop(): void {
    this.#stopped = true
    this.#unsubscribe()
    for (const watcher of [...this.#hub.watchers()]) watcher.cut('shutdown', {})
  }

  #closed(watcher: Watcher): void {
    this.#hub.remove(watcher)
    this.#detachRemote.get(watcher)?.()
    this.#detachRemote.delete(watcher)
    this.#options.onWatchers?.(this.#hub.size)
  }
}

/** The change log from arrival time `fromMs`, page by page, for one prefix. */
function replaySource(log: ChangeLog, prefix: string, fromMs: number): ReplaySource {
  let after: ChangePosition | undefined
  return {
    next() {
      if (after !== undefined && log.trimmedAfter(after)) return { entries: [], scannedToSeq: undefined, done: true, lost: true }
      const { entries, scannedTo, exhausted } = log.read(after === undefined ? { fromMs } : { after }, { prefix, limit: REPLAY_PAGE_EVENTS, maxScanned: REPLAY_PAGE_SCANNED })
      if (scannedTo !== undefined) after = scannedTo
      const logged: LoggedEvent[] = entries.map(({ key, record, position }) => ({ event: eventOf(key, record), position }))
      return { entries: logged, scannedToSeq: scannedTo?.seq, done: exhausted, lost: false }
    },
  }
}
