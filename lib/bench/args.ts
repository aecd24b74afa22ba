import { BadRequestError } from '../errors.js'
import { parseConsistencyLevel, type ConsistencyLevel } from '../replication/consistency.js'
import { MAX_KEY_BYTES } from '../store/keys.js'
import { DEFAULT_API_LIMITS } from '../api/limits.js'
import { UsageError, type OptionSpec } from '../client/command.js'
import { parseDurationOption } from '../client/duration-option.js'
import { MAX_CONCURRENCY } from './closed-loop.js'
import { minimumKeyBytes } from './keys.js'
import type { LinearizableMix } from './linearizable-workload.js'

export const DEFAULT_CONCURRENCY = 64
export const DEFAULT_DURATION_MS = 10_000
/** Unrecorded warm-up of each timed run: JIT, connections and a fresh store's first pages otherwise skew the first level of a sweep. */
export const DEFAULT_WARMUP_MS = 2000
export const DEFAULT_KEY_BYTES = 16
export const DEFAULT_VALUE_BYTES = 100
export const DEFAULT_KEY_COUNT = 100_000
export const DEFAULT_PLOT_FILE = 'hearsay-sweep.svg'
export const DEFAULT_SETTLE_MS = 100
export const DEFAULT_SAMPLE_EVERY = 10

/** A day of load is a typo or a forgotten terminal, not a benchmark. */
export const MAX_DURATION_MS = 24 * 60 * 60 * 1000
export const MAX_OPS = 1_000_000_000
export const MAX_KEY_COUNT = 1_000_000_000
/** Each side of `--mix A:B`; the ratio is what matters, large numbers only slow the reader down. */
export const MAX_MIX_WEIGHT = 1000
/** W levels in one sweep; each one is a full run. */
export const MAX_SWEEP_LEVELS = 16
export const MAX_SETTLE_MS = 60_000
export const MAX_SAMPLE_EVERY = 1_000_000
/** Watchers of one bench process: each is a socket and a stream to parse in this one process. */
export const MAX_WATCHERS = 10_000
/** Scheduled operations per second of `--rate`; far above what one client process can issue. */
export const MAX_RATE_PER_SECOND = 1_000_000

/** put:get weights; operation n is a put when n mod (put + get) < put. */
export interface PutGetMix {
  readonly put: number
  readonly get: number
}

/** Plain puts and gets, or only linearizable compare-and-sets or increments (issue 13). */
export type Mix = PutGetMix | LinearizableMix

/** Everything `hearsay bench` was asked to do, validated. */
export interface BenchSettings {
  /** Closed loop: workers. Open loop (--rate): the most operations in flight at once. */
  readonly concurrency: number
  /** Set for `--rate N`: an open loop issuing N operations per second on a fixed schedule. */
  readonly ratePerSecond?: number
  /** Exactly one of durationMs and ops is set. */
  readonly durationMs?: number
  readonly ops?: number
  /** Operations run but not recorded at the start of each run (0 with --ops unless asked). */
  readonly warmupMs: number
  readonly keyBytes: number
  readonly valueBytes: number
  /** Size of the key space: keys bench/0 … bench/(keys-1), padded to keyBytes. */
  readonly keys: number
  readonly mix: Mix
  readonly w?: ConsistencyLevel
  readonly r?: ConsistencyLevel
  /** `--watchers N`: N watches on the prefix the puts write, measuring watch latency; 0 for none. */
  readonly watchers: number
  /** Set for `--sweep w=…`: one run per write level, in the order given. */
  readonly sweep?: {
    readonly levels: readonly ConsistencyLevel[]
    readonly plotFile: string
    readonly settleMs: number
    /** Probe every k-th acknowledged write for stale replicas. */
    readonly sampleEvery: number
  }
}

