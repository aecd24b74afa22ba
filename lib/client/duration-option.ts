import { parseDurationMs } from '../config/duration.js'
import { UsageError } from './command.js'

/** What a duration option of the CLI accepts, for its help text and errors. */
export const DURATION_OPTION_SYNTAX = 'a bare number of seconds (as in wrk -d) or a number with a unit: 500ms, 30s, 2m, 1h'

export interface DurationOptionLimits {
  /** Longest value taken; a longer one is refused rather than silently clamped. */
  readonly maxMs: number
  /** Whether 0 means something for this option (e.g. no warm-up). */
  readonly allowZero?: boolean
}

/**
 * A CLI duration in milliseconds. A bare number is seconds on every duration option of the CLI,
 * as in `wrk -d`: `--duration 15` once meant 15 ms, which nobody asking for a benchmark means.
 * The config file keeps its own rule (a bare number is milliseconds); only the command line differs.
 */
export function parseDurationOption(text: string, name: string, limits: DurationOptionLimits): number {
  const ms = /^[0-9]+$/.test(text) ? Number(text) * 1000 : parseUnitDuration(text)
  const allowZero = limits.allowZero === true
  if (ms === undefined || !Number.isSafeInteger(ms) || (ms === 0 && !allowZero)) {
    throw new UsageError(`--${name} must be ${allowZero ? '' : 'a positive duration: '}${DURATION_OPTION_SYNTAX}, got ${JSON.stringify(text)}`)
  }
  if (ms > limits.maxMs) {
    const hint = /^[0-9]+$/.test(text) ? ` (a bare number is seconds; for milliseconds write ${text}ms)` : ''
    throw new UsageError(`--${name} must be at most ${formatLimit(limits.maxMs)}${hint}, got ${JSON.stringify(text)}`)
  }
  return ms
}

function parseUnitDuration(text: string): number | undefined {
  return /^0+(ms|s|m|h|d)$/.test(text) ? 0 : parseDurationMs(text)
}

function formatLimit(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`
}

/**
 * Longest `--timeout`: ten minutes is already far past any node's answer, and the cap turns an
 * old-style `--timeout 2000` (once milliseconds) into a clear error instead of a 33-minute wait.
 */
export const MAX_TIMEOUT_OPTION_MS = 10 * 60 * 1000

/** The global `--timeout`, in milliseconds. */
export function parseTimeoutOption(text: string): number {
  return parseDurationOption(text, 'timeout', { maxMs: MAX_TIMEOUT_OPTION_MS })
}
