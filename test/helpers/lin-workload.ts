import type { Version } from './linearizability.js'
import type { HistoryRecorder } from './lin-recorder.js'

/**
 * Concurrent clients for linearizability tests: each loops over a handful of keys doing
 * compare-and-set (read-modify-write from the last version it saw), increments on counter keys,
 * the odd delete, and linearizable reads, through a node picked at random per operation. Values
 * are unique per write (`c<client>-<n>`), which lets the checker tell writes apart.
 */

export interface WorkloadOptions {
  /** Base URLs of the nodes; `nodes()` is asked before each operation so a test can swap them. */
  readonly nodes: () => readonly string[]
  readonly registerKeys: readonly string[]
  readonly counterKeys: readonly string[]
  readonly clients: number
  /** Each client stops after this many operations, or when `stop()` says so. */
  readonly opsPerClient: number
  readonly stop?: () => boolean
  /** Deterministic choices: the seed and the test print it. */
  readonly seed: number
  /** Pause between one client's operations (ms), so faults land amid a steady trickle. */
  readonly pauseMs?: number
}

export interface WorkloadSummary {
  readonly sent: number
  /** Counts by output kind: ok, fail, unknown, read; `omitted` for answers left out. */
  readonly outcomes: Record<string, number>
}

/** A small deterministic generator (mulberry32), one per client. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let z = state
    z = Math.imul(z ^ (z >>> 15), z | 1)
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61)
    return ((z ^ (z >>> 14)) >>> 0) / 4294967296
  }
}

export async function runWorkload(recorder: HistoryRecorder, options: WorkloadOptions): Promise<WorkloadSummary> {
  const outcomes: Record<string, number> = {}
  let sent = 0
  const count = (kind: string): void => { outcomes[kind] = (outcomes[kind] ?? 0) + 1 }
  const client = async (id: number): Promise<void> => {
    const random = seededRandom(options.seed * 1000 + id)
    const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!
    /** The version this client last saw per register key (undefined: never looked; null: absent). */
    const seen = new Map<string, Version | null>()
    for (let n = 0; n < options.opsPerClient && options.stop?.() !== true; n++) {
      const node = pick(options.nodes())
      const roll = random()
      sent++
      let output
      if (roll < 0.35 && options.counterKeys.length > 0) {
        output = await recorder.incr(node, pick(options.counterKeys), id, BigInt(1 + Math.floor(random() * 3)))
      } else if (roll < 0.6) {
        const key = random() < 0.5 || options.counterKeys.length === 0 ? pick(options.registerKeys) : pick(options.counterKeys)
        output = await recorder.read(node, key, id)
        if (output?.kind === 'read' && options.registerKeys.includes(key)) seen.set(key, output.version)
      } else {
        const key = pick(options.registerKeys)
        const ifVersion = seen.has(key) ? seen.get(key)! : null
        if (ifVersion !== null && random() < 0.1) {
          output = await recorder.delete(node, key, id, ifVersion)
          if (output?.kind === 'ok') seen.set(key, null)
        } else {
          output = await recorder.cas(node, key, id, ifVersion, `c${id}-${n}`)
          if (output?.kind === 'ok') seen.set(key, output.version)
        }
        if (output?.kind === 'fail' && output.currentVersion !== undefined) seen.set(key, output.currentVersion)
        if (output?.kind === 'unknown') seen.delete(key)
      }
      count(output?.kind ?? 'omitted')
      if (options.pauseMs !== undefined && options.pauseMs > 0) await new Promise((r) => setTimeout(r, options.pauseMs))
    }
  }
  await Promise.all(Array.from({ length: options.clients }, (_, i) => client(i + 1)))
  return { sent, outcomes }
}
