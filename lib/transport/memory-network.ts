import { pino, type Logger } from 'pino'
import { FrameCodec, FrameTooLargeError, MalformedFrameError, type Frame } from '../codec/codec.js'
import { ERROR_FRAME, RESPONSE_FRAME, frameRegistry, type FrameRegistry } from '../codec/frames.js'
import type { ErrorBody } from '../codec/transport-frames.js'
import { parseHostPort } from '../config/address.js'
import { FakeClock } from '../runtime/clock.js'
import { createRandom, type Random } from '../runtime/random.js'
import { Dispatcher, assertKind, encodeAnswer } from './dispatcher.js'
import { DEFAULT_TRANSPORT_LIMITS, type TransportLimits } from './limits.js'
import { PendingRequests } from './pending-requests.js'
import { TransportError, type MessageHandler, type PeerAddress, type PeerIdentity, type PeerMessage, type Transport } from './transport.js'

/**
 * A simulated network for tests and simulations: every node gets a Transport whose messages go
 * through the real codec (so validation runs) and arrive after a seeded random delay on a fake
 * clock, or not at all (loss, partitions, killed nodes). Delivery between two nodes is FIFO like
 * a WebSocket link. A run is a function of the seed and the inputs.
 */

export interface NetworkConditions {
  /** One-way delay, uniform over [minMs, maxMs] (integers). */
  readonly delayMs: { readonly minMs: number; readonly maxMs: number }
  /** Probability that a message is lost, 0..1. */
  readonly lossProbability: number
  /** Probability that a message arrives twice (the copy after its own random delay), 0..1. */
  readonly duplicateProbability: number
  /**
   * Probability that a message ignores its link's FIFO order and may overtake earlier ones, 0..1.
   * A WebSocket link never reorders, but a reconnect does: frames queued on the old link and on
   * the new one race.
   */
  readonly reorderProbability: number
}

export type DeliveryOutcome = 'delivered' | 'duplicated' | 'lost' | 'partitioned' | 'unreachable' | 'malformed'

/** One message's fate, in the order fates were decided: the trace two runs are compared by. */
export interface DeliveryEvent {
  readonly atMs: number
  readonly from: PeerAddress
  readonly to: PeerAddress
  readonly type: string
  readonly requestId: number
  readonly outcome: DeliveryOutcome
}

export interface MemoryNetworkOptions {
  readonly seed: number
  readonly clock?: FakeClock
  readonly conditions?: Partial<NetworkConditions>
  readonly frames?: FrameRegistry
  readonly limits?: Partial<Pick<TransportLimits, 'maxFrameBytes' | 'maxFramesPerMessage' | 'maxInFlightRequestsPerLink'>>
  readonly log?: Logger
  /** Called with every message's fate (delivered or why not). */
  readonly onDelivery?: (event: DeliveryEvent) => void
}

const DEFAULT_CONDITIONS: NetworkConditions = { delayMs: { minMs: 1, maxMs: 1 }, lossProbability: 0, duplicateProbability: 0, reorderProbability: 0 }

export class MemoryNetwork {
  readonly clock: FakeClock
  readonly codec: FrameCodec
  readonly log: Logger
  readonly #random: Random
  readonly #maxInFlightRequestsPerLink: number
  readonly #onDelivery: ((event: DeliveryEvent) => void) | undefined
  #conditions: NetworkConditions
  readonly #nodes = new Map<PeerAddress, MemoryTransport>()
  /** Partition group of each listed address; addresses in different groups cannot talk. */
  #groupOf = new Map<PeerAddress, number>()
  /** One-way cuts, `from>to`: an asymmetric partition (from cannot reach to; to may reach from). */
  #blocked = new Set<string>()
  /** Earliest time the next message from → to may arrive, keeping each pair FIFO. */
  readonly #pairClearAtMs = new Map<string, number>()

  constructor(options: MemoryNetworkOptions) {
    this.clock = options.clock ?? new FakeClock()
    this.#random = createRandom(options.seed)
    this.log = options.log ?? pino({ level: 'silent' })
    const limits = { ...DEFAULT_TRANSPORT_LIMITS, ...options.limits }
    this.codec = new FrameCodec(options.frames ?? frameRegistry, limits)
    this.#maxInFlightRequestsPerLink = limits.maxInFlightRequestsPerLink
    this.#onDelivery = options.onDelivery
    this.#conditions = validConditions({ ...DEFAULT_CONDITIONS, ...options.conditions })
  }