/** The options `hearsay bench` declares besides the global ones (w and r are shared with put/get). */
export const BENCH_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  concurrency: { type: 'string', valueName: 'N', description: `operations in flight; with --rate the most in flight at once (default ${DEFAULT_CONCURRENCY})` },
  rate: { type: 'string', valueName: 'N', description: 'open loop: start N operations per second on a fixed schedule, latency measured from the scheduled start' },
  duration: { type: 'string', valueName: 'TIME', description: `run this long: 30 (seconds), 30s, 500ms, 2m (default ${DEFAULT_DURATION_MS / 1000}s)` },
  ops: { type: 'string', valueName: 'N', description: 'run this many operations instead of a duration' },
  warmup: { type: 'string', valueName: 'TIME', description: `run unrecorded this long first, each run (default ${DEFAULT_WARMUP_MS / 1000}s with --duration, 0 with --ops)` },
  'key-bytes': { type: 'string', valueName: 'N', description: `key length in bytes (default ${DEFAULT_KEY_BYTES})` },
  'value-bytes': { type: 'string', valueName: 'N', description: `value length in bytes (default ${DEFAULT_VALUE_BYTES})` },
  keys: { type: 'string', valueName: 'N', description: `key space: puts walk it in order, gets pick keys at random (default ${DEFAULT_KEY_COUNT})` },
  mix: { type: 'string', valueName: 'PUT:GET|cas|incr', description: 'ratio of puts to gets, e.g. 1:0 writes only (default 1:1); cas: compare-and-sets, incr: counter increments, each worker on key (worker mod --keys)' },
  sweep: { type: 'string', valueName: 'w=L,L…', description: 'one run per write level, e.g. w=1,2,3, with a staleness count and a plot' },
  plot: { type: 'string', valueName: 'FILE', description: `SVG file the sweep writes (default ${DEFAULT_PLOT_FILE})` },
  settle: { type: 'string', valueName: 'TIME', description: `sweep: read sampled keys again after this delay (default ${DEFAULT_SETTLE_MS}ms)` },
  'sample-every': { type: 'string', valueName: 'K', description: `sweep: probe every K-th acknowledged write for stale replicas (default ${DEFAULT_SAMPLE_EVERY})` },
  watchers: { type: 'string', valueName: 'N', description: 'also run N watches on the written prefix and report watch latency and events/s fanned out' },
}

type OptionValues = Readonly<Record<string, string | boolean | undefined>>

/** Validates the bench options; anything wrong is a UsageError naming the option and the fix. */
export function parseBenchArgs(options: OptionValues): BenchSettings {
  const text = (name: string): string | undefined => {
    const value = options[name]
    return typeof value === 'string' ? value : undefined
  }
  const durationText = text('duration')
  const opsText = text('ops')
  if (durationText !== undefined && opsText !== undefined) throw new UsageError('give --duration or --ops, not both')
  const ops = opsText === undefined ? undefined : wholeNumber(opsText, 'ops', 1, MAX_OPS)
  const durationMs = ops !== undefined ? undefined
    : durationText === undefined ? DEFAULT_DURATION_MS : duration(durationText, 'duration', MAX_DURATION_MS)

  const keys = numberOption(text('keys'), 'keys', DEFAULT_KEY_COUNT, 1, MAX_KEY_COUNT)
  const keyBytes = numberOption(text('key-bytes'), 'key-bytes', DEFAULT_KEY_BYTES, 1, MAX_KEY_BYTES)
  if (keyBytes < minimumKeyBytes(keys)) {
    throw new UsageError(`--key-bytes ${keyBytes} is too short to number ${keys} keys; use at least ${minimumKeyBytes(keys)} or fewer --keys`)
  }
  const mix = mixOption(text('mix'))
  const w = levelOption(text('w'), 'w')
  if (typeof mix === 'string') {
    // CASPaxos always waits for a majority of the key's replicas; there is no level to choose.
    for (const name of ['w', 'r', 'sweep']) {
      if (text(name) !== undefined) throw new UsageError(`--${name} does not apply to --mix ${mix}: linearizable operations always need a majority of the key's replicas`)
    }
  }
  const sweepText = text('sweep')
  if (sweepText === undefined) {
    for (const name of ['plot', 'settle', 'sample-every']) {
      if (text(name) !== undefined) throw new UsageError(`--${name} applies only with --sweep`)
    }
  } else {
    if (w !== undefined) throw new UsageError('--sweep sets the write level of each run; leave out --w')
    if (typeof mix === 'string' || mix.put === 0) throw new UsageError('--sweep compares write levels, so --mix needs writes (e.g. 1:0 or 1:1)')
  }
  const watchers = numberOption(text('watchers'), 'watchers', 0, 1, MAX_WATCHERS)
  if (watchers > 0 && sweepText !== undefined) throw new UsageError('--watchers measures one run; leave out --sweep')
  if (watchers > 0 && (typeof mix === 'string' || mix.put === 0)) throw new UsageError('--watchers watches the puts of the load, so --mix needs writes (e.g. 1:0 or 1:1)')
  const rateText = text('rate')
  return {
    concurrency: numberOption(text('concurrency'), 'concurrency', DEFAULT_CONCURRENCY, 1, MAX_CONCURRENCY),
    ...(rateText === undefined ? {} : { ratePerSecond: wholeNumber(rateText, 'rate', 1, MAX_RATE_PER_SECOND) }),
    ...(ops === undefined ? { durationMs } : { ops }),
    warmupMs: text('warmup') !== undefined ? duration(text('warmup') as string, 'warmup', MAX_DURATION_MS, true) : ops === undefined ? DEFAULT_WARMUP_MS : 0,
    keyBytes,
    valueBytes: numberOption(text('value-bytes'), 'value-bytes', DEFAULT_VALUE_BYTES, 1, DEFAULT_API_LIMITS.maxValueBytes),
    keys,
    mix,
    w,
    r: levelOption(text('r'), 'r'),
    watchers,
    ...(sweepText === undefined ? {} : {
      sweep: {
        levels: sweepLevels(sweepText),
        plotFile: plotFile(text('plot')),
        settleMs: text('settle') === undefined ? DEFAULT_SETTLE_MS : duration(text('settle') as string, 'settle', MAX_SETTLE_MS),
        sampleEvery: numberOption(text('sample-every'), 'sample-every', DEFAULT_SAMPLE_EVERY, 1, MAX_SAMPLE_EVERY),
      },
    }),
  }
}

