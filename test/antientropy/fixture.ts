import type { Test } from 'tap'
import { pino } from 'pino'
import { asNodeId, compareVersions, type Version } from '../../lib/clock/version.js'
import { FrameCodec } from '../../lib/codec/codec.js'
import { frameRegistry } from '../../lib/codec/frames.js'
import type { ErrorBody } from '../../lib/codec/transport-frames.js'
import { LocalReplica } from '../../lib/antientropy/local-replica.js'
import { registerSyncHandlers, type ResponderOptions } from '../../lib/antientropy/responder.js'
import { ByteRateLimiter } from '../../lib/antientropy/rate-limit.js'
import { systemClock } from '../../lib/runtime/clock.js'
import { createRandom } from '../../lib/runtime/random.js'
import { segmentIndexOptions } from '../../lib/antientropy/segments.js'
import type { SessionMode, SessionOptions } from '../../lib/antientropy/session.js'
import { loadRecordDigester } from '../../lib/merkle/digest.js'
import { MerkleForest } from '../../lib/merkle/forest.js'
import { MerkleTree } from '../../lib/merkle/tree.js'
import { partitionOfKeyHash } from '../../lib/placement/partitions.js'
import { KvStore } from '../../lib/store/kv-store.js'
import type { StoredRecord } from '../../lib/store/record.js'
import { Dispatcher, encodeAnswer } from '../../lib/transport/dispatcher.js'
import { DEFAULT_TRANSPORT_LIMITS } from '../../lib/transport/limits.js'
import { TransportError, type MessageHandler, type PeerIdentity, type PeerMessage } from '../../lib/transport/transport.js'
import { TEST_MAP_SIZE_BYTES, WALL_MS } from '../store/fixture.js'

/**
 * In-process anti-entropy nodes: a real KvStore with the segment index, a MerkleForest kept by
 * the store's change hook and a LocalReplica, wired as lib/node.ts wires them; and a loopback
 * peer that runs every request and its answer through the real codec and dispatcher, so each
 * frame is validated exactly as on the wire.
 */

/** Few partitions, so each one holds several keys of a few-hundred-key test. */
export const PARTITION_COUNT = 8
export const TOMBSTONE_GRACE_MS = 24 * 60 * 60 * 1000
/** The nodes' wall clock: an hour after the records' WALL_MS, well within the grace. */
export const NOW_MS = WALL_MS + 60 * 60 * 1000
/** The node id of whoever starts sessions against a loopback peer (only logs see it). */
const ASKER: PeerIdentity = { id: asNodeId('00000000000000a5'), name: 'asker', peer: '127.0.0.1:1', api: '127.0.0.1:2' }

export const digester = await loadRecordDigester()

export function partitionOfKey(key: string): number {
  return partitionOfKeyHash(digester.keyHash(key), PARTITION_COUNT)
}

/** The key → segment mapping of the store's index, as lib/node.ts opens it. */
const SEGMENTS = segmentIndexOptions(digester, PARTITION_COUNT)

export function segmentOfKey(key: string): number {
  return SEGMENTS.segmentOf(key)
}

export interface TestNode {
  readonly store: KvStore
  readonly forest: MerkleForest
  readonly replica: LocalReplica
}

export interface TestNodeOptions {
  readonly dataDir?: string
  readonly nowMs?: () => number
  /** Defaults to accepting every version; a test of the skew bound throws for some. */
  readonly observeHlc?: (hlc: number) => void
}

/** Opens a store in a fresh test dir (closed at teardown) with its trees rebuilt from the index. */
export async function openNode(t: Test, options: TestNodeOptions = {}): Promise<TestNode> {
  const store = await KvStore.open({
    dataDir: options.dataDir ?? t.testdir(),
    mapSizeBytes: TEST_MAP_SIZE_BYTES,
    segments: SEGMENTS,
  })
  t.teardown(() => store.close())
  const forest = new MerkleForest(digester)
  // As lib/node.ts does: rebuilt from the segment index, kept by the change hook's segments.
  for (const { segment, key, version } of store.segments?.all() ?? []) forest.applyInSegment(segment, key, undefined, version)
  store.onChange(({ key, previous, current, segment }) => {
    forest.applyInSegment(segment ?? SEGMENTS.segmentOf(key), key, previous?.version, current?.version)
  })
  const replica = new LocalReplica({
    store,
    forest,
    partitionCount: PARTITION_COUNT,
    tombstoneGraceMs: TOMBSTONE_GRACE_MS,
    nowMs: options.nowMs ?? (() => NOW_MS),
    observeHlc: options.observeHlc ?? (() => undefined),
  }, new MerkleTree(digester))
  return { store, forest, replica }
}

/** A forest built from scratch from every record of the store (what the trees must equal). */
export function rebuiltForest(store: KvStore): MerkleForest {
  const forest = new MerkleForest(digester)
  for (const { key, record } of store.rawRange()) forest.apply(partitionOfKey(key), key, undefined, record.version)
  return forest
}

/** Every record of the store, tombstones included. */
export function snapshot(store: KvStore): Map<string, StoredRecord> {
  const records = new Map<string, StoredRecord>()
  for (const { key, record } of store.rawRange()) records.set(key, record)
  return records
}

export function newer(a: StoredRecord | undefined, b: StoredRecord | undefined): StoredRecord | undefined {
  if (a === undefined) return b
  if (b === undefined) return a
  return compareVersions(a.version, b.version) >= 0 ? a : b
}

