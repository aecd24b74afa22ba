import type { NodeId } from '../../lib/clock/version.js'
import { Acceptor } from '../../lib/paxos/acceptor.js'
import { AcceptorStore } from '../../lib/paxos/acceptor-store.js'
import type { Ballot } from '../../lib/paxos/ballot.js'
import { Proposer, type ProposerOptions } from '../../lib/paxos/proposer.js'
import { FakeClock } from '../../lib/runtime/clock.js'
import { createRandom } from '../../lib/runtime/random.js'
import { MemoryDatabase } from '../../lib/sim/memory-database.js'
import { MemoryJournal } from '../../lib/sim/memory-journal.js'
import type { StoredRecord } from '../../lib/store/record.js'
import { TransportError } from '../../lib/transport/transport.js'

/**
 * Acceptors and proposers of one key wired over an in-memory "network" of function calls, with a
 * fake clock: the real Acceptor (over a MemoryDatabase and a MemoryJournal, which keep its state across a "restart")
 * and the real Proposer. Faults: an acceptor can be down (refuses to connect) or lose its replies
 * (it handles the request, the proposer never hears back).
 */
export const ids = ['aaaaaaaaaaaaaaaa', 'bbbbbbbbbbbbbbbb', 'cccccccccccccccc'] as NodeId[]

export interface Site {
  readonly id: NodeId
  readonly db: MemoryDatabase<Uint8Array, Uint8Array>
  readonly journal: MemoryJournal
  /** The node's plain store (what `stored` answers and what commits write). */
  readonly kv: Map<string, StoredRecord>
  acceptor: Acceptor
  down: boolean
  loseReplies: boolean
}

export interface Counts { prepares: number; accepts: number }

export class Cluster {
  readonly clock = new FakeClock(1_000_000)
  readonly sites: Site[]
  readonly counts: Counts = { prepares: 0, accepts: 0 }
  /** One HLC stand-in for every proposer: ticks are unique across the cluster, as HLC ticks with node ids are. */
  #tick = 1_000_000

  private constructor(sites: Site[]) {
    this.sites = sites
  }

  static async create(): Promise<Cluster> {
    const cluster = new Cluster([])
    for (const id of ids) {
      const db = new MemoryDatabase<Uint8Array, Uint8Array>()
      const journal = new MemoryJournal()
      const kv = new Map<string, StoredRecord>()
      cluster.sites.push({ id, db, journal, kv, acceptor: await cluster.#acceptor(db, journal, kv), down: false, loseReplies: false })
    }
    return cluster
  }

  async #acceptor(db: MemoryDatabase<Uint8Array, Uint8Array>, journal: MemoryJournal, kv: Map<string, StoredRecord>): Promise<Acceptor> {
    // The fake clock moves on without turns of the event loop: journal syncs run as microtasks.
    return new Acceptor({ store: await AcceptorStore.open({ db, journal, defer: queueMicrotask }), stored: (key) => kv.get(key), refusal: () => undefined, observeTick: (t) => this.observe(t) })
  }

  /** The acceptor process crashes and restarts: a new Acceptor over what its journal synced and its database holds. */
  async restart(site: Site): Promise<void> {
    site.journal.crash()
    site.acceptor = await this.#acceptor(site.db, site.journal, site.kv)
  }

  observe(tick: number): void {
    this.#tick = Math.max(this.#tick, tick)
  }

  proposer(id: NodeId, overrides: Partial<ProposerOptions> = {}): Proposer {
    const reach = (to: NodeId): Site => {
      const site = this.sites.find((s) => s.id === to)!
      if (site.down) throw new TransportError(`${to} is down`, 'unreachable')
      return site
    }
    const deliver = async <T>(site: Site, answer: Promise<T>): Promise<T> => {
      const value = await answer
      if (site.loseReplies) throw new TransportError(`reply from ${site.id} lost`, 'timeout')
      return value
    }
    return new Proposer({
      localId: id,
      acceptorsFor: () => ids,
      quorum: 2,
      prepare: async (to, key, ballot: Ballot, set) => {
        this.counts.prepares++
        const site = reach(to)
        return deliver(site, site.acceptor.prepare(key, ballot, set))
      },
      accept: async (to, key, ballot, record, history, set) => {
        this.counts.accepts++
        const site = reach(to)
        return deliver(site, site.acceptor.accept(key, ballot, record, history, set))
      },
      nextTick: async () => ++this.#tick,
      observeTick: (t) => this.observe(t),
      clock: this.clock,
      random: createRandom(7),
      roundTimeoutMs: 1000,
      maxAttempts: 10,
      backoffBaseMs: 4,
      backoffMaxMs: 100,
      maxCachedKeys: 100,
      maxQueuedPerKey: 100,
      commit: (key, record) => {
        for (const site of this.sites) {
          const held = site.kv.get(key)
          if (!site.down && (held === undefined || held.version.hlc < record.version.hlc)) site.kv.set(key, record)
        }
      },
      nowMs: () => this.clock.nowMs(),
      ...overrides,
    })
  }

  /** Runs `work` while moving the fake clock on, so backoffs and round deadlines pass; bounded. */
  async run<T>(work: Promise<T>): Promise<T> {
    let done = false
    const settled = work.finally(() => { done = true })
    // Handled here for now: the caller awaits (or t.rejects) the returned promise below.
    settled.catch(() => undefined)
    for (let step = 0; step < 10_000 && !done; step++) await this.clock.advance(5)
    return settled
  }
}
