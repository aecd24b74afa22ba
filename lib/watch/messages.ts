import type { FrameType } from '../codec/frames.js'
import { expectArray, expectObject, expectString, expectUint, field, MalformedBodyError, optional } from '../codec/validate.js'
import { MAX_WIRE_KEY_CHARS, validateWireEntry, type WireEntry } from '../replication/messages.js'
import type { ChangePosition } from '../store/change-log.js'

/**
 * Watch feed frames (docs/protocol.md "Watches"): a node serving a watch on partitions it does
 * not replicate long-polls a replica's change log for them. One poll carries the positions of
 * several subscriptions (one per watcher and peer); the reply carries each one's events and
 * where to read on. The replica keeps no state between polls: a poll that finds nothing waits
 * up to waitMs for a change, then answers empty.
 */

export const WATCH_POLL = 'watchPoll'
export const WATCH_POLL_REPLY = 'watchPollReply'

/** Subscriptions one poll carries at most. */
export const MAX_SUBSCRIPTIONS_PER_POLL = 1024
/** Partitions one subscription names at most (the largest partitions setting). */
export const MAX_PARTITIONS_PER_SUBSCRIPTION = 65_536
/** Longest a replica holds a poll that found nothing. */
export const MAX_POLL_WAIT_MS = 60_000
/** Largest reply a poll may ask for (frames are at most 4 MiB). */
export const MAX_POLL_REPLY_BYTES = 2 * 1024 * 1024
/** Events in one reply, all subscriptions together. */
export const MAX_EVENTS_PER_POLL_REPLY = 4096
/** Largest arrival time accepted (ms; a safe integer once × 1000). */
const MAX_WALL_MS = Math.floor(Number.MAX_SAFE_INTEGER / 1000)

export interface PollSubscription {
  /** Chosen by the asker; echoed in the reply. */
  readonly id: number
  readonly prefix: string
  /** Only keys of these partitions. */
  readonly partitions: readonly number[]
  /** Read on after this position of the replica's log (from an earlier reply)... */
  readonly after?: WirePosition
  /** ...or, for a new subscription, from this arrival time (the replica's clock, ms). */
  readonly fromMs?: number
}

export interface WatchPollBody {
  readonly waitMs: number
  readonly maxBytes: number
  readonly subscriptions: readonly PollSubscription[]
}

export interface PollResult {
  readonly id: number
  readonly events: readonly WireEntry[]
  /** Where to read on; absent when the subscription is lost. */
  readonly next?: WirePosition
  /**
   * Set when the replica's log no longer reaches back to where the subscription asked to read
   * (its horizon, ms): the watch cannot go on without a gap.
   */
  readonly lostHorizonMs?: number
}

export interface WatchPollReplyBody {
  readonly results: readonly PollResult[]
}

/** A change log position on the wire: [arrivedMs, seq]. */
export type WirePosition = readonly [number, number]

function validatePosition(value: unknown, what: string): WirePosition {
  const pair = expectArray(value, what, 2, (v, w) => expectUint(v, w))
  if (pair.length !== 2) throw new MalformedBodyError(`${what} must be [arrivedMs, seq]`)
  const [arrivedMs, seq] = pair as [number, number]
  if (arrivedMs > MAX_WALL_MS) throw new MalformedBodyError(`${what} arrival time is out of range`)
  return [arrivedMs, seq]
}

export function positionToWire(position: ChangePosition): WirePosition {
  return [position.arrivedMs, position.seq]
}

export function positionFromWire([arrivedMs, seq]: WirePosition): ChangePosition {
  return { arrivedMs, seq }
}

function validateSubscription(value: unknown, what: string): PollSubscription {
  const object = expectObject(value, what)
  const id = expectUint(field(object, 'id'), `${what}.id`, 0xffff_ffff)
  const prefix = expectString(field(object, 'prefix'), `${what}.prefix`, MAX_WIRE_KEY_CHARS)
  const partitions = expectArray(field(object, 'partitions'), `${what}.partitions`, MAX_PARTITIONS_PER_SUBSCRIPTION, (v, w) => expectUint(v, w, MAX_PARTITIONS_PER_SUBSCRIPTION - 1))
  const after = optional(field(object, 'after'), `${what}.after`, validatePosition)
  const fromMs = optional(field(object, 'fromMs'), `${what}.fromMs`, (v, w) => expectUint(v, w, MAX_WALL_MS))
  if ((after === undefined) === (fromMs === undefined)) throw new MalformedBodyError(`${what} must have exactly one of after and fromMs`)
  return { id, prefix, partitions, ...(after === undefined ? {} : { after }), ...(fromMs === undefined ? {} : { fromMs }) }
}

export function validateWatchPoll(body: unknown): WatchPollBody {
  const object = expectObject(body, WATCH_POLL)
  return {
    waitMs: expectUint(field(object, 'waitMs'), `${WATCH_POLL}.waitMs`, MAX_POLL_WAIT_MS),
    maxBytes: expectUint(field(object, 'maxBytes'), `${WATCH_POLL}.maxBytes`, MAX_POLL_REPLY_BYTES),
    subscriptions: expectArray(field(object, 'subscriptions'), `${WATCH_POLL}.subscriptions`, MAX_SUBSCRIPTIONS_PER_POLL, validateSubscription),
  }
}

function validateResult(value: unknown, what: string): PollResult {
  const object = expectObject(value, what)
  const id = expectUint(field(object, 'id'), `${what}.id`, 0xffff_ffff)
  const events = expectArray(field(object, 'events'), `${what}.events`, MAX_EVENTS_PER_POLL_REPLY, validateWireEntry)
  const next = optional(field(object, 'next'), `${what}.next`, validatePosition)
  const lostHorizonMs = optional(field(object, 'lostHorizonMs'), `${what}.lostHorizonMs`, (v, w) => expectUint(v, w, MAX_WALL_MS))
  if ((next === undefined) === (lostHorizonMs === undefined)) throw new MalformedBodyError(`${what} must have exactly one of next and lostHorizonMs`)
  return { id, events, ...(next === undefined ? {} : { next }), ...(lostHorizonMs === undefined ? {} : { lostHorizonMs }) }
}

export function validateWatchPollReply(body: unknown): WatchPollReplyBody {
  const object = expectObject(body, WATCH_POLL_REPLY)
  const results = expectArray(field(object, 'results'), `${WATCH_POLL_REPLY}.results`, MAX_SUBSCRIPTIONS_PER_POLL, validateResult)
  let events = 0
  for (const result of results) events += result.events.length
  if (events > MAX_EVENTS_PER_POLL_REPLY) throw new MalformedBodyError(`${WATCH_POLL_REPLY} carries ${events} events, more than ${MAX_EVENTS_PER_POLL_REPLY}`)
  return { results }
}

/** This protocol's frames, for the frame table (lib/codec/frames.ts). */
export const WATCH_FRAMES: readonly FrameType[] = [
  { code: 0x50, name: WATCH_POLL, kind: 'request', validate: validateWatchPoll },
  { code: 0x51, name: WATCH_POLL_REPLY, kind: 'reply', validate: validateWatchPollReply },
]
