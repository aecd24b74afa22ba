import { setTimeout as sleep } from 'node:timers/promises'
import type { HearsayClient } from '../client/client.js'
import type { AckedWrite } from './workload.js'

/** Sampled writes per run at most, so probing stays a small load beside the one measured. */
export const MAX_STALENESS_SAMPLES = 1000

/** R=1 reads of sampled keys from every node at one moment; reads = stale + fresh + failed. */
export interface StalenessPhase {
  readonly reads: number
  /** The node returned no value or an older version than the acknowledged write. */
  readonly stale: number
  /** The node returned the acknowledged version or a newer one. */
  readonly fresh: number
  /** The read itself failed (timeout, 503, connection). */
  readonly failed: number
}

export interface StalenessCounts {
  readonly sampledWrites: number
  /** Nodes read per sampled write; reads per phase = sampledWrites × nodes. */
  readonly nodes: number
  readonly settleMs: number
  /** Read right after the write was acknowledged. */
  readonly immediate: StalenessPhase
  /** Read again settleMs after the acknowledgement. */
  readonly afterSettle: StalenessPhase
}

export interface StalenessProbeOptions {
  /** One single-node client per node, so each read is answered by that node's own replica. */
  readonly readers: readonly HearsayClient[]
  readonly sampleEvery: number
  readonly settleMs: number
  readonly maxSamples?: number
}

type ReadVerdict = 'stale' | 'fresh' | 'failed'

class PhaseCounter {
  reads = 0
  stale = 0
  fresh = 0
  failed = 0

  add(verdict: ReadVerdict): void {
    this.reads++
    this[verdict]++
  }

  snapshot(): StalenessPhase {
    return { reads: this.reads, stale: this.stale, fresh: this.fresh, failed: this.failed }
  }
}

/**
 * Measures what W leaves behind: for every k-th acknowledged write, how many replicas still
 * answer an R=1 read with the old value right away, and how many after a settle delay.
 */
export class StalenessProbe {
  readonly #readers: readonly HearsayClient[]
  readonly #sampleEvery: number
  readonly #settleMs: number
  readonly #maxSamples: number
  readonly #immediate = new PhaseCounter()
  readonly #afterSettle = new PhaseCounter()
  readonly #pending = new Set<Promise<void>>()
  #acked = 0
  #sampled = 0

  constructor(options: StalenessProbeOptions) {
    if (options.readers.length === 0) throw new RangeError('a staleness probe needs at least one node to read from')
    this.#readers = options.readers
    this.#sampleEvery = options.sampleEvery
    this.#settleMs = options.settleMs
    this.#maxSamples = options.maxSamples ?? MAX_STALENESS_SAMPLES
  }

  /** Called for every acknowledged write; probes the sampled ones in the background. */
  onAckedWrite(write: AckedWrite): void {
    if (this.#acked++ % this.#sampleEvery !== 0 || this.#sampled >= this.#maxSamples) return
    this.#sampled++
    const probe = this.#probe(write).finally(() => this.#pending.delete(probe))
    this.#pending.add(probe)
  }

  /** Waits for the probes still running (each read is bounded by its client's timeout). */
  async finish(): Promise<StalenessCounts> {
    while (this.#pending.size > 0) await Promise.all([...this.#pending])
    return {
      sampledWrites: this.#sampled,
      nodes: this.#readers.length,
      settleMs: this.#settleMs,
      immediate: this.#immediate.snapshot(),
      afterSettle: this.#afterSettle.snapshot(),
    }
  }

  async #probe(write: AckedWrite): Promise<void> {
    const settled = sleep(this.#settleMs)
    await this.#readAll(write, this.#immediate)
    await settled
    await this.#readAll(write, this.#afterSettle)
  }

  async #readAll(write: AckedWrite, counter: PhaseCounter): Promise<void> {
    const verdicts = await Promise.all(this.#readers.map(reader => readVerdict(reader, write)))
    for (const verdict of verdicts) counter.add(verdict)
  }
}

async function readVerdict(reader: HearsayClient, write: AckedWrite): Promise<ReadVerdict> {
  try {
    const reply = await reader.get(write.key, { r: 1 })
    // Version strings sort like the versions they print (DESIGN.md), so plain string order is version order.
    return reply === undefined || reply.version < write.version ? 'stale' : 'fresh'
  } catch {
    return 'failed'
  }
}
