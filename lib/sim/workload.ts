import { compareVersions, formatVersion, parseVersion, type Version } from '../clock/version.js'
import { HearsayError } from '../errors.js'
import type { ConsistencyLevel } from '../replication/consistency.js'
import type { SimCluster } from './cluster.js'

/**
 * Client operations against a simulated cluster, through each node's KvService (the coordinator
 * behind the same guards the HTTP API uses), and the history of what the clients were told.
 */

/**
 * - ok: acknowledged (the write reached W replicas; the read answered).
 * - unknown: not acknowledged, but it may have been applied and may still win (a 503 with
 *   `outcome: unknown`, or the coordinator crashed before answering).
 * - refused: turned away before anything was versioned or applied (repairing, clock skewed).
 * - pending: no answer by the end of the run (the coordinating node crashed): as unknown.
 */
export type OpOutcome = 'ok' | 'unknown' | 'refused' | 'failed' | 'pending'

export interface OpRecord {
  readonly id: number
  readonly kind: 'put' | 'delete' | 'get'
  readonly key: string
  /** The value a put wrote: unique per operation, so a read or a final record names its write. */
  readonly value: string | undefined
  readonly node: string
  readonly level: ConsistencyLevel
  /** Simulated (true, unskewed) time the client sent it and got the answer. */
  readonly invokedAtMs: number
  completedAtMs: number | undefined
  outcome: OpOutcome
  /** A write's version, when the answer said it (acknowledged or outcome unknown). */
  version: Version | undefined
  /** A read's answer: the value (null = absent) and its version. */
  read: { readonly value: string | null; readonly version: Version | undefined } | undefined
  error: string | undefined
}

export class History {
  readonly ops: OpRecord[] = []
  /** Values a put wrote → its op, to name the write behind a stored record. */
  readonly #byValue = new Map<string, OpRecord>()

  /** Sends one operation to node `index` (down: recorded as refused at once). */
  invoke(cluster: SimCluster, index: number, kind: OpRecord['kind'], key: string, level: ConsistencyLevel): OpRecord {
    const node = cluster.nodes[index]
    if (node === undefined) throw new RangeError(`no node ${index}`)
    const id = this.ops.length
    const value = kind === 'put' ? `v${id}` : undefined
    const op: OpRecord = {
      id, kind, key, value, node: node.name, level, invokedAtMs: cluster.clock.nowMs(),
      completedAtMs: undefined, outcome: 'pending', version: undefined, read: undefined, error: undefined,
    }
    this.ops.push(op)
    if (value !== undefined) this.#byValue.set(value, op)
    const kv = node.parts?.kv
    if (kv === undefined) {
      op.outcome = 'refused'
      op.error = 'the node is down'
      op.completedAtMs = op.invokedAtMs
      return op
    }
    const done = (): void => { op.completedAtMs = cluster.clock.nowMs() }
    const running = kind === 'get'
      ? kv.get(key, { r: level }).then((result) => {
        op.outcome = 'ok'
        op.read = result === undefined ? { value: null, version: undefined } : { value: Buffer.from(result.value).toString(), version: result.version }
      })
      : (kind === 'put' ? kv.put(key, Buffer.from(value as string), { w: level }) : kv.delete(key, { w: level })).then((result) => {
        op.outcome = 'ok'
        op.version = result.version
      })
    running.then(done, (error: unknown) => {
      done()
      op.error = error instanceof Error ? error.message : String(error)
      if (kind === 'get') {
        op.outcome = 'failed'
        return
      }
      const details = error instanceof HearsayError ? error.details : {}
      op.version = versionOf(details['version'])
      // Conservative: only an answer that says so counts as refused (nothing applied anywhere).
      op.outcome = error instanceof HearsayError && error.status === 503 && details['outcome'] !== 'unknown' && op.version === undefined ? 'refused' : 'unknown'
    })
    return op
  }

  /** The put that wrote `value`, if a client of this run did. */
  writerOf(value: string): OpRecord | undefined {
    return this.#byValue.get(value)
  }

  /** Every put and delete, by key, in the order they were sent. */
  writesByKey(): Map<string, OpRecord[]> {
    const byKey = new Map<string, OpRecord[]>()
    for (const op of this.ops) {
      if (op.kind === 'get') continue
      const list = byKey.get(op.key) ?? []
      list.push(op)
      byKey.set(op.key, list)
    }
    return byKey
  }

  /** One line per operation, for --verbose. */
  describe(op: OpRecord): string {
    const at = `${op.invokedAtMs}→${op.completedAtMs ?? '…'}`
    const what = op.kind === 'put' ? `put ${op.key}=${op.value}` : `${op.kind} ${op.key}`
    const answer = op.read !== undefined ? ` read ${op.read.value ?? '∅'}` : op.version !== undefined ? ` @${formatVersion(op.version)}` : ''
    return `#${op.id} ${at} ${op.node} ${what} w/r=${op.level}: ${op.outcome}${answer}${op.error === undefined ? '' : ` (${op.error})`}`
  }
}

/** The newest of some versions. */
export function newest<T extends { readonly version: Version | undefined }>(items: readonly T[]): T | undefined {
  let best: T | undefined
  for (const item of items) {
    if (item.version !== undefined && (best?.version === undefined || compareVersions(item.version, best.version) > 0)) best = item
  }
  return best
}

function versionOf(value: unknown): Version | undefined {
  if (typeof value === 'object' && value !== null && typeof (value as Version).hlc === 'number' && typeof (value as Version).node === 'string') return value as Version
  if (typeof value !== 'string') return undefined
  try {
    return parseVersion(value)
  } catch {
    return undefined
  }
}
