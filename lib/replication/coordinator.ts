import type { NodeId } from '../clock/version.js'
import { QuorumNotMetError, StrongKeyError, UnavailableError } from '../errors.js'
import type { KeyBounds } from '../store/keys.js'
import { sleep, type Clock } from '../runtime/clock.js'
import type { StoredRecord } from '../store/record.js'
import { compareRecords, isLive } from '../store/record.js'
import { TransportError, type PeerAddress, type PeerMessage } from '../transport/transport.js'
import type { ConsistencyLevel } from './consistency.js'
import { requiredAcks } from './consistency.js'
import { MAX_SCAN_REPLY_BYTES, SCAN_RECORD_OVERHEAD_BYTES, fromWire, scanPageOf, toWire, type ReplicaReadReplyBody, type ReplicaScanReplyBody, type ReplicaWriteReplyBody, type WireEntry } from './messages.js'
import type {
  BatchOperation, KvService, ReadOptions, ReadResult, ScanItem, ScanOptions, ScanPage, WriteOptions, WriteResult,
} from './service.js'

/** The local replica as the coordinator needs it; lib/store's KvStore satisfies it. */
export interface LocalReplica {
  apply(key: string, record: StoredRecord): Promise<{ readonly applied: boolean; readonly previous?: StoredRecord }>
  get(key: string): StoredRecord | undefined
  /** get(key)?.strong === true, cheaper where the store can tell without a decode. */
  isStrong?(key: string): boolean
  rawRange(options: { prefix?: string; after?: string; start?: string; end?: string; limit?: number }): Iterable<{ key: string; record: StoredRecord }>
}

/** What the coordinator needs to know about a member to reach it. */
/** How often a write waiting for replicas (waitForReplicasMs) looks at the member table again. */
const REPLICA_WAIT_POLL_MS = 50

export interface ReplicaMember {
  readonly peer: PeerAddress
  readonly state: 'alive' | 'suspect' | 'dead' | 'left'
}

export interface CoordinatorOptions {
  readonly localId: NodeId
  readonly local: LocalReplica
  /** Next HLC tick for a new write; may wait briefly for the clock's high-water mark. */
  readonly nextHlc: () => Promise<number>
  readonly nowMs: () => number
  /** The quorum deadline and the injected test delay run on it. */
  readonly clock: Clock
  /**
   * Merges a version read from another replica into the local clock; throws (ClockSkewError)
   * when it is beyond the skew bound, and the coordinator then ignores that answer, so read
   * repair never spreads a version from the future.
   */
  readonly observeHlc: (hlc: number) => void
  /** The replicas of a key's partition, best first (lib/placement). */
  readonly replicasFor: (key: string) => readonly NodeId[]
  /**
   * Members that take a leaving (decommissioning) replica's place once it is gone: they get each
   * write too, in the background and not counted toward W, hinted when they miss it
   * (lib/placement PlacementTable.pendingFor). Absent: none.
   */
  readonly pendingFor?: (key: string) => readonly NodeId[]
  /** Every member that is not `left`, by id, for addresses and liveness. */
  readonly member: (id: NodeId) => ReplicaMember | undefined
  /** Alive members other than this node (covering set for scans). */
  readonly aliveMembers: () => readonly NodeId[]
  /** True when this node replicates every partition (then a scan is local). */
  readonly holdsEverything: () => boolean
  readonly request: (to: PeerAddress, message: PeerMessage, timeoutMs: number) => Promise<PeerMessage>
  /** Stores a write for a replica that did not get it; undefined = hinted handoff is off. */
  readonly hint: ((owner: NodeId, entry: WireEntry) => Promise<unknown>) | undefined
  /** N: replicas per key (`replication.factor`). */
  readonly replicationFactor: number
  readonly timeoutMs: number
  /**
   * How long a write waits for W of its replicas to be alive before refusing with 503
   * (`replication.waitForReplicasMs`); 0 = no wait and no refusal: the write goes out, hints
   * stand in for the replicas that are down, and it answers 503 only if W acks do not arrive.
   */
  readonly waitForReplicasMs?: number
  readonly defaultWrite: ConsistencyLevel
  readonly defaultRead: ConsistencyLevel
  readonly maxScanLimit: number
  /** Most bytes of keys and values one scan page carries (`api.maxScanPageBytes`); at least one item. */
  readonly maxScanPageBytes: number
  /** TESTING ONLY (replication.testDelay*): ms to hold back one outgoing replica write. */
  readonly injectedDelayMs: () => number
  readonly onReadRepair: (count: number) => void
  readonly onQuorumFailure: (kind: 'write' | 'read') => void
  readonly onBackgroundError: (error: unknown, what: string) => void
}

