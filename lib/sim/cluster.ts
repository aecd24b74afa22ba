import { pino, type Logger } from 'pino'
import { segmentIndexOptions } from '../antientropy/segments.js'
import type { HearsayConfig } from '../config/types.js'
import { loadConfig } from '../config/load.js'
import { loadRecordDigester, type RecordDigester } from '../merkle/digest.js'
import { createMetrics, type Metrics } from '../metrics/metrics.js'
import { loadHasher, type Hasher } from '../placement/hash.js'
import { FakeClock } from '../runtime/clock.js'
import { createRandom, type Random } from '../runtime/random.js'
import { ClockScheduler } from '../runtime/scheduler.js'
import { MemoryNetwork, type DeliveryEvent } from '../transport/memory-network.js'
import { wireNode, type WiredNode } from '../wiring.js'
import { emptyStoreState, MemoryStore, type MemoryStoreState } from './memory-store.js'
import { NodeClock } from './node-clock.js'

/**
 * N hearsay nodes wired with the real modules (lib/wiring.ts) over the in-memory network, on one
 * fake time base: each node reads it through its own NodeClock (its skew), draws from its own
 * seeded Random, and keeps its data in a MemoryStoreState that outlives a crash. Nothing here
 * reads the system clock or the OS's randomness, so a cluster is a function of its seed and of
 * what is done to it.
 */

/** Where simulated time starts: a plausible wall clock, so HLC readings look like the daemon's. */
export const SIM_EPOCH_MS = 1_767_225_600_000

/** How long a simulated node's acceptor journal sync takes (a disk's fdatasync, a little above this machine's). */
const SIM_JOURNAL_SYNC_MS = 2

export interface SimClusterOptions {
  readonly seed: number
  readonly nodeCount: number
  /** Config of every node, over simDefaults(). */
  readonly config?: (base: HearsayConfig) => HearsayConfig
  readonly log?: Logger
  /** Every message's fate, for the trace. */
  readonly onDelivery?: (event: DeliveryEvent) => void
}

export interface SimNode {
  readonly index: number
  readonly name: string
  readonly peer: string
  readonly api: string
  /** The node's data dir: survives crashes. */
  readonly state: MemoryStoreState
  /** Seeds each (re)start's Random. */
  readonly seeds: Random
  /** Wall-clock skew applied at the next start and now, in ms. */
  skewMs: number
  /** When (true time) the skew changed: a node learns of its own skew only by probing. */
  readonly skewChangesAtMs: number[]
  up: boolean
  /** True times at which the node was seen repairing after an absence past the grace. */
  readonly repairingAtMs: number[]
  clock: NodeClock | undefined
  store: MemoryStore | undefined
  parts: WiredNode | undefined
  starts: number
}

interface Shared { readonly digester: RecordDigester; readonly hasher: Hasher; readonly metrics: Metrics; readonly defaults: HearsayConfig }
let shared: Promise<Shared> | undefined

/**
 * What every simulated node shares: the hash functions (wasm, loaded once), one Metrics (metrics
 * are only written by the protocol, never read, so one registry serves every node and run), and
 * the default config.
 */
function loadShared(): Promise<Shared> {
  shared ??= (async () => ({
    digester: await loadRecordDigester(),
    hasher: await loadHasher(),
    metrics: createMetrics(),
    defaults: loadConfig({ files: [], env: {} }).config,
  }))()
  return shared
}

/**
 * Defaults for a simulated node: 16 partitions (trees and placement stay cheap), anti-entropy
 * every 5 s, a tombstone grace of 8 s and GC every second, so a minute of simulated time sees
 * deletes collected, absences past the grace and repairs. Hints expire after 6 s: shorter than
 * the grace, as docs/consistency.md asks of every deployment.
 */
export function simDefaults(base: HearsayConfig): HearsayConfig {
  return {
    ...base,
    partitions: 16,
    replication: { ...base.replication, hintWindowMs: 6000 },
    antiEntropy: { ...base.antiEntropy, schedule: '*/5 * * * * *' },
    store: { ...base.store, tombstoneGrace: 8000, tombstoneGraceMs: 8000, gcIntervalMs: 1000 },
    log: { level: 'silent' },
  }
}

export class SimCluster {
  readonly clock: FakeClock
  readonly network: MemoryNetwork
  readonly nodes: SimNode[] = []
  readonly config: HearsayConfig
  readonly #shared: Shared
  readonly #log: Logger

