import type { Clock } from '../runtime/clock.js'
import type { ChangeLog, ChangePosition } from '../store/change-log.js'
import type { Store } from '../store/store.js'
import { toWire, type WireEntry } from '../replication/messages.js'
import type { Transport } from '../transport/transport.js'
import { MAX_EVENTS_PER_POLL_REPLY, WATCH_POLL, WATCH_POLL_REPLY, positionFromWire, positionToWire, type PollResult, type PollSubscription, type WatchPollBody } from './messages.js'

/**
 * The replica side of watch feeds: answers a watchPoll from this node's change log. A poll whose
 * subscriptions all have a position and find nothing waits (at most waitMs, and only while fewer
 * than maxWaitingPolls wait) for the next change, then reads again; a new subscription is
 * answered at once so the asker learns its position.
 */

export interface WatchResponderOptions {
  readonly store: Pick<Store, 'changeLog' | 'onChange'>
  readonly partitionOf: (key: string) => number
  readonly clock: Clock
  /** Polls held waiting for a change at once; more are answered at once (empty). */
  readonly maxWaitingPolls: number
}

/** Log entries one subscription looks at per read (returned or skipped). */
const MAX_SCANNED_PER_READ = 8192
/** Bytes an event is counted as besides its key and value. */
const WIRE_EVENT_OVERHEAD_BYTES = 64

export function registerWatchResponder(transport: Pick<Transport, 'handle'>, options: WatchResponderOptions): { readonly waiting: number } {
  const waiters = new Set<() => void>()
  options.store.onChange((change) => {
    if (change.logged === undefined || waiters.size === 0) return
    for (const wake of [...waiters]) wake()
  })

  const waitForChange = (timeoutMs: number): Promise<void> => new Promise((resolve) => {
    const done = (): void => {
      waiters.delete(done)
      options.clock.clearTimeout(timer)
      resolve()
    }
    const timer = options.clock.setTimeout(done, timeoutMs)
    waiters.add(done)
  })

  transport.handle(WATCH_POLL, async (_from, message) => {
    const { waitMs, maxBytes, subscriptions } = message.body as WatchPollBody
    const log = options.store.changeLog
    const deadlineMs = options.clock.nowMs() + waitMs
    let cursors = subscriptions.map((subscription) => startOf(subscription))
    for (;;) {
      const results = readAll(log, subscriptions, cursors, maxBytes, options.partitionOf)
      const found = results.some((result) => result.events.length > 0 || result.lostHorizonMs !== undefined)
      const fresh = subscriptions.some((subscription) => subscription.after === undefined)
      const remainingMs = deadlineMs - options.clock.nowMs()
      if (found || fresh || remainingMs <= 0 || waiters.size >= options.maxWaitingPolls) {
        return { type: WATCH_POLL_REPLY, body: { results: results.map(toWireResult) } }
      }
      // Nothing for these prefixes yet: read on from where this read stopped once something changes.
      cursors = results.map((result, i) => result.next ?? cursors[i] as Start)
      await waitForChange(remainingMs)
    }
  })

  return { get waiting() { return waiters.size } }
}

type Start = ChangePosition | { readonly fromMs: number }

function startOf(subscription: PollSubscription): Start {
  return subscription.after === undefined ? { fromMs: subscription.fromMs ?? 0 } : positionFromWire(subscription.after)
}

/** A read's result: events, and where to read on (or that the subscription is lost). */
interface ReadResult {
  readonly id: number
  readonly events: readonly WireEntry[]
  readonly next?: ChangePosition
  readonly lostHorizonMs?: number
}

function toWireResult(result: ReadResult): PollResult {
  return {
    id: result.id,
    events: result.events,
    ...(result.next === undefined ? {} : { next: positionToWire(result.next) }),
    ...(result.lostHorizonMs === undefined ? {} : { lostHorizonMs: result.lostHorizonMs }),
  }
}

function readAll(log: ChangeLog, subscriptions: readonly PollSubscription[], cursors: readonly Start[], maxBytes: number, partitionOf: (key: string) => number): ReadResult[] {
  let bytes = 0
  let events = 0
  return subscriptions.map((subscription, i): ReadResult => {
    const start = cursors[i] as Start
    // Entries the subscription has not read may be gone: reading on would skip them unseen.
    if ('fromMs' in start ? start.fromMs < log.horizonMs : log.trimmedAfter(start)) return { id: subscription.id, events: [], lostHorizonMs: log.horizonMs }
    const here = 'fromMs' in start ? { arrivedMs: start.fromMs, seq: 0 } : start
    const room = MAX_EVENTS_PER_POLL_REPLY - events
    // Out of room: the subscription keeps its place and reads on in the next poll.
    if (room <= 0 || bytes >= maxBytes) return { id: subscription.id, events: [], next: here }
    const partitions = new Set(subscription.partitions)
    const page = log.read('fromMs' in start ? { fromMs: start.fromMs } : { after: start }, {
      prefix: subscription.prefix, limit: room, maxScanned: MAX_SCANNED_PER_READ, accept: (key) => partitions.has(partitionOf(key)),
    })
    const wire: WireEntry[] = []
    let next: ChangePosition = here
    for (const entry of page.entries) {
      const entryBytes = entry.key.length * 3 + (entry.record.value?.byteLength ?? 0) + WIRE_EVENT_OVERHEAD_BYTES
      // At least one event per reply, however large, so a big value never stalls a feed.
      if (events > 0 && bytes + entryBytes > maxBytes) break
      wire.push(toWire(entry.key, entry.record))
      bytes += entryBytes
      events++
      next = entry.position
    }
    // Every entry was taken: the read may move past skipped ones too.
    if (wire.length === page.entries.length && page.scannedTo !== undefined) next = page.scannedTo
    return { id: subscription.id, events: wire, next }
  })
}