/**
 * Coordinates client requests Dynamo-style. A write is versioned with the HLC, sent to the N
 * replicas of its partition (this node applies its own copy locally) and answered once W of them
 * made it durable; the others keep receiving it in the background, and a replica that is down or
 * does not answer gets a hint, so a write answered 503 is late, never half-lost. A read asks R
 * replicas, answers with the newest version, and repairs the stale ones it heard from.
 */
export class Coordinator implements KvService {
  constructor(private readonly options: CoordinatorOptions) {}

  async put(key: string, value: Uint8Array, options: WriteOptions): Promise<WriteResult> {
    return this.write(key, value, options)
  }

  async delete(key: string, options: WriteOptions): Promise<WriteResult> {
    return this.write(key, null, { w: options.w })
  }

  async batch(operations: readonly BatchOperation[], options: WriteOptions): Promise<WriteResult[]> {
    const settled = await Promise.allSettled(operations.map((op) => op.op === 'put'
      ? this.write(op.key, op.value, { w: options.w, ...(op.ttlSeconds !== undefined ? { ttlSeconds: op.ttlSeconds } : {}) })
      : this.write(op.key, null, { w: options.w })))
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected')
    if (failed) throw failed.reason
    return settled.map((s) => (s as PromiseFulfilledResult<WriteResult>).value)
  }

  async get(key: string, options: ReadOptions): Promise<ReadResult | undefined> {
    const replicas = this.options.replicasFor(key)
    const needed = this.needed(options.r ?? this.options.defaultRead, replicas.length, 'r')
    const nowMs = this.options.nowMs()
    // R=1 on a replica: the local store answers at once, no network.
    if (needed === 1 && replicas.includes(this.options.localId)) return liveResult(key, this.options.local.get(key), nowMs)

    const answers = await this.gather(replicas, needed, (id) => this.readFrom(id, key), 'read')
    const newest = newestOf(answers.heard.map((a) => a.record))
    answers.all.then((all) => this.repair(key, all))
      .catch((error: unknown) => this.options.onBackgroundError(error, 'read repair'))
    return liveResult(key, newest, nowMs)
  }