  private constructor(options: SimClusterOptions, shared: Shared, master: Random) {
    this.#shared = shared
    this.#log = options.log ?? pino({ level: 'silent' })
    this.clock = new FakeClock(SIM_EPOCH_MS)
    this.network = new MemoryNetwork({
      seed: master.int(2 ** 32),
      clock: this.clock,
      conditions: { delayMs: { minMs: 1, maxMs: 5 } },
      log: this.#log,
      ...(options.onDelivery === undefined ? {} : { onDelivery: options.onDelivery }),
    })
    const base = simDefaults(shared.defaults)
    this.config = options.config === undefined ? base : options.config(base)
    for (let index = 0; index < options.nodeCount; index++) {
      const state = emptyStoreState()
      const seeds = createRandom(master.int(2 ** 32))
      // The node id is made once per data dir; made here from the seed, not from the OS.
      state.meta.putNow('nodeId', seeds.int(2 ** 32).toString(16).padStart(8, '0') + seeds.int(2 ** 32).toString(16).padStart(8, '0'))
      this.nodes.push({
        index, name: `n${index}`, peer: `n${index}.sim:7946`, api: `n${index}.sim:7070`, state, seeds,
        skewMs: 0, skewChangesAtMs: [], up: false, repairingAtMs: [], clock: undefined, store: undefined, parts: undefined, starts: 0,
      })
    }
  }

  static async create(options: SimClusterOptions): Promise<SimCluster> {
    return new SimCluster(options, await loadShared(), createRandom(options.seed))
  }

  /** Starts (or restarts) node `index` on its stored state; it joins through node 0 (or alone, for node 0). */
  async start(index: number): Promise<void> {
    const node = this.#node(index)
    if (node.up) throw new Error(`${node.name} is already up`)
    const clock = new NodeClock(this.clock, node.skewMs)
    const random = createRandom(node.seeds.int(2 ** 32))
    // An acceptor journal sync takes simulated time, so a crash can fall between an accept and its sync.
    const store = new MemoryStore(node.state, segmentIndexOptions(this.#shared.digester, this.config.partitions), () => clock.nowMs(),
      (done) => { clock.setTimeout(done, SIM_JOURNAL_SYNC_MS) })
    const config = { ...this.config, node: { ...this.config.node, name: node.name } }
    node.clock = clock
    node.store = store
    node.up = true
    node.starts++
    node.parts = await wireNode({
      config,
      log: this.#log.child({ sim: node.name }),
      metrics: this.#shared.metrics,
      store,
      digester: this.#shared.digester,
      hasher: this.#shared.hasher,
      transport: (local) => this.network.transport(local),
      clock,
      random,
      scheduler: new ClockScheduler({ clock, random: createRandom(random.int(2 ** 32)) }),
      defer: (task) => { clock.setTimeout(task, 0) },
      advertised: { api: node.api, peer: node.peer },
    })
    const first = this.nodes[0]
    node.parts.start(first === undefined || index === 0 ? [] : [first.peer])
  }

  /** The process dies: no timer of it runs again, its links drop, its uncommitted work is gone. */
  crash(index: number): void {
    const node = this.#node(index)
    if (!node.up) return
    node.up = false
    node.clock?.halt()
    this.network.kill(node.peer)
    node.store?.crash()
    node.parts = undefined
    node.store = undefined
    node.clock = undefined
  }

  /** Cuts nodes `side` off from all the others (both directions) until the next heal. */
  split(side: readonly number[]): void {
    const cut = new Set(side)
    this.network.partition(side.map((i) => this.#node(i).peer), this.nodes.filter((node) => !cut.has(node.index)).map((node) => node.peer))
  }

  /** Sets node `index`'s wall-clock skew, now and for its later starts. */
  setSkew(index: number, skewMs: number): void {
    const node = this.#node(index)
    if (node.skewMs !== skewMs) node.skewChangesAtMs.push(this.clock.nowMs())
    node.skewMs = skewMs
    if (node.clock !== undefined) node.clock.skewMs = skewMs
  }

  upNodes(): SimNode[] {
    return this.nodes.filter((node) => node.up && node.parts !== undefined)
  }

  /** Runs every timer due within the next `ms` of simulated time. */
  async runFor(ms: number): Promise<void> {
    await this.clock.advance(ms)
    for (const node of this.nodes) {
      if (node.parts?.absence.repairRequired === true) node.repairingAtMs.push(this.clock.nowMs())
    }
  }

  /**
   * Runs until `predicate` holds (checked every `checkEveryMs`) or `maxMs` passed; the simulated
   * ms it took, or undefined when it never held.
   */
  async runUntil(predicate: () => boolean, maxMs: number, checkEveryMs = 100): Promise<number | undefined> {
    const startMs = this.clock.nowMs()
    for (;;) {
      if (predicate()) return this.clock.nowMs() - startMs
      if (this.clock.nowMs() - startMs >= maxMs) return undefined
      await this.runFor(checkEveryMs)
    }
  }

  #node(index: number): SimNode {
    const node = this.nodes[index]
    if (node === undefined) throw new RangeError(`no node ${index} in a cluster of ${this.nodes.length}`)
    return node
  }
}