export function sameVersion(a: Version | undefined, b: Version | undefined): boolean {
  return a !== undefined && b !== undefined && compareVersions(a, b) === 0
}

/** Where an injected failure strikes: before the peer sees the request, or after (the answer is lost). */
export type FailurePoint = 'request' | 'reply'

/** A request frame the codec refused on the way in (over a real link, the link would close). */
export class RejectedFrameError extends Error {
  constructor(override readonly cause: unknown) {
    super(`the request frame was rejected: ${cause instanceof Error ? cause.message : String(cause)}`)
    this.name = 'RejectedFrameError'
  }
}

/**
 * The peer side of a session without sockets: request() encodes the message as a request frame,
 * decodes and validates it, runs the registered handler through the transport's Dispatcher,
 * encodes its answer (response or error frame), decodes that and returns the reply or throws a
 * TransportError('remote') for an error frame, as WsTransport.request does.
 */
export class LoopbackPeer {
  readonly #codec = new FrameCodec(frameRegistry, DEFAULT_TRANSPORT_LIMITS)
  readonly #dispatcher = new Dispatcher(frameRegistry, pino({ level: 'silent' }))
  readonly #requests = new Map<string, number>()
  readonly #bytes = new Map<string, number>()
  /** Every request made, in order (failed ones included), for what-moved assertions. */
  readonly log: PeerMessage[] = []
  #nextRequestId = 1
  #failure: { remaining: number; where: FailurePoint } | undefined

  handle(type: string, handler: MessageHandler): void {
    this.#dispatcher.handle(type, handler)
  }

  /** After `requests` more requests succeed, every later one fails at `where`. */
  failAfter(requests: number, where: FailurePoint = 'request'): void {
    this.#failure = { remaining: requests, where }
  }

  /** Requests succeed again. */
  heal(): void {
    this.#failure = undefined
  }

  /** Requests made (all types, or one type), failed ones included. */
  requests(type?: string): number {
    return type === undefined ? sum(this.#requests.values()) : this.#requests.get(type) ?? 0
  }

  /** Encoded bytes of requests and answers (all types, or one request, reply or `error` type). */
  bytes(type?: string): number {
    return type === undefined ? sum(this.#bytes.values()) : this.#bytes.get(type) ?? 0
  }

  readonly request = async (message: PeerMessage): Promise<PeerMessage> => {
    this.log.push(message)
    this.#requests.set(message.type, this.requests(message.type) + 1)
    const failing = this.#failure !== undefined && this.#failure.remaining-- <= 0 ? this.#failure.where : undefined
    if (failing === 'request') throw new TransportError(`injected failure before ${message.type}`, 'closed')
    const requestId = this.#nextRequestId++
    const encoded = this.#codec.encode(message.type, requestId, message.body)
    this.#count(message.type, encoded.byteLength)
    let frame
    try {
      ;[frame] = this.#codec.decodeMessage(encoded)
    } catch (error) {
      throw new RejectedFrameError(error)
    }
    if (frame === undefined || frame.requestId !== requestId) throw new Error('the codec lost the request frame')
    const answer = await this.#dispatcher.answer(ASKER, { type: frame.type.name, body: frame.body })
    const answered = encodeAnswer(this.#codec, requestId, answer)
    const [decoded] = this.#codec.decodeMessage(answered)
    if (decoded === undefined || decoded.requestId !== requestId) throw new Error('the codec lost the answer frame')
    this.#count('reply' in answer ? answer.reply.type : decoded.type.name, answered.byteLength)
    if (failing === 'reply') throw new TransportError(`injected failure after ${message.type}: the answer was lost`, 'closed')
    if (decoded.type.name === 'error') {
      const error = decoded.body as ErrorBody
      throw new TransportError(`loopback answered ${error.code}: ${error.message}`, 'remote')
    }
    return decoded.body as PeerMessage
  }

  #count(type: string, bytes: number): void {
    this.#bytes.set(type, this.bytes(type) + bytes)
  }
}

/** A loopback peer answering sessions from `node`'s replica. */
export function serve(node: TestNode, options: Partial<Omit<ResponderOptions, 'replica'>> = {}): LoopbackPeer {
  const peer = new LoopbackPeer()
  registerSyncHandlers(peer, { replica: node.replica, refusal: options.refusal ?? (() => undefined), repairCutoffMs: options.repairCutoffMs ?? (() => undefined), ...(options.onReceived === undefined ? {} : { onReceived: options.onReceived }) })
  return peer
}

/** Options of a session from `node` to `peer`, unlimited rate, small batches so they split. */
export function sessionWith(node: TestNode, peer: LoopbackPeer, mode: SessionMode = 'normal', overrides: Partial<SessionOptions> = {}): SessionOptions {
  return {
    peer: 'loopback',
    partitions: Array.from({ length: PARTITION_COUNT }, (_, p) => p),
    mode,
    replica: node.replica,
    request: peer.request,
    limiter: new ByteRateLimiter(0, systemClock),
    clock: systemClock,
    random: createRandom(0x5eed),
    partitionConcurrency: 3,
    batchBytes: 4096,
    ...overrides,
  }
}

function sum(values: Iterable<number>): number {
  let total = 0
  for (const value of values) total += value
  return total
}