  /** A node joins the network at `identity.peer` (again, after kill()). */
  transport(identity: PeerIdentity): Transport {
    if (this.#nodes.has(identity.peer)) throw new Error(`a live node already has address ${identity.peer}`)
    const node = new MemoryTransport(this, identity, new Dispatcher(this.codec.registry, this.log.child({ node: identity.name })),
      new PendingRequests(this.clock, this.#maxInFlightRequestsPerLink))
    this.#nodes.set(identity.peer, node)
    return node
  }

  setConditions(conditions: Partial<NetworkConditions>): void {
    this.#conditions = validConditions({ ...this.#conditions, ...conditions })
  }

  /** Cuts the network into groups; addresses listed in no group still reach everyone. */
  partition(...groups: readonly (readonly PeerAddress[])[]): void {
    this.#groupOf = new Map(groups.flatMap((group, index) => group.map(address => [address, index] as const)))
  }

  /** Messages from `from` to `to` are dropped from now on (the other direction is untouched). */
  blockOneWay(from: PeerAddress, to: PeerAddress): void {
    this.#blocked.add(`${from}>${to}`)
  }

  /** Undoes every partition and one-way cut. */
  heal(): void {
    this.#groupOf = new Map()
    this.#blocked = new Set()
  }

  /** The node at `address` stops as if its process died: nothing in or out, its requests fail. */
  kill(address: PeerAddress): void {
    this.#nodes.get(address)?.stop(new TransportError('the node was killed', 'closed'))
  }

  /** Called by a node's transport: decides the message's fate and schedules its arrival. */
  post(from: MemoryTransport, to: PeerAddress, message: Uint8Array, type: string, requestId: number): void {
    const { lossProbability, duplicateProbability, reorderProbability } = this.#conditions
    const lost = this.#random.chance(lossProbability)
    // Draws only when the condition is on, so runs without it keep their random sequence.
    const copies = duplicateProbability > 0 && this.#random.chance(duplicateProbability) ? 2 : 1
    const inOrder = !(reorderProbability > 0 && this.#random.chance(reorderProbability))
    const { minMs, maxMs } = this.#conditions.delayMs
    const pair = `${from.local.peer}>${to}`
    for (let copy = 0; copy < copies; copy++) {
      const drawnAtMs = this.clock.nowMs() + minMs + this.#random.int(maxMs - minMs + 1)
      const arriveAtMs = inOrder && copy === 0 ? Math.max(drawnAtMs, this.#pairClearAtMs.get(pair) ?? 0) : drawnAtMs
      if (inOrder && copy === 0) this.#pairClearAtMs.set(pair, arriveAtMs)
      this.#schedule(from, to, message, type, requestId, lost, copy > 0, arriveAtMs)
    }
  }

  #schedule(from: MemoryTransport, to: PeerAddress, message: Uint8Array, type: string, requestId: number, lost: boolean, duplicate: boolean, arriveAtMs: number): void {
    this.clock.setTimeout(() => {
      const record = (outcome: DeliveryOutcome): void => this.#onDelivery?.({ atMs: this.clock.nowMs(), from: from.local.peer, to, type, requestId, outcome })
      const target = this.#nodes.get(to)
      if (lost) return record('lost')
      if (!this.#canTalk(from.local.peer, to)) return record('partitioned')
      if (target === undefined || !from.alive) return record('unreachable')
      let frames: Frame[]
      try {
        frames = this.codec.decodeMessage(message)
      } catch (error) {
        if (!(error instanceof MalformedFrameError)) throw error
        this.log.error({ from: from.local.peer, to, reason: error.reason, err: error }, 'malformed message on the memory network')
        return record('malformed')
      }
      record(duplicate ? 'duplicated' : 'delivered')
      for (const frame of frames) target.receive(from, frame)
    }, arriveAtMs - this.clock.nowMs())
  }

  /** Forgets a stopped node so its address can be reused. */
  remove(node: MemoryTransport): void {
    if (this.#nodes.get(node.local.peer) === node) this.#nodes.delete(node.local.peer)
  }

  #canTalk(a: PeerAddress, b: PeerAddress): boolean {
    if (this.#blocked.size > 0 && this.#blocked.has(`${a}>${b}`)) return false
    const groupA = this.#groupOf.get(a)
    const groupB = this.#groupOf.get(b)
    return groupA === undefined || groupB === undefined || groupA === groupB
  }
}

function validConditions(conditions: NetworkConditions): NetworkConditions {
  const { minMs, maxMs } = conditions.delayMs
  if (!Number.isSafeInteger(minMs) || !Number.isSafeInteger(maxMs) || minMs < 0 || maxMs < minMs) {
    throw new RangeError(`delayMs needs integers 0 ≤ minMs ≤ maxMs, got ${minMs}..${maxMs}`)
  }
  for (const name of ['lossProbability', 'duplicateProbability', 'reorderProbability'] as const) {
    const p = conditions[name]
    if (!(p >= 0 && p <= 1)) throw new RangeError(`${name} must be within 0..1, got ${p}`)
  }
  return conditions
}

function assertAddress(to: PeerAddress): void {
  if (parseHostPort(to) === undefined) throw new TypeError(`not a peer address (host:port): ${JSON.stringify(to)}`)
}

class MemoryTransport implements Transport {
  alive = true

  constructor(
    readonly network: MemoryNetwork,
    readonly local: PeerIdentity,
    readonly dispatcher: Dispatcher,
    readonly pending: PendingRequests,
  ) {}

  send(to: PeerAddress, message: PeerMessage): void {
    assertKind(this.network.codec.registry, message.type, 'oneway')
    assertAddress(to)
    if (!this.alive || to === this.local.peer) return
    let frame: Uint8Array
    try {
      frame = this.network.codec.encode(message.type, 0, message.body)
    } catch (error) {
      if (!(error instanceof FrameTooLargeError)) throw error
      this.network.log.error({ to, type: message.type, err: error }, 'message too large to send; dropped')
      return
    }
    this.#post(to, message.type, 0, frame)
  }

  request(to: PeerAddress, message: PeerMessage, timeoutMs: number): Promise<PeerMessage> {
    assertKind(this.network.codec.registry, message.type, 'request')
    assertAddress(to)
    const describe = `${message.type} request to ${to}`
    if (!this.alive) return Promise.reject(new TransportError(`${describe}: the transport is closed`, 'closed'))
    if (to === this.local.peer) return Promise.reject(new TransportError(`${describe}: a node does not send to itself`, 'unreachable'))
    let opened
    let frame: Uint8Array
    try {
      opened = this.pending.open(to, describe, timeoutMs)
      frame = this.network.codec.encode(message.type, opened.requestId, message.body)
    } catch (error) {
      if (opened !== undefined) this.pending.reject(opened.requestId, to, new TransportError(`${describe}: ${(error as Error).message}`, 'limit'))
      return opened?.answer ?? Promise.reject(error)
    }
    this.#post(to, message.type, opened.requestId, frame)
    return opened.answer
  }

  handle(type: string, handler: MessageHandler): void {
    this.dispatcher.handle(type, handler)
  }

  // Links in the simulated network always exist; reachability is decided per message.
  connect(): void {}
  forget(): void {}

  async close(): Promise<void> {
    this.stop(new TransportError('the transport is closed', 'closed'))
  }

  stop(error: TransportError): void {
    if (!this.alive) return
    this.alive = false
    this.pending.rejectAll(error)
    this.network.remove(this)
  }

  receive(from: MemoryTransport, frame: Frame): void {
    if (!this.alive) return
    const peer = from.local
    switch (frame.type.kind) {
      case 'oneway':
        void this.dispatcher.deliver(peer, { type: frame.type.name, body: frame.body })
        return
      case 'request':
        void this.dispatcher.answer(peer, { type: frame.type.name, body: frame.body }).then(answer => {
          if (!this.alive) return
          this.#post(peer.peer, 'reply' in answer ? answer.reply.type : ERROR_FRAME, frame.requestId, encodeAnswer(this.network.codec, frame.requestId, answer))
        })
        return
      case 'envelope':
        if (frame.type.name === RESPONSE_FRAME) this.pending.resolve(frame.requestId, peer.peer, frame.body as PeerMessage)
        else {
          const error = frame.body as ErrorBody
          this.pending.reject(frame.requestId, peer.peer, new TransportError(`${peer.peer} answered ${error.code}: ${error.message}`, 'remote'))
        }
        return
      default:
        throw new Error(`${frame.type.kind} frame ${frame.type.name} has no place on the memory network`)
    }
  }

  #post(to: PeerAddress, type: string, requestId: number, frame: Uint8Array): void {
    this.network.post(this, to, this.network.codec.joinMessage([frame]), type, requestId)
  }
}
