import type { NodeId } from '../clock/version.js'
import type { Logger } from '../log/logger.js'
import type { Clock, TimerHandle } from '../runtime/clock.js'
import type { Transport } from '../transport/transport.js'
import { decodeState, type AcceptorStore } from './acceptor-store.js'
import { setKey, setMembers, type AcceptorSetGate, type PendingCatchUp, type SetKey } from './acceptor-sets.js'
import {
  MAX_CATCH_UP_BEHIND_SETS, MAX_CATCH_UP_ENTRIES, MAX_CATCH_UP_PAGE_BYTES, PAXOS_CATCH_UP, PAXOS_CATCH_UP_REPLY,
  type CatchUpBody, type CatchUpReplyBody,
} from './messages.js'

/**
 * Catching up the acceptor state of partitions whose acceptor set changed (acceptor-sets.ts rule
 * 2): for every pending partition and every set it must catch up from, the state of the
 * partition's keys is fetched from members of that set whose own view already is the new set,
 * merged key by key (mergeStates: the higher promise, the higher-ballot accepted value), and once
 * enough members answered — every accept quorum of the set includes one of them — the set is
 * done. Fetches to one member cover all its partitions and page through its acceptor store.
 */

export interface CatchUpOptions {
  readonly localId: NodeId
  readonly gate: AcceptorSetGate
  readonly store: AcceptorStore
  /** Acceptors a quorum needs (a majority of replication.factor). */
  readonly quorum: number
  /** Sends a catch-up request to a member; rejects when it is unreachable or does not answer. */
  readonly request: (member: NodeId, body: CatchUpBody) => Promise<CatchUpReplyBody>
  readonly clock: Clock
  /** Wait before trying again while something is still pending. */
  readonly retryMs: number
  readonly log: Logger
  readonly onCaughtUp?: (partitions: number) => void
}

/** Members of `source` an answer is needed from: enough that every quorum of the set includes one. */
export function neededFrom(source: SetKey, quorum: number): number {
  return Math.max(1, setMembers(source).length - quorum + 1)
}

export class CatchUp {
  readonly #options: CatchUpOptions
  #running = false
  #again = false
  #timer: TimerHandle | undefined
  #stopped = false

  constructor(options: CatchUpOptions) {
    this.#options = options
  }

  /** Something may be pending (a placement change, a start): runs a pass soon. */
  kick(): void {
    if (this.#stopped) return
    if (this.#running) {
      this.#again = true
      return
    }
    if (this.#timer !== undefined) this.#options.clock.clearTimeout(this.#timer)
    this.#timer = this.#options.clock.setTimeout(() => {
      this.#timer = undefined
      void this.#pass()
    }, 0)
  }

