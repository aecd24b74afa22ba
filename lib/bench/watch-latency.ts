import { HearsayClient } from '../client/client.js'
import { drain, FanoutLatency, type FanoutStats } from './fanout-latency.js'
import type { AckedWrite } from './workload.js'

/** How long to wait for the watchers to open (each delivers the start marker), per run. */
export const WATCH_OPEN_TIMEOUT_MS = 30_000
/** After the load, how long deliveries still owed may take before they count as missed. */
export const WATCH_DRAIN_TIMEOUT_MS = 5_000
const OPEN_POLL_MS = 50

/** What the watchers of `hearsay bench --watchers` saw of the run's puts. */
export interface WatchStats extends FanoutStats {
  /** Times a watcher moved to another node (a failed or cut stream). */
  readonly reconnects: number
}

export interface WatchProbeOptions {
  readonly watchers: number
  readonly nodes: readonly string[]
  readonly token?: string
  readonly timeoutMs?: number
  /** The prefix every put of the load writes under. */
  readonly prefix: string
}

/**
 * `hearsay bench --watchers N`: N watches (client.watch, the library path users get) on the
 * prefix the load writes, spread over the nodes, and for every acknowledged put the time until
 * each watcher delivers it (lib/bench/fanout-latency.ts), the version naming the write.
 */
export class WatchLatencyProbe {
  readonly #options: WatchProbeOptions
  readonly #latency: FanoutLatency
  readonly #clients: HearsayClient[] = []
  /** One per watcher: a signal shared by hundreds of streams would collect hundreds of listeners. */
  readonly #aborts: AbortController[] = []
  readonly #draining: Promise<void>[] = []
  #reconnects = 0
  #failure: unknown

  constructor(options: WatchProbeOptions) {
    this.#options = options
    this.#latency = new FanoutLatency(options.watchers)
  }

  /**
   * Writes a start marker through the first node, then opens the watchers from its version and
   * resolves once every one of them has delivered it: from then on each sees every change.
   */
  async open(): Promise<void> {
    const { nodes, watchers, prefix, token, timeoutMs } = this.#options
    const marker = `${prefix}watch-start`
    const writer = new HearsayClient({ nodes: [...nodes], token, timeoutMs })
    let since: string
    try {
      since = (await writer.put(marker, String(Date.now()))).version
    } finally {
      writer.close()
    }
    let opened = 0
    for (let i = 0; i < watchers; i++) {
      // Watcher i starts at node i mod n and fails over along the rest of the list.
      const first = i % nodes.length
      const client = new HearsayClient({ nodes: [...nodes.slice(first), ...nodes.slice(0, first)], token, timeoutMs })
      this.#clients.push(client)
      let seenMarker = false
      const abort = new AbortController()
      this.#aborts.push(abort)
      const watch = client.watch(prefix, { since, signal: abort.signal, onReconnect: () => { this.#reconnects++ } })
      this.#draining.push((async () => {
        for await (const change of watch) {
          if (!seenMarker && change.key === marker) {
            seenMarker = true
            opened++
          } else {
            this.#latency.delivered(change.version)
          }
        }
      })().catch((err: unknown) => { this.#failure ??= err }))
    }
    const deadline = performance.now() + WATCH_OPEN_TIMEOUT_MS
    while (opened < watchers) {
      if (this.#failure !== undefined) throw this.#failure
      if (performance.now() > deadline) throw new Error(`only ${opened} of ${watchers} watchers opened within ${WATCH_OPEN_TIMEOUT_MS} ms`)
      await new Promise(resolve => setTimeout(resolve, OPEN_POLL_MS))
    }
  }

  /** Puts issued before `atMs` (performance.now()) are the warm-up, as in the closed loop. */
  measureFrom(atMs: number): void {
    this.#latency.measureFrom(atMs)
  }

  onAckedWrite(write: AckedWrite): void {
    this.#latency.acked(write.version, write.startedAtMs)
  }

  /** Call when the load has ended (`elapsedMs` its measured time): waits, bounded, for what is owed, then closes. */
  async finish(elapsedMs: number): Promise<WatchStats> {
    await drain(this.#latency, WATCH_DRAIN_TIMEOUT_MS, () => this.#failure !== undefined)
    const stats = this.#latency.stats(elapsedMs)
    this.close()
    await Promise.all(this.#draining)
    if (this.#failure !== undefined) throw this.#failure
    return { ...stats, reconnects: this.#reconnects }
  }

  /** Ends every watch; safe to call twice. */
  close(): void {
    for (const abort of this.#aborts) abort.abort()
    for (const client of this.#clients) client.close()
  }
}