  async scan(options: ScanOptions): Promise<ScanPage> {
    const limit = Math.min(options.limit, this.options.maxScanLimit)
    const nowMs = this.options.nowMs()
    const after = options.after
    const bounds = { ...(options.start !== undefined ? { start: options.start } : {}), ...(options.end !== undefined ? { end: options.end } : {}) }
    const local = options.local === true || this.options.holdsEverything()
    // Remote pages must fit a peer frame; a local page only the client's page budget.
    const sourceMaxBytes = local ? this.options.maxScanPageBytes : Math.min(this.options.maxScanPageBytes, MAX_SCAN_REPLY_BYTES)
    const sources: Promise<{ entries: readonly WireEntry[]; more: boolean }>[] = [Promise.resolve(this.localPage(options.prefix, after, bounds, limit, sourceMaxBytes))]
    if (!local) {
      for (const id of this.options.aliveMembers()) {
        const member = this.options.member(id)
        if (member === undefined) continue
        sources.push(this.options.request(member.peer, { type: 'replicaScan', body: { prefix: options.prefix, ...(after !== undefined ? { after } : {}), ...bounds, limit, maxBytes: sourceMaxBytes } }, this.options.timeoutMs)
          .then((reply) => {
            const page = reply.body as ReplicaScanReplyBody
            for (const entry of page.entries) this.options.observeHlc(entry.hlc)
            return page
          })
          .catch(() => ({ entries: [], more: false })))
      }
    }
    const pages = await Promise.all(sources)
    // Merge: newest version per key, then the first `limit` keys. Every replica returned its
    // first records after `after`, so the merged keys are complete up to the last key of every
    // page that stopped short (by count or by bytes); keys beyond the smallest such key wait
    // for the next page.
    let complete: string | undefined
    for (const page of pages) {
      const last = page.entries.at(-1)?.key
      if (page.more && last !== undefined && (complete === undefined || compareUtf8(last, complete) < 0)) complete = last
    }
    const newestByKey = new Map<string, StoredRecord>()
    for (const page of pages) {
      for (const entry of page.entries) {
        if (complete !== undefined && compareUtf8(entry.key, complete) > 0) continue
        const record = fromWire(entry)
        const held = newestByKey.get(entry.key)
        if (held === undefined || compareRecords(record, held) > 0) newestByKey.set(entry.key, record)
      }
    }
    const keys = [...newestByKey.keys()].sort(compareUtf8)
    let more = keys.length > limit || pages.some((p) => p.more)
    const pageKeys: string[] = []
    const items: ScanItem[] = []
    let bytes = 0
    for (const key of keys) {
      if (pageKeys.length >= limit) break
      const record = newestByKey.get(key)!
      const live = isLive(record, nowMs)
      const itemBytes = live ? Buffer.byteLength(key) + (record.value?.byteLength ?? 0) + SCAN_RECORD_OVERHEAD_BYTES : 0
      // The page stops at its byte budget (api.maxScanPageBytes) but always carries one item.
      if (items.length > 0 && bytes + itemBytes > this.options.maxScanPageBytes) {
        more = true
        break
      }
      bytes += itemBytes
      pageKeys.push(key)
      if (live) items.push({ key, value: record.value as Uint8Array, version: record.version })
    }
    return { items, next: more && pageKeys.length > 0 ? pageKeys[pageKeys.length - 1]! : null }
  }

  private localPage(prefix: string, after: string | undefined, bounds: KeyBounds, limit: number, maxBytes: number): { entries: WireEntry[]; more: boolean } {
    return scanPageOf(this.options.local.rawRange({ prefix, ...(after !== undefined ? { after } : {}), ...bounds, limit: limit + 1 }), limit, maxBytes)
  }

  private async write(key: string, value: Uint8Array | null, options: WriteOptions): Promise<WriteResult> {
    const replicas = this.options.replicasFor(key)
    const needed = this.needed(options.w ?? this.options.defaultWrite, replicas.length, 'w')
    // A strong key takes linearizable writes only; refused before anything is versioned when
    // this node's own replica knows (the replicas' answers catch the rest, below).
    const local = this.options.local
    if (local.isStrong !== undefined ? local.isStrong(key) : local.get(key)?.strong === true) throw new StrongKeyError(key)
    const ttl = options.ttlSeconds
    const version = { hlc: await this.options.nextHlc(), node: this.options.localId }
    const record: StoredRecord = {
      value,
      version,
      ...(value !== null && ttl !== undefined ? { expiresAtMs: this.options.nowMs() + ttl * 1000 } : {}),
    }
    const entry = toWire(key, record)
    await this.waitForReplicas(replicas, needed)
    this.writePending(key, record, entry)
    // The Version itself, not its string: lib/api formats it only if the write misses its quorum.
    const answers = await this.gather(replicas, needed, (id) => this.writeTo(id, key, record, entry), 'write', { version })
    // A replica holding a strong record kept the write out; it loses to that record wherever it
    // landed (compareRecords), so the client is told it was refused.
    if (answers.heard.some((a) => a.record === 'strong')) throw new StrongKeyError(key)
    return { key, version, acks: answers.heard.length, needed }
  }

