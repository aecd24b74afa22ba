import { pack, unpack } from 'msgpackr'
import { asNodeId, type NodeId } from '../clock/version.js'
import { createRandom, type Random } from '../runtime/random.js'
import type { PeerAddress } from '../transport/transport.js'
import { DEFAULT_LAN_MEMBERSHIP_CONFIG, type MembershipConfig } from './config.js'
import { estimateWireBytes, validateMembershipMessage, type MemberState, type MembershipMessage } from './messages.js'
import { Swim, type SwimEffect } from './swim.js'

/**
 * A deterministic simulator (TigerBeetle's VOPR in spirit): n real Swim state machines over a
 * simulated network with a fake clock that jumps from one due event to the next. Messages are
 * msgpack-encoded, decoded and validated as on the wire, delayed, lost and cut by partitions
 * with a seeded PRNG, so one seed always replays the same run (compare `traceDigest`).
 */

export interface SimulationOptions {
  readonly nodeCount: number
  readonly seed: number
  readonly config?: Partial<MembershipConfig>
  /** Each message is lost with this probability. */
  readonly lossProbability?: number
  /** One-way delay is uniform in [delayMinMs, delayMaxMs]. */
  readonly delayMinMs?: number
  readonly delayMaxMs?: number
  /** Nodes after the first join at random times in [0, joinSpreadMs), through node 0. */
  readonly joinSpreadMs?: number
  /**
   * Encode, decode and validate every message as the wire would (default true). Off, messages
   * pass as objects and their size is estimated — for large benchmark clusters where the codec
   * dominates run time.
   */
  readonly wireCodec?: boolean
}

export interface SimNode {
  readonly index: number
  readonly id: NodeId
  readonly name: string
  readonly peer: PeerAddress
  readonly api: string
  up: boolean
  swim: Swim
  /** What the node's data dir holds: the last incarnation it asked to persist. */
  storedIncarnation: number
  messagesSent: number
  bytesSent: number
}

/** A member declared dead by an observer while the simulator knew it was up (a false positive). */
export interface FalseDeath {
  readonly atMs: number
  readonly observer: number
  readonly subject: number
}

type SimEvent =
  | { readonly atMs: number; readonly order: number; readonly kind: 'tick'; readonly node: number; readonly generation: number }
  | { readonly atMs: number; readonly order: number; readonly kind: 'join'; readonly node: number; readonly seeds: readonly PeerAddress[] }
  | { readonly atMs: number; readonly order: number; readonly kind: 'deliver'; readonly from: number; readonly to: number; readonly payload: Uint8Array | MembershipMessage }

/** Most events processed per run call: a protocol bug that schedules in a loop fails loudly. */
const MAX_EVENTS_PER_RUN = 200_000_000

export class Simulation {
  readonly nodes: SimNode[] = []
  readonly falseDeaths: FalseDeath[] = []
  readonly config: MembershipConfig
  readonly seed: number
  /** Messages that failed validation on delivery; the protocol must never produce one. */
  invalidMessages = 0
  messagesLost = 0
  #nowMs = 0
  #order = 0
  readonly #events = new EventHeap()
  readonly #network: Random
  readonly #nodeSeeds: Random
  readonly #byPeer = new Map<PeerAddress, number>()
  readonly #byId = new Map<NodeId, number>()
  /** Messages and bytes sent since the last resetTraffic(), by message type. */
  readonly #trafficByType = new Map<MembershipMessage['type'], { messages: number; bytes: number }>()
  /** Per node: the generation of its one valid pending tick, and when that tick is due. */
  readonly #tickGeneration: number[] = []
  readonly #tickDueAtMs: number[] = []
  /** Partition side per node; messages only pass between nodes on the same side. */
  readonly #side: number[] = []
  readonly #lossProbability: number
  readonly #delayMinMs: number
  readonly #delayMaxMs: number
  readonly #wireCodec: boolean
  #trace = 0x811c9dc5

