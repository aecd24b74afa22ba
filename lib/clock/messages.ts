import type { FrameType } from '../codec/frames.js'
import { expectObject, expectUint, field } from '../codec/validate.js'
import { HLC_TICKS_PER_MS } from './version.js'

/**
 * Clock offset probe frames (docs/protocol.md "Clock"). The offset monitor asks each alive peer
 * for its wall clock reading and brackets the answer between its own send and receive times
 * (lib/clock/offset-monitor.ts). Both bodies carry the sender's wall clock in ms since the epoch.
 */

/** Largest wall clock reading accepted: one whose hlc (ms × 1000) is still a safe integer. */
export const MAX_WALL_MS = Math.floor(Number.MAX_SAFE_INTEGER / HLC_TICKS_PER_MS)

export const CLOCK_PROBE = 'clockProbe'
export const CLOCK_PROBE_REPLY = 'clockProbeReply'

/** The asker's wall clock when it sent the probe (informational: the asker times the round trip itself). */
export interface ClockProbeBody { readonly wallMs: number }
/** The answering node's wall clock when it answered. */
export interface ClockProbeReplyBody { readonly wallMs: number }

function validateWallBody(body: unknown, what: string): { wallMs: number } {
  const object = expectObject(body, what)
  return { wallMs: expectUint(field(object, 'wallMs'), `${what}.wallMs`, MAX_WALL_MS) }
}

export function validateClockProbe(body: unknown): ClockProbeBody {
  return validateWallBody(body, CLOCK_PROBE)
}

export function validateClockProbeReply(body: unknown): ClockProbeReplyBody {
  return validateWallBody(body, CLOCK_PROBE_REPLY)
}

/** This protocol's frames, for the frame table (lib/codec/frames.ts). */
export const CLOCK_FRAMES: readonly FrameType[] = [
  { code: 0x40, name: CLOCK_PROBE, kind: 'request', validate: validateClockProbe },
  { code: 0x41, name: CLOCK_PROBE_REPLY, kind: 'reply', validate: validateClockProbeReply },
]
