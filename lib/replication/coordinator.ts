import type { NodeId } from '../clock/version.js'
import type { StoredRecord } from '../store/record.js'
import { isLive } from '../store/record.js'
import { BadRequestError, QuorumNotMetError } from '../errors.js'
import { formatVersion } from '../clock/version.js'
import type { ConsistencyLevel } from './consistency.js'
import { requiredAcks } from './consistency.js'
import type {
  BatchOperation, KvService, ReadOptions, ReadResult, ScanOptions, ScanPage, WriteOptions, WriteResult,
} from './service.js'

/** The local replica as the coordinator needs it; lib/store's KvStore satisfies it. */
export interface LocalReplica {
  apply(key: string, record: StoredRecord): Promise<unknown>
  get(key: string): StoredRecord | undefined
  scan(options: { prefix: string; after?: string; limit: number; nowMs: number }): { items: { key: string; record: StoredRecord }[]; next: string | null }
}

export interface CoordinatorOptions {
  readonly localId: NodeId
  readonly local: LocalReplica
  /** Next HLC tick for a new write; may wait briefly for the clock's high-water mark. */
  readonly nextHlc: () => Promise<number>
  readonly nowMs: () => number
  /** N: replicas per key the cluster aims for (`replication.factor`). */
  readonly replicationFactor: number
  /** Members currently holding a key's partition, including this node; one node alone = 1. */
  readonly replicaCount: () => number
  readonly defaultWrite: ConsistencyLevel
  readonly defaultRead: ConsistencyLevel
  readonly maxScanLimit: number
  /** Largest TTL accepted, in seconds. */
  readonly maxTtlSeconds: number
}

/**
 * Coordinates client requests: versions writes with the HLC and waits for the consistency level.
 * On a single node the local commit is the only ack; a level that needs more replicas than the
 * cluster has answers 503 after committing locally, so the write is kept, not half-lost.
 */
export class Coordinator implements KvService {
  constructor(private readonly options: CoordinatorOptions) {}

  async put(key: string, value: Uint8Array, options: WriteOptions): Promise<WriteResult> {
    return this.write(key, value, options)
  }

  async delete(key: string, options: WriteOptions): Promise<WriteResult> {
    return this.write(key, null, { w: options.w })
  }

  async get(key: string, options: ReadOptions): Promise<ReadResult | undefined> {
    const needed = this.needed(options.r ?? this.options.defaultRead, 'r')
    const acks = 1
    if (acks < needed) throw new QuorumNotMetError('read', needed, acks)
    const record = this.options.local.get(key)
    if (record === undefined || !isLive(record, this.options.nowMs())) return undefined
    return { key, value: record.value as Uint8Array, version: record.version, ...(record.expiresAtMs !== undefined ? { expiresAtMs: record.expiresAtMs } : {}) }
  }

  async scan(options: ScanOptions): Promise<ScanPage> {
    const limit = Math.min(options.limit, this.options.maxScanLimit)
    const page = this.options.local.scan({ prefix: options.prefix, ...(options.after !== undefined ? { after: options.after } : {}), limit, nowMs: this.options.nowMs() })
    return {
      items: page.items.map(({ key, record }) => ({ key, value: record.value as Uint8Array, version: record.version })),
      next: page.next,
    }
  }

  async batch(operations: readonly BatchOperation[], options: WriteOptions): Promise<WriteResult[]> {
    // Every operation is versioned and committed in the same event-loop turn, so LMDB folds
    // them into one transaction; each still gets its own version and result.
    const settled = await Promise.allSettled(operations.map((op) => op.op === 'put'
      ? this.write(op.key, op.value, { w: options.w, ...(op.ttlSeconds !== undefined ? { ttlSeconds: op.ttlSeconds } : {}) })
      : this.write(op.key, null, { w: options.w })))
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected')
    if (failed) throw failed.reason
    return settled.map((s) => (s as PromiseFulfilledResult<WriteResult>).value)
  }

  private async write(key: string, value: Uint8Array | null, options: WriteOptions): Promise<WriteResult> {
    const needed = this.needed(options.w ?? this.options.defaultWrite, 'w')
    const ttl = options.ttlSeconds
    if (ttl !== undefined && (!Number.isInteger(ttl) || ttl < 1 || ttl > this.options.maxTtlSeconds)) {
      throw new BadRequestError(`ttl must be a whole number of seconds from 1 to ${this.options.maxTtlSeconds}, got ${ttl}`, { param: 'ttl' })
    }
    const version = { hlc: await this.options.nextHlc(), node: this.options.localId }
    const record: StoredRecord = {
      value,
      version,
      ...(value !== null && ttl !== undefined ? { expiresAtMs: this.options.nowMs() + ttl * 1000 } : {}),
    }
    await this.options.local.apply(key, record)
    const acks = 1
    if (acks < needed) throw new QuorumNotMetError('write', needed, acks, { version: formatVersion(version) })
    return { key, version, acks, needed }
  }

  /** Acks a level needs now; a number above N can never be met and is the caller's error. */
  private needed(level: ConsistencyLevel, what: 'w' | 'r'): number {
    if (typeof level === 'number' && level > this.options.replicationFactor) {
      throw new BadRequestError(`${what}=${level} exceeds the replication factor N=${this.options.replicationFactor}`, { param: what, n: this.options.replicationFactor })
    }
    if (typeof level === 'number') return level
    return requiredAcks(level, this.options.replicaCount(), what)
  }
}
