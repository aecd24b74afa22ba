import type { WriteOp } from '../cluster/history.js'
import { sleep, type FaultCluster } from './cluster.js'

/**
 * Client operations with their outcomes recorded for the history checker, and a bounded
 * closed-loop load of them: a fixed number of workers, each sending one write or delete at a time
 * and pausing between them, so the offered load stays bounded whatever the cluster does.
 */

/** Client-side deadline of one write: above replication.timeoutMs, so the node answers first. */
const WRITE_TIMEOUT_MS = 6_000

export type WriteLevel = 'one' | 'quorum' | 'all'

export interface RecordedOp extends WriteOp {
  readonly kind: 'put' | 'delete'
  readonly invokedAtMs: number
  readonly completedAtMs: number
  readonly w: WriteLevel
  /** HTTP status, absent when no answer came (connection refused, timeout). */
  readonly status?: number
  readonly error?: string
  /** The 503 body's `outcome` field, and whether it was a quorum 503 (it names `needed`). */
  readonly quorum503?: { readonly outcome: string | undefined }
}

/** Sends one write (value given) or delete (value undefined) through node `index`, and records it. */
export async function sendWrite(cluster: FaultCluster, index: number, key: string, value: string | undefined, w: WriteLevel): Promise<RecordedOp> {
  const node = cluster.nodes[index]!
  const invokedAtMs = Date.now()
  const url = `${node.url}/kv/${encodeURIComponent(key)}?w=${w}`
  const answer = value === undefined
    ? await cluster.request('DELETE', url, WRITE_TIMEOUT_MS)
    : await cluster.request('PUT', url, WRITE_TIMEOUT_MS, value)
  const completedAtMs = Date.now()
  const base = { node: node.name, key, value: value ?? '', kind: value === undefined ? 'delete' as const : 'put' as const, invokedAtMs, completedAtMs, w }
  if (answer.status === undefined) return { ...base, outcome: 'failed', error: answer.error ?? 'no answer' }
  const body = parseJson(answer.body)
  const version = typeof body?.['version'] === 'string' ? body['version'] : undefined
  const withVersion = version !== undefined ? { version } : {}
  if (answer.status === 200 && version !== undefined) return { ...base, ...withVersion, outcome: 'ok', status: 200 }
  const quorum503 = answer.status === 503 && body !== undefined && 'needed' in body
    ? { quorum503: { outcome: typeof body['outcome'] === 'string' ? body['outcome'] : undefined } }
    : {}
  const error = typeof body?.['error'] === 'string' ? body['error'] : (answer.body ?? '').slice(0, 200)
  return { ...base, ...withVersion, ...quorum503, outcome: 'failed', status: answer.status, error }
}

export interface LoadOptions {
  /** Every key is `${prefix}${n}` with n below `keys`. */
  readonly prefix: string
  readonly keys: number
  readonly workers: number
  /** Pause of each worker between two operations. */
  readonly pauseMs: number
  /** Share of operations that are deletes (0…1). */
  readonly deleteShare: number
  readonly w: WriteLevel
  /** Nodes (0-based) the workers send to, round robin; changeable while running. */
  coordinators: readonly number[]
  readonly seed: number
}

export class Load {
  readonly ops: RecordedOp[] = []
  private running = false
  private workers: Promise<void>[] = []
  private sequence = 0
  private readonly random: () => number

  constructor(private readonly cluster: FaultCluster, readonly options: LoadOptions) {
    this.random = mulberry32(options.seed)
    cluster.track(this)
  }

  start(): void {
    this.running = true
    for (let w = 0; w < this.options.workers; w++) this.workers.push(this.work())
  }

  async stop(): Promise<void> {
    this.running = false
    await Promise.all(this.workers)
    this.workers = []
  }

  private async work(): Promise<void> {
    while (this.running) {
      const { options } = this
      const n = this.sequence++
      const key = `${options.prefix}${Math.floor(this.random() * options.keys)}`
      const coordinator = options.coordinators[n % options.coordinators.length]!
      const value = this.random() < options.deleteShare ? undefined : `${options.prefix}v${n}`
      this.ops.push(await sendWrite(this.cluster, coordinator, key, value, options.w))
      await sleep(options.pauseMs)
    }
  }
}

/** Small seeded PRNG (mulberry32): the same seed gives the same keys and operation mix. */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function parseJson(text: string | undefined): Record<string, unknown> | undefined {
  if (text === undefined) return undefined
  try {
    const value = JSON.parse(text) as unknown
    return typeof value === 'object' && value !== null ? value as Record<string, unknown> : undefined
  } catch {
    return undefined
  }
}
