import { eventBytes, type LoggedEvent, type WatchEvent } from './event.js'

/**
 * One watch: the events for its prefix on their way to one consumer (an SSE response, a stream
 * protocol watch). Events wait in a queue bounded by maxBufferedBytes; the sink takes them while
 * it is ready (its socket drains, the client grants credit). A consumer that lets the queue
 * overflow is cut with reason `slow_consumer`: the node's memory never grows for a slow reader.
 *
 * Resume without a gap (docs/consistency.md "Watches"): the watcher is subscribed to the hub
 * first, then replays the change log. While it replays, live local events are held; once the
 * replay reaches the log's end they follow, minus those the replay already delivered (a live
 * event at or before the last replayed log position). So a change committed while the watch
 * starts is delivered whether the replay or the live feed sees it first.
 */

export type CutReason = 'slow_consumer' | 'compacted' | 'shutdown' | 'remote_failed'

export interface WatchSink {
  /**
   * Events the sink takes now without buffering beyond its own small bound (socket space, the
   * client's credit); 0 = not now (it calls Watcher.resume when that changes).
   */
  capacity(): number
  /** Hands over at most capacity() events, oldest first. */
  write(events: readonly WatchEvent[]): void
  /** The watch ends: the sink tells its client why and closes. */
  cut(reason: CutReason, detail: Readonly<Record<string, unknown>>): void
}

/** The change log, read page by page for a replay. */
export interface ReplaySource {
  /** The next page of entries for the watcher's prefix; `done` once the log's end was reached. */
  next(): {
    readonly entries: readonly LoggedEvent[]
    readonly scannedToSeq: number | undefined
    readonly done: boolean
    /** The log was trimmed past where the replay had read (it fell behind by watch.retention). */
    readonly lost: boolean
  }
}

export interface WatcherOptions {
  readonly maxBufferedBytes: number
  /** Runs `task` soon, outside the current call stack (setImmediate in the daemon). */
  readonly defer: (task: () => void) => void
  /** Called once when the watcher ends, whether cut or closed by its consumer. */
  readonly onClose: (watcher: Watcher) => void
  /** Called when the watcher is cut (for metrics and logs). */
  readonly onCut?: (reason: CutReason) => void
  /** Called with the number of events handed to the sink. */
  readonly onDelivered?: (count: number) => void
}

/** Events handed to a sink in one write. */
const MAX_EVENTS_PER_WRITE = 64

export class Watcher {
  readonly prefix: string
  readonly #options: WatcherOptions
  #sink: WatchSink | undefined
  /** Events waiting for the sink, oldest first; #head is the first not yet taken. */
  #queue: WatchEvent[] = []
  #head = 0
  /** Bytes of the queue and the held live events together (the bound's measure). */
  #bufferedBytes = 0
  #replay: ReplaySource | undefined
  /** Live local events that arrived during the replay. */
  #held: LoggedEvent[] = []
  /** Bytes of #held (part of #bufferedBytes). */
  #heldBytes = 0
  /** Log sequence number the replay has read up to; live events at or below it are duplicates. */
  #replayedToSeq = 0
  #pumpScheduled = false
  #closed = false

  constructor(prefix: string, options: WatcherOptions) {
    this.prefix = prefix
    this.#options = options
  }

  get closed(): boolean {
    return this.#closed
  }

  get bufferedBytes(): number {
    return this.#bufferedBytes
  }

  /** True while the queue is below half its bound: remote feeds fetch more only then. */
  hasRoom(): boolean {
    return !this.#closed && this.#bufferedBytes < this.#options.maxBufferedBytes / 2
  }

  /** Starts delivering to `sink` (soon, not within this call). */
  attach(sink: WatchSink): void {
    this.#sink = sink
    this.#schedule()
  }

  /** Replays `source` before any live local event (call right after subscribing to the hub). */
  replayFrom(source: ReplaySource): void {
    this.#replay = source
    this.#schedule()
  }

