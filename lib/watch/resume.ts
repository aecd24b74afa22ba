import { HLC_TICKS_PER_MS, hlcWallMs, type NodeId, type Version } from '../clock/version.js'

/**
 * Where a resumed watch starts reading a change log (docs/consistency.md "Watches", "Resume").
 *
 * A version's hlc is at most clock.maxSkewMs ahead of its coordinator's clock (a node refuses
 * timestamps further ahead), and any two clocks are within maxSkewMs of each other, so a change
 * with version v arrives at any node no earlier than wall(v) − 2 · maxSkewMs by that node's
 * clock. A resume from `since` replays every log entry that arrived at or after
 *
 *     wall(since) − resumeMarginMs − 2 · maxSkewMs
 *
 * which holds every change with a version above since − resumeMarginMs, and every change of any
 * version that reached this node after that time (a late arrival the old node had not yet seen).
 */

export interface ResumeBounds {
  readonly resumeMarginMs: number
  readonly maxSkewMs: number
}

/** Arrival time (this node's clock) from which a resume at `since` replays. */
export function replayFromMs(since: Version, bounds: ResumeBounds): number {
  return Math.max(0, hlcWallMs(since.hlc) - bounds.resumeMarginMs - 2 * bounds.maxSkewMs)
}

/** Arrival time from which a watch without `since` that started at `startedMs` reads a peer's log. */
export function liveFromMs(startedMs: number, bounds: ResumeBounds): number {
  return Math.max(0, startedMs - 2 * bounds.maxSkewMs)
}

const ZERO_NODE = '0000000000000000' as NodeId

/** The oldest `since` a log with this horizon can resume from (the 410 answer's `oldest`). */
export function oldestResumable(horizonMs: number, bounds: ResumeBounds): Version {
  return { hlc: (horizonMs + bounds.resumeMarginMs + 2 * bounds.maxSkewMs) * HLC_TICKS_PER_MS, node: ZERO_NODE }
}