  /**
   * With waitForReplicasMs, waits (polling the member table through the injected clock) until
   * `needed` of `replicas` are alive, or refuses: nothing has been written then, so the answer
   * says outcome "refused", not "unknown".
   */
  private async waitForReplicas(replicas: readonly NodeId[], needed: number): Promise<void> {
    const waitMs = this.options.waitForReplicasMs ?? 0
    if (waitMs <= 0) return
    const alive = (): number => replicas.filter((id) => id === this.options.localId || this.options.member(id)?.state === 'alive').length
    const startedMs = this.options.clock.monotonicMs()
    while (alive() < needed) {
      const waitedMs = this.options.clock.monotonicMs() - startedMs
      if (waitedMs >= waitMs) {
        this.options.onQuorumFailure('write')
        throw new UnavailableError(`only ${alive()} of the ${needed} replicas this write needs are alive, still after replication.waitForReplicasMs (${waitMs} ms); nothing was written: retry when members are back, or write with a lower w`,
          { outcome: 'refused', needed, alive: alive(), waitedMs: Math.round(waitedMs) })
      }
      await sleep(this.options.clock, Math.min(REPLICA_WAIT_POLL_MS, waitMs - waitedMs))
    }
  }

  /**
   * Writes a value committed through CASPaxos (a strong record) to every replica of its key, in
   * the background: plain reads see it once it lands, and replicas that miss it get a hint (or
   * anti-entropy brings it). Resolves with the number of replicas that made it durable.
   * Replicas in `learners` are left out: they learn the value from their own accepted state
   * (lib/paxos/accept-batcher.ts), and get writeReplica only when that fails.
   */
  async propagate(key: string, record: StoredRecord, learners?: ReadonlySet<NodeId>): Promise<number> {
    const entry = toWire(key, record)
    this.writePending(key, record, entry)
    const targets = this.options.replicasFor(key).filter((id) => learners?.has(id) !== true)
    const settled = await Promise.allSettled(targets.map((id) => this.writeTo(id, key, record, entry)))
    return settled.filter((s) => s.status === 'fulfilled').length
  }

  /** One replica's copy of a committed (strong) record, hinted when it does not land (see propagate). */
  async writeReplica(id: NodeId, key: string, record: StoredRecord): Promise<void> {
    await this.writeTo(id, key, record, toWire(key, record))
  }

  /** The write's copies for pending replicas: background, hinted on failure (writeTo), never awaited. */
  private writePending(key: string, record: StoredRecord, entry: WireEntry): void {
    for (const id of this.options.pendingFor?.(key) ?? []) this.writeTo(id, key, record, entry).catch(() => undefined)
  }

  /**
   * One replica's copy of a write: resolves once it is durable there ('strong' when a strong
   * record kept a plain write out), rejects when it is not (then, unless the replica refused it,
   * the write is kept as a hint for that replica).
   */
  private async writeTo(id: NodeId, key: string, record: StoredRecord, entry: WireEntry): Promise<true | 'strong'> {
    if (id === this.options.localId) {
      const outcome = await this.options.local.apply(key, record)
      return keptOutByStrong(record, outcome) ? 'strong' : true
    }
    try {
      const member = this.reachableMember(id)
      const delayMs = this.options.injectedDelayMs()
      if (delayMs > 0) await sleep(this.options.clock, delayMs)
      const reply = await this.options.request(member.peer, { type: 'replicaWrite', body: { entries: [entry] } }, this.options.timeoutMs)
      return ((reply.body as ReplicaWriteReplyBody).strong ?? []).length > 0 ? 'strong' : true
    } catch (error) {
      // A replica that refused the write (e.g. our clock is beyond its skew bound) would refuse
      // the hint too; anything else is delivery trouble that handoff cures later.
      const refused = error instanceof TransportError && error.code === 'remote'
      if (!refused && this.options.hint !== undefined) {
        this.options.hint(id, entry).catch((hintError: unknown) => this.options.onBackgroundError(hintError, 'storing a hint'))
      }
      throw error
    }
  }

  private async readFrom(id: NodeId, key: string): Promise<StoredRecord | undefined> {
    if (id === this.options.localId) return this.options.local.get(key)
    const member = this.reachableMember(id)
    const reply = await this.options.request(member.peer, { type: 'replicaRead', body: { key } }, this.options.timeoutMs)
    const { entry } = reply.body as ReplicaReadReplyBody
    if (entry === null) return undefined
    this.options.observeHlc(entry.hlc)
    return fromWire(entry)
  }