  /** A change this node applied, from the hub. */
  offerLocal(logged: LoggedEvent): void {
    if (this.#closed) return
    if (this.#replay !== undefined) {
      const bytes = eventBytes(logged.event)
      this.#held.push(logged)
      this.#heldBytes += bytes
      this.#bufferedBytes += bytes
      this.#checkBound()
      return
    }
    if (logged.position !== undefined && logged.position.seq <= this.#replayedToSeq) return
    this.#enqueue(logged.event)
  }

  /** Changes of partitions this node does not hold, from a peer's change log. */
  offerRemote(events: readonly WatchEvent[]): void {
    for (const event of events) {
      if (this.#closed) return
      this.#enqueue(event)
    }
  }

  /** The sink can take events again (its socket drained, credit arrived). */
  resume(): void {
    this.#schedule()
  }

  /** Ends the watch for `reason`, telling the consumer. */
  cut(reason: CutReason, detail: Readonly<Record<string, unknown>> = {}): void {
    if (this.#closed) return
    this.#end()
    this.#options.onCut?.(reason)
    this.#sink?.cut(reason, detail)
  }

  /** The consumer went away. */
  close(): void {
    if (this.#closed) return
    this.#end()
  }

  #end(): void {
    this.#closed = true
    this.#queue = []
    this.#head = 0
    this.#held = []
    this.#heldBytes = 0
    this.#bufferedBytes = 0
    this.#replay = undefined
    this.#options.onClose(this)
  }

  #enqueue(event: WatchEvent): void {
    this.#queue.push(event)
    this.#bufferedBytes += eventBytes(event)
    if (this.#checkBound()) this.#schedule()
  }

  /** Cuts the watcher when its buffer is over the bound; true while it lives. */
  #checkBound(): boolean {
    if (this.#bufferedBytes <= this.#options.maxBufferedBytes) return true
    this.cut('slow_consumer', { maxBufferedBytes: this.#options.maxBufferedBytes })
    return false
  }

  #schedule(): void {
    if (this.#pumpScheduled || this.#closed || this.#sink === undefined) return
    this.#pumpScheduled = true
    this.#options.defer(() => {
      this.#pumpScheduled = false
      this.#pump()
    })
  }

  #pump(): void {
    const sink = this.#sink
    if (this.#closed || sink === undefined) return
    this.#deliver(sink)
    if (this.#closed || this.#replay === undefined) return
    // Replay one page at a time, and only while the consumer keeps up: a long replay neither
    // holds the event loop nor fills the buffer. (Live events held meanwhile do not slow it.)
    if (sink.capacity() === 0 || this.#bufferedBytes - this.#heldBytes >= this.#options.maxBufferedBytes / 2) return
    const page = this.#replay.next()
    if (page.lost) return this.cut('compacted', {})
    for (const { event } of page.entries) {
      this.#queue.push(event)
      this.#bufferedBytes += eventBytes(event)
    }
    if (page.scannedToSeq !== undefined) this.#replayedToSeq = Math.max(this.#replayedToSeq, page.scannedToSeq)
    if (page.done) this.#finishReplay()
    this.#deliver(sink)
    if (!this.#closed && (this.#replay !== undefined || this.#head < this.#queue.length) && sink.capacity() > 0) this.#schedule()
  }

  /** The replay reached the log's end: live events it did not already deliver follow. */
  #finishReplay(): void {
    this.#replay = undefined
    for (const { event, position } of this.#held) {
      if (position !== undefined && position.seq <= this.#replayedToSeq) this.#bufferedBytes -= eventBytes(event)
      else this.#queue.push(event)
    }
    this.#held = []
    this.#heldBytes = 0
    this.#checkBound()
  }

  #deliver(sink: WatchSink): void {
    let delivered = 0
    while (!this.#closed && this.#head < this.#queue.length) {
      const room = Math.min(MAX_EVENTS_PER_WRITE, sink.capacity())
      if (room <= 0) break
      const batch = this.#queue.slice(this.#head, this.#head + room)
      this.#head += batch.length
      for (const event of batch) this.#bufferedBytes -= eventBytes(event)
      delivered += batch.length
      sink.write(batch)
    }
    if (this.#head === this.#queue.length) {
      this.#queue = []
      this.#head = 0
    } else if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head)
      this.#head = 0
    }
    if (delivered > 0) this.#options.onDelivered?.(delivered)
  }
}