  constructor(options: SimulationOptions) {
    this.seed = options.seed
    this.config = { ...DEFAULT_LAN_MEMBERSHIP_CONFIG, ...options.config }
    this.#lossProbability = options.lossProbability ?? 0
    this.#delayMinMs = options.delayMinMs ?? 1
    this.#delayMaxMs = Math.max(this.#delayMinMs, options.delayMaxMs ?? 5)
    this.#wireCodec = options.wireCodec ?? true
    const master = createRandom(options.seed)
    this.#network = createRandom(master.int(2 ** 32))
    this.#nodeSeeds = createRandom(master.int(2 ** 32))
    for (let i = 0; i < options.nodeCount; i++) this.#createNode()
    const spreadMs = options.joinSpreadMs ?? 0
    const first = this.nodes[0]
    if (first === undefined) return
    this.#push({ kind: 'join', node: 0, seeds: [], atMs: 0 })
    for (const node of this.nodes.slice(1)) {
      this.#push({ kind: 'join', node: node.index, seeds: [first.peer], atMs: spreadMs > 0 ? this.#network.int(spreadMs) : 0 })
    }
  }

  get nowMs(): number {
    return this.#nowMs
  }

  /** A hash of every delivery and membership change so far: equal for equal seeds. */
  get traceDigest(): string {
    return (this.#trace >>> 0).toString(16).padStart(8, '0')
  }

  upNodes(): SimNode[] {
    return this.nodes.filter(node => node.up)
  }

  /** Runs every event due up to `nowMs + durationMs`. */
  runFor(durationMs: number): void {
    this.#runTo(this.#nowMs + durationMs)
  }

  /**
   * Runs until `predicate` holds (checked every `checkEveryMs` of simulated time) or `maxMs`
   * has passed. Returns the simulated time it took, or undefined if it never held.
   */
  runUntil(predicate: () => boolean, maxMs: number, checkEveryMs = 50): number | undefined {
    const startMs = this.#nowMs
    while (this.#nowMs - startMs < maxMs) {
      this.#runTo(Math.min(startMs + maxMs, this.#nowMs + checkEveryMs))
      if (predicate()) return this.#nowMs - startMs
    }
    return undefined
  }

  /** Adds a node that joins now through `seedIndex`. */
  addNode(seedIndex = 0): SimNode {
    const node = this.#createNode()
    this.#push({ kind: 'join', node: node.index, seeds: [this.#nodeAt(seedIndex).peer], atMs: this.#nowMs })
    return node
  }

  /** Crash-stops a node: no goodbye, in-flight messages to it are lost. */
  kill(index: number): void {
    const node = this.#nodeAt(index)
    node.up = false
    this.#tickGeneration[index] = (this.#tickGeneration[index] ?? 0) + 1
    this.#tickDueAtMs[index] = Infinity
  }

  /** Restarts a killed node with the same id, its stored incarnation, and joins through `seedIndex`. */
  restart(index: number, seedIndex: number): void {
    const node = this.#nodeAt(index)
    if (node.up) throw new Error(`node ${index} is running`)
    node.up = true
    node.swim = this.#newSwim(node)
    this.#push({ kind: 'join', node: index, seeds: [this.#nodeAt(seedIndex).peer], atMs: this.#nowMs })
  }

  /** Graceful leave of one node; it keeps gossiping until stop(). */
  leave(index: number): void {
    const node = this.#nodeAt(index)
    this.#perform(node, node.swim.leave(this.#nowMs))
  }

  /** Cuts the listed nodes off from all others until heal(). */
  partition(isolated: readonly number[]): void {
    for (const index of isolated) this.#side[index] = 1
  }

  heal(): void {
    this.#side.fill(0)
  }

  /** State of `subject` as `observer` sees it, undefined when unknown. */
  stateSeenBy(observer: number, subject: number): MemberState | undefined {
    return this.#nodeAt(observer).swim.member(this.#nodeAt(subject).id)?.state
  }

  /** Whether every running node (but the subject itself) sees `subject` in `state`. */
  allSee(subject: number, state: MemberState): boolean {
    return this.nodes.every(node => !node.up || node.index === subject || this.stateSeenBy(node.index, subject) === state)
  }

  /** Whether every running node sees exactly the running nodes as alive and nobody else. */
  converged(): boolean {
    const up = this.upNodes()
    return up.every(observer =>
      observer.swim.memberCount('alive') === up.length && up.every(node => observer.swim.member(node.id)?.state === 'alive'))
  }

  /** Messages and bytes sent by running nodes since the counters were last reset. */
  traffic(): { messages: number; bytes: number; nodes: number } {
    let messages = 0
    let bytes = 0
    const up = this.upNodes()
    for (const node of up) {
      messages += node.messagesSent
      bytes += node.bytesSent
    }
    return { messages, bytes, nodes: up.length }
  }

  /** Messages and bytes sent by all nodes since the counters were last reset, by message type. */
  trafficByType(): Map<MembershipMessage['type'], { messages: number; bytes: number }> {
    return new Map([...this.#trafficByType].map(([type, counts]) => [type, { ...counts }]))
  }

  resetTraffic(): void {
    this.#trafficByType.clear()
    for (const node of this.nodes) {
      node.messagesSent = 0
      node.bytesSent = 0
    }
  }

  #createNode(): SimNode {
    const index = this.nodes.length
    let id: NodeId
    do {
      id = asNodeId(hex8(this.#nodeSeeds.int(2 ** 32)) + hex8(this.#nodeSeeds.int(2 ** 32)))
    } while (this.#byId.has(id))
    const host = `10.${(index >> 16) & 255}.${(index >> 8) & 255}.${index & 255}`
    const partial = { index, id, name: `node-${index}`, peer: `${host}:7946`, api: `${host}:7070`, up: true, storedIncarnation: 0, messagesSent: 0, bytesSent: 0 }
    const node: SimNode = { ...partial, swim: this.#newSwim(partial) }
    this.nodes.push(node)
    this.#byPeer.set(node.peer, index)
    this.#byId.set(node.id, index)
    this.#tickGeneration.push(0)
    this.#tickDueAtMs.push(Infinity)
    this.#side.push(0)
    return node
  }

  #newSwim(node: Pick<SimNode, 'id' | 'name' | 'peer' | 'api' | 'storedIncarnation'>): Swim {
    return new Swim({
      local: { id: node.id, name: node.name, peer: node.peer, api: node.api },
      storedIncarnation: node.storedIncarnation,
      config: this.config,
      random: createRandom(this.#nodeSeeds.int(2 ** 32)),
    })
  }

  #nodeAt(index: number): SimNode {
    const node = this.nodes[index]
    if (node === undefined) throw new RangeError(`no simulated node ${index}`)
    return node
  }

  #push(event: DistributiveOmit<SimEvent, 'order'>): void {
    this.#events.push({ ...event, order: this.#order++ } as SimEvent)
  }

  #runTo(targetMs: number): void {
    for (let processed = 0; ; processed++) {
      if (processed >= MAX_EVENTS_PER_RUN) throw new Error(`simulation seed ${this.seed}: more than ${MAX_EVENTS_PER_RUN} events in one run`)
      const next = this.#events.peek()
      if (next === undefined || next.atMs > targetMs) break
      this.#events.pop()
      this.#nowMs = Math.max(this.#nowMs, next.atMs)
      this.#handle(next)
    }
    this.#nowMs = Math.max(this.#nowMs, targetMs)
  }

  #handle(event: SimEvent): void {
    switch (event.kind) {
      case 'join': {
        const node = this.#nodeAt(event.node)
        if (node.up) this.#perform(node, node.swim.join(event.seeds, this.#nowMs))
        break
      }
      case 'tick': {
        const node = this.#nodeAt(event.node)
        if (!node.up || event.generation !== this.#tickGeneration[event.node]) break
        this.#tickDueAtMs[event.node] = Infinity
        this.#perform(node, node.swim.tick(this.#nowMs))
        break
      }
      case 'deliver': {
        const to = this.#nodeAt(event.to)
        const from = this.#nodeAt(event.from)
        if (!to.up) {
          this.messagesLost += 1
          break
        }
        let message: MembershipMessage
        if (event.payload instanceof Uint8Array) {
          try {
            const decoded = unpack(event.payload) as { type: string; body: unknown }
            message = validateMembershipMessage(decoded.type, decoded.body)
          } catch {
            this.invalidMessages += 1
            break
          }
        } else {
          message = event.payload
        }
        this.#mix(event.atMs, event.from, event.to, message.type.length)
        this.#perform(to, to.swim.receive({ id: from.id, peer: from.peer }, message, this.#nowMs))
        break
      }
    }
  }

  #perform(node: SimNode, effects: readonly SwimEffect[]): void {
    for (const effect of effects) {
      switch (effect.kind) {
        case 'send':
          this.#send(node, effect.to, effect.message)
          break
        case 'persistIncarnation':
          node.storedIncarnation = effect.incarnation
          break
        case 'memberChanged': {
          this.#mix(this.#nowMs, node.index, effect.member.incarnation, effect.member.state.length)
          if (effect.member.state !== 'dead') break
          const subject = this.nodes[this.#byId.get(effect.member.id) ?? -1]
          if (subject?.up === true && !subject.swim.hasLeft) this.falseDeaths.push({ atMs: this.#nowMs, observer: node.index, subject: subject.index })
          break
        }
        case 'memberReaped':
        case 'joined':
        case 'joinUnanswered':
          break
      }
    }
    this.#scheduleTick(node)
  }

  #send(from: SimNode, to: PeerAddress, message: MembershipMessage): void {
    const encoded = this.#wireCodec ? pack(message) : undefined
    const bytes = encoded?.length ?? estimateWireBytes(message)
    from.messagesSent += 1
    from.bytesSent += bytes
    const byType = this.#trafficByType.get(message.type) ?? { messages: 0, bytes: 0 }
    byType.messages += 1
    byType.bytes += bytes
    this.#trafficByType.set(message.type, byType)
    const target = this.#byPeer.get(to)
    if (target === undefined || this.#side[target] !== this.#side[from.index] || this.#network.chance(this.#lossProbability)) {
      this.messagesLost += 1
      return
    }
    const delayMs = this.#delayMinMs + this.#network.int(this.#delayMaxMs - this.#delayMinMs + 1)
    this.#push({ kind: 'deliver', from: from.index, to: target, payload: encoded ?? message, atMs: this.#nowMs + delayMs })
  }

  #scheduleTick(node: SimNode): void {
    const dueAtMs = Math.max(this.#nowMs, node.swim.nextTickAtMs())
    if (!node.up || dueAtMs === this.#tickDueAtMs[node.index] || dueAtMs === Infinity) return
    const generation = (this.#tickGeneration[node.index] ?? 0) + 1
    this.#tickGeneration[node.index] = generation
    this.#tickDueAtMs[node.index] = dueAtMs
    this.#push({ kind: 'tick', node: node.index, generation, atMs: dueAtMs })
  }

  /** FNV-1a over small integers: cheap, and any divergence between two runs changes it. */
  #mix(...values: number[]): void {
    for (const value of values) {
      this.#trace = Math.imul(this.#trace ^ (value & 0xffffffff), 0x01000193)
      this.#trace = Math.imul(this.#trace ^ Math.floor(value / 2 ** 32), 0x01000193)
    }
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never

function hex8(value: number): string {
  return value.toString(16).padStart(8, '0')
}

/** Min-heap of events by (atMs, order): ties run in scheduling order, keeping runs deterministic. */
class EventHeap {
  readonly #items: SimEvent[] = []

  peek(): SimEvent | undefined {
    return this.#items[0]
  }

  push(event: SimEvent): void {
    const items = this.#items
    items.push(event)
    let i = items.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (!before(items[i]!, items[parent]!)) break
      ;[items[i], items[parent]] = [items[parent]!, items[i]!]
      i = parent
    }
  }

  pop(): SimEvent | undefined {
    const items = this.#items
    const top = items[0]
    const last = items.pop()
    if (items.length === 0 || last === undefined) return top
    items[0] = last
    let i = 0
    for (;;) {
      const left = 2 * i + 1
      const right = left + 1
      let smallest = i
      if (left < items.length && before(items[left]!, items[smallest]!)) smallest = left
      if (right < items.length && before(items[right]!, items[smallest]!)) smallest = right
      if (smallest === i) break
      ;[items[i], items[smallest]] = [items[smallest]!, items[i]!]
      i = smallest
    }
    return top
  }
}

function before(a: SimEvent, b: SimEvent): boolean {
  return a.atMs < b.atMs || (a.atMs === b.atMs && a.order < b.order)
}