function wholeNumber(text: string, name: string, min: number, max: number): number {
  const value = Number(text)
  if (!/^[0-9]+$/.test(text) || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new UsageError(`--${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(text)}`)
  }
  return value
}

function numberOption(text: string | undefined, name: string, fallback: number, min: number, max: number): number {
  return text === undefined ? fallback : wholeNumber(text, name, min, max)
}

function duration(text: string, name: string, maxMs: number, allowZero = false): number {
  return parseDurationOption(text, name, { maxMs, allowZero })
}

function mixOption(text: string | undefined): Mix {
  if (text === undefined) return { put: 1, get: 1 }
  if (text === 'cas' || text === 'incr') return text
  const match = /^([0-9]+):([0-9]+)$/.exec(text)
  const put = Number(match?.[1])
  const get = Number(match?.[2])
  if (match === null || put > MAX_MIX_WEIGHT || get > MAX_MIX_WEIGHT) {
    throw new UsageError(`--mix must be PUT:GET with whole numbers up to ${MAX_MIX_WEIGHT}, e.g. 1:1 or 1:0, or cas or incr, got ${JSON.stringify(text)}`)
  }
  if (put + get === 0) throw new UsageError('--mix 0:0 runs nothing; give puts or gets a weight, e.g. 1:0')
  return { put, get }
}

function levelOption(text: string | undefined, name: 'w' | 'r'): ConsistencyLevel | undefined {
  if (text === undefined) return undefined
  try {
    return parseConsistencyLevel(text, name)
  } catch (err) {
    if (err instanceof BadRequestError) throw new UsageError(`--${err.message}`)
    throw err
  }
}

function sweepLevels(text: string): ConsistencyLevel[] {
  const match = /^w=(.+)$/.exec(text)
  if (match === null) throw new UsageError(`--sweep must look like w=1,2,3 (write levels to compare), got ${JSON.stringify(text)}`)
  const parts = (match[1] as string).split(',')
  if (parts.length > MAX_SWEEP_LEVELS) throw new UsageError(`--sweep takes at most ${MAX_SWEEP_LEVELS} write levels, got ${parts.length}`)
  const levels = parts.map(part => {
    try {
      return parseConsistencyLevel(part.trim(), 'w')
    } catch (err) {
      if (err instanceof BadRequestError) throw new UsageError(`--sweep ${err.message}`)
      throw err
    }
  })
  const seen = new Set<string>()
  for (const level of levels) {
    if (seen.has(String(level))) throw new UsageError(`--sweep lists w=${level} twice`)
    seen.add(String(level))
  }
  return levels
}

function plotFile(text: string | undefined): string {
  if (text === undefined) return DEFAULT_PLOT_FILE
  if (text.trim() === '') throw new UsageError('--plot needs a file name, e.g. sweep.svg')
  return text
}