  /**
   * The member to send a replica request to. A suspect is most likely alive (a missed probe, or a
   * stale rumour at a heal), so it is still asked: a write that reaches it needs no hint and may
   * complete the quorum. A dead or unknown replica is unreachable now.
   */
  private reachableMember(id: NodeId): ReplicaMember {
    const member = this.options.member(id)
    if (member === undefined || (member.state !== 'alive' && member.state !== 'suspect')) {
      throw new TransportError(`replica ${id} is ${member?.state ?? 'unknown'}`, 'unreachable')
    }
    return member
  }

  /** Sends the newest record to every replica that answered with something older or nothing. */
  private async repair(key: string, answers: readonly { id: NodeId; record: StoredRecord | undefined }[]): Promise<void> {
    const newest = newestOf(answers.map((a) => a.record))
    if (newest === undefined) return
    const stale = answers.filter((a) => a.record === undefined || compareRecords(a.record, newest) < 0)
    if (stale.length === 0) return
    this.options.onReadRepair(stale.length)
    const entry = toWire(key, newest)
    await Promise.allSettled(stale.map((a) => this.writeTo(a.id, key, newest, entry)))
  }

  /**
   * Runs `attempt` on every replica; resolves with the answers once `needed` succeeded, rejects
   * with QuorumNotMetError when every attempt settled short of it or the deadline passed. `all` settles when
   * every attempt has (for read repair); attempts go on after the answer either way.
   */
  private gather<T>(replicas: readonly NodeId[], needed: number, attempt: (id: NodeId) => Promise<T>, kind: 'write' | 'read', details: Record<string, unknown> = {}):
    Promise<{ heard: { id: NodeId; record: T }[]; all: Promise<{ id: NodeId; record: T }[]> }> {
    const heard: { id: NodeId; record: T }[] = []
    let settle: ((outcome: 'met' | 'impossible' | 'timeout') => void) | undefined
    const decided = new Promise<'met' | 'impossible' | 'timeout'>((resolve) => { settle = resolve })
    const timer = this.options.clock.setTimeout(() => settle?.('timeout'), this.options.timeoutMs)
    const runs = replicas.map((id) => attempt(id).then(
      (record) => {
        heard.push({ id, record })
        if (heard.length >= needed) settle?.('met')
      },
      // A failure alone decides nothing: the level is judged unmet once every attempt settled
      // (below), so a 503 counts every ack that did land, the coordinator's own commit included.
      () => undefined,
    ))
    const all = Promise.all(runs).then(() => [...heard])
    // Every replica answered and the level is still unmet (a cluster smaller than W): say so now.
    void all.then(() => settle?.('impossible'))
    if (needed === 0) settle?.('met')
    return decided.then((outcome) => {
      this.options.clock.clearTimeout(timer)
      if (outcome === 'met') return { heard: [...heard], all }
      this.options.onQuorumFailure(kind)
      throw new QuorumNotMetError(kind, needed, heard.length, details)
    })
  }

  private needed(level: ConsistencyLevel, replicaCount: number, what: 'w' | 'r'): number {
    return requiredAcks(level, replicaCount, what, this.options.replicationFactor)
  }
}

function keptOutByStrong(record: StoredRecord, outcome: { readonly applied: boolean; readonly previous?: StoredRecord }): boolean {
  return !outcome.applied && record.strong !== true && outcome.previous?.strong === true
}

function newestOf(records: readonly (StoredRecord | undefined)[]): StoredRecord | undefined {
  let newest: StoredRecord | undefined
  for (const record of records) {
    if (record !== undefined && (newest === undefined || compareRecords(record, newest) > 0)) newest = record
  }
  return newest
}

function liveResult(key: string, record: StoredRecord | undefined, nowMs: number): ReadResult | undefined {
  if (record === undefined || !isLive(record, nowMs)) return undefined
  return { key, value: record.value as Uint8Array, version: record.version, ...(record.expiresAtMs !== undefined ? { expiresAtMs: record.expiresAtMs } : {}) }
}

/** Keys sort by their UTF-8 bytes, as the store orders them. */
function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'))
}
