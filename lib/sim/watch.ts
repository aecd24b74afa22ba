import { compareVersions, formatVersion, parseVersion, type Version } from '../clock/version.js'
import { DeliveredVersions } from '../client/watch-dedupe.js'
import { HearsayError } from '../errors.js'
import { repeatEvery, type Repeating } from '../runtime/clock.js'
import { createRandom, type Random } from '../runtime/random.js'
import type { WatchEvent } from '../watch/event.js'
import type { Watcher } from '../watch/watcher.js'
import type { SimCluster } from './cluster.js'
import { settledRecord } from './oracles.js'
import { randomFaults, type Scenario } from './run.js'

/**
 * Watches in the simulator (docs/consistency.md "Watches"): one client watches every key
 * through one node the whole run, as `client.watch` does — when its watch is cut or its node
 * goes down it resumes on a random up node with `since` = the newest version it delivered, and
 * it delivers each key's versions once and in increasing order (the client library's own
 * DeliveredVersions). Once the faults are over and the replicas agree, every key's newest
 * delivered event must be the version the key settled on (a delete, or nothing, where the key
 * settled absent): a watch misses no change that lasts.
 */

/** How often the client notices that its node went down (a reset connection) and resumes. */
const CHECK_INTERVAL_MS = 100
/** How long after the replicas agree the newest changes may take to reach the watch (polls, resume). */
export const WATCH_SETTLE_MAX_MS = 30_000
/**
 * The resume margin the watch scenario runs with: longer than any fault plus the settling, so a
 * change that reached a node while the client watched elsewhere is within every replay — the
 * documented bound on what a resume may miss is exactly this margin (docs/consistency.md).
 */
export const SIM_WATCH_RESUME_MARGIN_MS = 180_000

export class SimWatchClient {
  readonly #cluster: SimCluster
  readonly #random: Random
  readonly #event: (line: string) => void
  /** The node watched, its start count when the watch opened, and the open watch. */
  #index: number | undefined
  #starts = 0
  #watcher: Watcher | undefined
  /** What client.watch keeps: the newest version delivered per key, and the resume point. */
  readonly #delivered = new DeliveredVersions(SIM_WATCH_RESUME_MARGIN_MS, Number.MAX_SAFE_INTEGER)
  /** Newest delivered event per key, over every watch the client opened. */
  readonly #newest = new Map<string, WatchEvent>()
  /** Newest version received per key on the current watch (before the client's filter). */
  #onThisWatch = new Map<string, Version>()
  #timer: Repeating | undefined
  readonly problems: string[] = []
  opens = 0
  events = 0
  /** Events a watch sent older than one it had already sent for the same key (a replica failover re-sends from another change log). */
  olderOnOneWatch = 0

  constructor(cluster: SimCluster, random: Random, event: (line: string) => void) {
    this.#cluster = cluster
    this.#random = random
    this.#event = event
  }

  start(): void {
    this.#timer = repeatEvery(this.#cluster.clock, CHECK_INTERVAL_MS, () => this.#check())
    this.#check()
  }

  stop(): void {
    this.#timer?.stop()
    this.#watcher?.close()
    this.#watcher = undefined
  }

  /**
   * Keys whose newest delivered event is not what they settled on: the settled version, or a
   * delete (or nothing) where the key settled absent.
   */
  missing(keys: Iterable<string>): string[] {
    const missing: string[] = []
    for (const key of keys) {
      const settled = settledRecord(this.#cluster, key)
      const newest = this.#newest.get(key)
      if (settled === undefined) {
        if (newest !== undefined && newest.value !== null) missing.push(`${key}: settled absent, the watch last delivered a put @${formatVersion(newest.version)}`)
      } else if (newest === undefined || compareVersions(newest.version, settled.version) !== 0) {
        missing.push(`${key}: settled @${formatVersion(settled.version)}, the watch last delivered ${newest === undefined ? 'nothing' : `@${formatVersion(newest.version)}`}`)
      }
    }
    return missing
  }

  #check(): void {
    const node = this.#index === undefined ? undefined : this.#cluster.nodes[this.#index]
    const open = this.#watcher !== undefined && node?.up === true && node.starts === this.#starts
    if (!open) this.#open()
  }

  #open(): void {
    this.#watcher = undefined
    const up = this.#cluster.upNodes()
    if (up.length === 0) return
    const node = up[this.#random.int(up.length)]!
    this.#index = node.index
    this.#starts = node.starts
    this.#onThisWatch = new Map()
    const newest = this.#delivered.newest
    const since = newest === undefined ? undefined : parseVersion(newest)
    let watcher: Watcher | undefined
    try {
      watcher = node.parts!.watches.open(since === undefined ? { prefix: '' } : { prefix: '', since }, {
        capacity: () => Number.MAX_SAFE_INTEGER,
        write: (events) => { for (const event of events) this.#deliver(event) },
        cut: (reason) => {
          this.#event(`watch on ${node.name} cut: ${reason}`)
          if (this.#watcher === watcher) this.#watcher = undefined
        },
      })
    } catch (error) {
      // A 503 (shutting down, too many watchers) is retried at the next check; a 410 is a finding.
      if (error instanceof HearsayError && error.status === 410) this.problems.push(`resume on ${node.name} from ${since === undefined ? 'now' : formatVersion(since)} answered 410: ${error.message}`)
      this.#event(`watch on ${node.name} refused: ${error instanceof Error ? error.message : String(error)}`)
      return
    }
    this.#watcher = watcher
    this.opens++
    this.#event(`watch opened on ${node.name}${since === undefined ? '' : ` since ${formatVersion(since)}`}`)
  }

  #deliver(event: WatchEvent): void {
    const previous = this.#onThisWatch.get(event.key)
    if (previous !== undefined && compareVersions(event.version, previous) < 0) this.olderOnOneWatch++
    else this.#onThisWatch.set(event.key, event.version)
    if (!this.#delivered.admit(event.key, formatVersion(event.version))) return
    this.events++
    const newest = this.#newest.get(event.key)
    if (newest !== undefined && compareVersions(event.version, newest.version) <= 0) {
      this.problems.push(`${event.key} @${formatVersion(event.version)} delivered after @${formatVersion(newest.version)}`)
    }
    this.#newest.set(event.key, event)
  }
}

/** Random faults and load while one client watches every key; then its view must match the settled store. */
export const watchRandomScenario: Scenario = randomFaults('watch-random', 20_000, 40_000, {
  config: (base) => ({ ...base, watch: { ...base.watch, resumeMarginMs: SIM_WATCH_RESUME_MARGIN_MS } }),
  async around(context, run) {
    const client = new SimWatchClient(context.cluster, createRandom(context.random.int(2 ** 32)), context.event)
    client.start()
    try {
      await run()
      const keys = [...context.history.writesByKey().keys()]
      const tookMs = await context.cluster.runUntil(() => client.missing(keys).length === 0, WATCH_SETTLE_MAX_MS, 200)
      if (tookMs === undefined) for (const line of client.missing(keys)) context.violate('watch missed a change', line)
      else context.event(`the watch delivered every key's settled version ${tookMs} ms after the replicas agreed (${client.events} events over ${client.opens} watches; ${client.olderOnOneWatch} older versions re-sent on one watch, dropped by the client)`)
      for (const problem of client.problems) context.violate('watch order', problem)
    } finally {
      client.stop()
    }
  },
})