  stop(): void {
    this.#stopped = true
    if (this.#timer !== undefined) this.#options.clock.clearTimeout(this.#timer)
    this.#timer = undefined
  }

  async #pass(): Promise<void> {
    if (this.#stopped) return
    this.#running = true
    this.#again = false
    try {
      await this.#catchUp(this.#options.gate.pending())
    } catch (error) {
      this.#options.log.warn({ err: error }, 'catching up acceptor state failed; retrying')
    } finally {
      this.#running = false
    }
    if (this.#stopped) return
    if (this.#again) this.kick()
    else if (this.#options.gate.pending().length > 0) {
      this.#timer = this.#options.clock.setTimeout(() => {
        this.#timer = undefined
        void this.#pass()
      }, this.#options.retryMs)
    }
  }

  async #catchUp(pending: readonly PendingCatchUp[]): Promise<void> {
    if (pending.length === 0) return
    const { localId } = this.#options
    // Per member of any source set: the partitions to ask it about.
    const asks = new Map<NodeId, PendingCatchUp[]>()
    for (const entry of pending) {
      for (const source of entry.sources) {
        for (const member of setMembers(source)) {
          if (member === localId) continue
          const list = asks.get(member) ?? []
          if (!list.includes(entry)) list.push(entry)
          asks.set(member, list)
        }
      }
    }
    // Per member: the partitions it answered for on the target view, and the sets it is behind on there.
    const answered = new Map<NodeId, Map<number, readonly SetKey[]>>()
    // Counted as the answers arrive: a member that is slow or cut off holds up nothing once
    // enough others answered.
    const tally = (): void => {
      let done = 0
      for (const entry of pending) {
        const before = this.#options.gate.current(entry.partition) === entry.target && this.#options.gate.isPending(entry.partition)
        for (const source of entry.sources) {
          // This node's own state is merged already: it counts when it is a member of the source.
          // A member behind on a set counts only if this node catches up from that set itself (acceptor-sets.ts rule 5).
          const counts = (m: NodeId): boolean => {
            const behind = answered.get(m)?.get(entry.partition)
            return behind !== undefined && this.#options.gate.catchesUpFrom(entry.partition, entry.target, source, behind)
          }
          const count = setMembers(source).filter((m) => m === localId || counts(m)).length
          if (count >= neededFrom(source, this.#options.quorum)) this.#options.gate.sourceDone(entry.partition, entry.target, source)
        }
        if (before && !this.#options.gate.isPending(entry.partition)) done++
      }
      if (done > 0) {
        this.#options.log.info({ partitions: done }, 'caught up the acceptor state of partitions whose acceptor set changed')
        this.#options.onCaughtUp?.(done)
      }
    }
    tally()
    await Promise.all([...asks].map(async ([member, entries]) => {
      try {
        answered.set(member, await this.#fetchFrom(member, entries))
        tally()
      } catch (error) {
        this.#options.log.debug({ err: error, member }, 'a catch-up source did not answer')
      }
    }))
  }

  /**
   * Pages through `member`'s acceptor state of `entries`' partitions; the partitions it served
   * with one unmoved view throughout, each with the sets it said it is behind on.
   */
  async #fetchFrom(member: NodeId, entries: readonly PendingCatchUp[]): Promise<Map<number, readonly SetKey[]>> {
    const body = { partitions: entries.map((e) => ({ partition: e.partition, set: setMembers(e.target) })), maxBytes: MAX_CATCH_UP_PAGE_BYTES }
    let after: string | null = null
    let generation: number | undefined
    let matched: Set<number> | undefined
    const behind = new Map<number, SetKey[]>()
    const targets = new Map(entries.map((e) => [e.partition, e.target]))
    for (;;) {
      const reply = await this.#options.request(member, { ...body, after })
      if (generation !== undefined && reply.generation !== generation) throw new Error(`member ${member}'s view of the placement moved during the catch-up`)
      generation = reply.generation
      // A fresh member holds nothing of those partitions, and a fresh guess must not contain it.
      for (const partition of reply.fresh ?? []) this.#options.gate.foundFresh(partition, member)
      for (const { partition, sets } of reply.behind ?? []) {
        const keys = sets.map(setKey)
        behind.set(partition, [...new Set([...(behind.get(partition) ?? []), ...keys])])
        // What it lacks this node fetches itself (acceptor-sets.ts rule 5): run again for the new sources.
        const target = targets.get(partition)
        if (target !== undefined && this.#options.gate.discovered(partition, target, keys)) this.#again = true
      }
      const pageMatched = new Set(reply.matched)
      matched = matched === undefined ? pageMatched : new Set([...matched].filter((p) => pageMatched.has(p)))
      const states = reply.entries.map(({ key, state }) => ({ key, state: decodeState(state, key) }))
      await this.#options.store.mergeMany(states)
      if (reply.next === null) return new Map([...matched].map((partition) => [partition, behind.get(partition) ?? []]))
      after = reply.next
    }
  }
}

export interface CatchUpResponderOptions {
  readonly gate: AcceptorSetGate
  readonly store: AcceptorStore
  readonly partitionOf: (key: string) => number
}

/** Answers catch-up requests with this node's acceptor state of the partitions whose set it sees as the requester does. */
export function registerCatchUpResponder(transport: Pick<Transport, 'handle'>, options: CatchUpResponderOptions): void {
  transport.handle(PAXOS_CATCH_UP, async (_from, message) => {
    const request = message.body as CatchUpBody
    const body = await answerCatchUp(options, request)
    return { type: PAXOS_CATCH_UP_REPLY, body }
  })
}

export async function answerCatchUp(options: CatchUpResponderOptions, request: CatchUpBody): Promise<CatchUpReplyBody> {
  const { gate, store, partitionOf } = options
  // The view is checked first; from here on every paxos request tagged with the old set is refused
  // (the acceptor checks in the run that decides), and the scan checkpoints those decided before.
  const generation = gate.generation
  const known = request.partitions.filter(({ partition }) => partition < gate.partitionCount)
  // A fresh node's view counts for nothing: it never took a request, and holds no state to pass on.
  const fresh = known.filter(({ partition }) => gate.isFresh(partition)).map((p) => p.partition)
  const behind: { partition: number; sets: NodeId[][] }[] = []
  const matched = known.filter(({ partition, set }) => {
    if (gate.isFresh(partition) || gate.current(partition) !== setKey(set)) return false
    const sets = gate.behind(partition)
    // Behind on more than an answer can say: it counts for nothing (the requester waits for it to catch up).
    if (sets.length > MAX_CATCH_UP_BEHIND_SETS) return false
    if (sets.length > 0) behind.push({ partition, sets: sets.map(setMembers) })
    return true
  }).map((p) => p.partition)
  // The view reported here must survive a restart (acceptor-sets.ts rule 3).
  await gate.durable()
  const wanted = new Set(matched)
  const page = wanted.size === 0
    ? { entries: [], next: undefined }
    : await store.scan(request.after ?? undefined, Math.min(request.maxBytes, MAX_CATCH_UP_PAGE_BYTES), MAX_CATCH_UP_ENTRIES, (key) => wanted.has(partitionOf(key)))
  // A view that moved while the page was read: nothing on it counts (the requester asks again).
  if (gate.generation !== generation) return { generation: gate.generation, matched: [], fresh, entries: [], next: null }
  return { generation, matched, fresh, ...(behind.length > 0 ? { behind } : {}), entries: page.entries, next: page.next ?? null }
}
