import { parseArgs } from 'node:util'
import { SYSTEM_NAMES, type SystemName } from './system.js'
import { MAX_KEY_SPACE } from './workload.js'

export interface CompareOptions {
  /** Length of each phase (writes, then reads) per system. */
  readonly seconds: number
  /**
   * Unmeasured load before each phase, the same operations: the steady state is reported, not
   * a JIT's or a cache's first seconds (0: none).
   */
  readonly warmupSeconds: number
  /** Operations in flight. */
  readonly concurrency: number
  /** Distinct keys the writes cycle through. */
  readonly keys: number
  readonly systems: readonly SystemName[]
  /** Print the report as JSON on stdout instead of the table. */
  readonly json: boolean
  /** Run every system twice, plaintext then with TLS on its peer and client ports (issue 12). */
  readonly tls: boolean
  /** Watchers of the watch phase (hearsay, etcd); 0 skips the phase. */
  readonly watchers: number
  /** Add a compare-and-set phase (hearsay CAS, etcd txn) after the reads. */
  readonly cas: boolean
  /**
   * Times the whole list of systems runs, one after the other (hearsay, etcd, redis, hearsay, …):
   * a single run's ratio moves with the shared machine, the median over rounds less.
   */
  readonly rounds: number
}

/** Issue 7's workload. */
export const DEFAULT_OPTIONS: CompareOptions = { seconds: 20, warmupSeconds: 5, concurrency: 64, keys: 100_000, systems: SYSTEM_NAMES, json: false, tls: false, watchers: 0, cas: false, rounds: 1 }
const MAX_SECONDS = 3600
const MAX_CONCURRENCY = 1024
const MAX_WATCHERS = 10_000
const MAX_ROUNDS = 20

export const USAGE = `usage: node dist/bench/compare/main.js [options]

Starts a 3-node hearsay cluster, a 3-member etcd cluster and a Redis primary with 2 replicas on
loopback (one system at a time), runs writes then reads against each, prints one table.

  --seconds N       length of each phase per system (default ${DEFAULT_OPTIONS.seconds})
  --warmup N        seconds of the same load before each phase, not measured, so a JIT's first
                    seconds do not count (default ${DEFAULT_OPTIONS.warmupSeconds}; 0: none)
  --concurrency N   operations in flight (default ${DEFAULT_OPTIONS.concurrency})
  --keys N          distinct keys the writes cycle through (default ${DEFAULT_OPTIONS.keys}, at most ${MAX_KEY_SPACE})
  --systems LIST    comma-separated subset of ${SYSTEM_NAMES.join(',')} (default all)
  --tls             run each system twice, plaintext and then with TLS between its servers and
                    to its clients (certificates from one CA), and show what TLS costs
  --watchers N      after the reads, a watch phase: N watchers on the written prefix while the
                    writes run again; watch latency and events/s (hearsay and etcd; default 0: none)
  --cas             add a compare-and-set phase after the reads: hearsay PUT ?ifVersion,
                    etcd txn comparing mod_revision (Redis has none and skips it)
  --rounds N        run the list of systems N times in turn and print each round's table,
                    then the median, lowest and highest of each hearsay ratio (default 1)
  --json            print the report as JSON instead of the table (an array of reports
                    with --rounds above 1)
  --help            show this text`

export class UsageError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'UsageError'
  }
}

/** Undefined when --help was asked for. */
export function parseCompareArgs(argv: readonly string[]): CompareOptions | undefined {
  let parsed
  try {
    parsed = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        seconds: { type: 'string' },
        warmup: { type: 'string' },
        concurrency: { type: 'string' },
        keys: { type: 'string' },
        systems: { type: 'string' },
        watchers: { type: 'string' },
        json: { type: 'boolean' },
        tls: { type: 'boolean' },
        cas: { type: 'boolean' },
        rounds: { type: 'string' },
        help: { type: 'boolean' },
      },
    })
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error))
  }
  const { values } = parsed
  if (values.help === true) return undefined
  return {
    seconds: integerFlag('--seconds', values.seconds, DEFAULT_OPTIONS.seconds, MAX_SECONDS),
    warmupSeconds: values.warmup === '0' ? 0 : integerFlag('--warmup', values.warmup, DEFAULT_OPTIONS.warmupSeconds, MAX_SECONDS),
    concurrency: integerFlag('--concurrency', values.concurrency, DEFAULT_OPTIONS.concurrency, MAX_CONCURRENCY),
    keys: integerFlag('--keys', values.keys, DEFAULT_OPTIONS.keys, MAX_KEY_SPACE),
    systems: values.systems === undefined ? DEFAULT_OPTIONS.systems : systemsFlag(values.systems),
    json: values.json === true,
    tls: values.tls === true,
    watchers: values.watchers === undefined ? DEFAULT_OPTIONS.watchers : integerFlag('--watchers', values.watchers, DEFAULT_OPTIONS.watchers, MAX_WATCHERS),
    cas: values.cas === true,
    rounds: integerFlag('--rounds', values.rounds, DEFAULT_OPTIONS.rounds, MAX_ROUNDS),
  }
}

function integerFlag(flag: string, text: string | undefined, fallback: number, max: number): number {
  if (text === undefined) return fallback
  const value = /^[0-9]+$/.test(text) ? Number(text) : NaN
  if (!Number.isSafeInteger(value) || value < 1 || value > max) throw new UsageError(`${flag} must be a whole number from 1 to ${max}, got ${JSON.stringify(text)}`)
  return value
}

function systemsFlag(text: string): SystemName[] {
  const names = text.split(',').map(name => name.trim()).filter(name => name !== '')
  const unknown = names.filter(name => !(SYSTEM_NAMES as readonly string[]).includes(name))
  if (names.length === 0 || unknown.length > 0) {
    throw new UsageError(`--systems takes a comma-separated subset of ${SYSTEM_NAMES.join(',')}, got ${JSON.stringify(text)}`)
  }
  // Keep the canonical order so the table always reads hearsay, etcd, redis.
  return SYSTEM_NAMES.filter(name => names.includes(name))
}
