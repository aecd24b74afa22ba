import { isNodeId, type NodeId } from '../clock/version.js'

/**
 * Which partitions this node may answer paxos requests for, and what it must catch up first
 * (docs/consistency.md "Acceptor-set changes"). A partition's acceptor set is its replica set in
 * this node's view of the membership (PlacementTable.replicas). Two rules keep every prepare
 * quorum intersecting every earlier accept quorum while that set changes:
 *
 * 1. Requests carry the proposer's acceptor set; an acceptor whose own view differs refuses
 *    ("placement mismatch"). So every quorum is a majority of one set, whose members all had
 *    that set as their view when they answered.
 * 2. When this node's view of a partition's set changes from P to S and it is a member of S, it
 *    refuses ("catching up") until it has merged the acceptor state of the partition from enough
 *    members of P (every set it held or was last ready in since it last answered) — read while
 *    those members' view was S, so none of them takes a P-tagged request afterwards. This holds
 *    for a member new to S and for one that stays: a set that comes back (a node joins, then
 *    leaves) must not forget what was chosen while it was away.
 * 3. Restarts: the view is persisted with the rest, and written before this node answers a
 *    catch-up with it (durable()), so a node that restarts catches up from the set it last held —
 *    it may have told a catch-up it left that set — not only from the one it last answered for.
 * 4. Fresh nodes: a node that never answered for a partition (a fresh data dir) holds nothing of
 *    it and says so to a catch-up (isFresh); its answer counts for nothing, and a fresh node that
 *    guessed its previous set with such a node in it guesses again without it — two nodes that
 *    join at once must not make each other the previous set.
 *
 * 5. A member that answers a catch-up before it has caught up itself lists the sets it last
 *    answered for or still has to catch up from (behind): its state covers no more. It counts
 *    only toward a node that catches up from each of those sets itself (catchesUpFrom), and the
 *    node that hears the list adds them to its sources (discovered). So a node that skipped a set
 *    others went through, or guessed its previous set from a partial view of the membership,
 *    learns of it from the members that did not, and never takes a member halfway through that
 *    set's catch-up for one that carries it.
 *
 * The state is persisted (meta `paxosAcceptorSets`), so a restart in the middle of a catch-up
 * keeps refusing, and a restart into a changed membership catches up from the sets it last held
 * and served.
 */

/** A set as one string: the ids in rank order, comma-joined (rendezvous ranks depend on ids alone, so equal sets give equal keys). */
export type SetKey = string

export function setKey(ids: readonly NodeId[]): SetKey {
  return ids.join(',')
}

export function setMembers(key: SetKey): NodeId[] {
  return key === '' ? [] : key.split(',') as NodeId[]
}

/** Sets a partition may wait to catch up from at once (distinct sets seen since it last answered: a handful in practice); a stored state with more is refused as corrupt. */
export const MAX_SOURCES_PER_PARTITION = 1024

interface PartitionState {
  /** This node's view of the partition's acceptor set; undefined before the first update. */
  current: SetKey | undefined
  /** The same as ids, and whether this node answers for it at all (#usable): kept so a request costs no string work. */
  currentIds: readonly NodeId[]
  usable: boolean
  /** The set this node last answered as an acceptor of; null: never (a fresh data dir). */
  lastReady: SetKey | null
  /** Sets to catch up from before answering for `current`; empty once caught up. */
  sources: SetKey[]
  /** The view persisted before the last restart (a set this node may have told a catch-up it had left); consumed by the first update. */
  restoredView: SetKey | null
  /** A fresh node's guess of the set before it (one of `sources`), and the members it found fresh and left out of it. */
  guess: SetKey | undefined
  readonly freshMembers: Set<NodeId>
  /** Sources caught up from for `current` (a set discovered again after it is not added again); cleared when the view moves. */
  readonly done: Set<SetKey>
}

export interface PendingCatchUp {
  readonly partition: number
  readonly target: SetKey
  readonly sources: readonly SetKey[]
}

/** Persisted form: per partition `[lastReady | null, sources, view | null]` (format 1 had no view). */
export interface PersistedAcceptorSets {
  readonly format: 1 | 2
  readonly partitions: readonly (readonly [SetKey | null, readonly SetKey[]] | readonly [SetKey | null, readonly SetKey[], SetKey | null])[]
}

export interface AcceptorSetGateOptions {
  readonly localId: NodeId
  /** Acceptors a quorum needs (a majority of replication.factor). */
  readonly quorum: number
  readonly partitionCount: number
  /** What meta `paxosAcceptorSets` held at start (undefined: a fresh data dir). */
  readonly persisted: unknown
  /**
   * Writes the state durably; resolves once written. Catch-up answers wait for it (durable()):
   * a view this node reports to a catch-up must survive a restart.
   */
  readonly persist: (state: PersistedAcceptorSets) => Promise<void> | void
  /**
   * The partition's set among the members other than this node and `without` (members found
   * fresh): the previous set a node with a fresh data dir catches up from (it joins a membership
   * that had that placement before it).
   */
  readonly setWithoutSelf: (partition: number, without: ReadonlySet<NodeId>) => readonly NodeId[]
}

export class CorruptAcceptorSetsError extends Error {
  constructor(reason: string) {
    super(`the stored acceptor-set state (meta paxosAcceptorSets) is corrupt: ${reason}; restore the data dir from a backup or start the node with an empty one`)
    this.name = 'CorruptAcceptorSetsError'
  }
}

export class AcceptorSetGate {
  readonly #options: AcceptorSetGateOptions
  readonly #partitions: PartitionState[]
  /** Bumped on every change of any partition's view: a catch-up responder reports it (catch-up.ts). */
  #generation = 0
  #persistQueued = false
  /** Settles once the latest state handed to persist is written (or failed: the failure is logged there). */
  #written: Promise<void> = Promise.resolve()

  constructor(options: AcceptorSetGateOptions) {
    this.#options = options
    const persisted = options.persisted === undefined ? undefined : validatePersisted(options.persisted, options.partitionCount)
    this.#partitions = Array.from({ length: options.partitionCount }, (_, p) => ({
      current: undefined,
      currentIds: [],
      usable: false,
      lastReady: persisted?.partitions[p]?.[0] ?? null,
      sources: [...(persisted?.partitions[p]?.[1] ?? [])],
      restoredView: persisted?.partitions[p]?.[2] ?? null,
      guess: undefined,
      freshMembers: new Set<NodeId>(),
      done: new Set<SetKey>(),
    }))
  }

  get partitionCount(): number {
    return this.#partitions.length
  }

  get generation(): number {
    return this.#generation
  }

  /** This node's view of `partition`'s acceptor set. */
  current(partition: number): SetKey | undefined {
    return this.#state(partition).current
  }

  /** Adopts a new view of every partition's acceptor set (call on every placement change). */
  update(setOf: (partition: number) => readonly NodeId[]): void {
    let changed = false
    this.#partitions.forEach((state, partition) => {
      const ids = setOf(partition)
      if (state.current !== undefined && sameIds(ids, state.currentIds)) return
      changed = true
      state.currentIds = [...ids]
      this.#transition(partition, state, setKey(ids))
      state.usable = this.#usable(state.current!)
    })
    if (!changed) return
    this.#generation++
    this.#persist()
  }

  /** Why this node must not answer a paxos request about `partition` tagged with `set`; undefined when it may. */
  refusal(partition: number, set: readonly NodeId[]): string | undefined {
    const state = this.#state(partition)
    if (state.current === undefined) return 'this node has not computed its placement yet; retry shortly'
    if (!sameIds(set, state.currentIds)) {
      return `placement mismatch for partition ${partition}: the proposer's acceptor set is [${setKey(set)}], this node's is [${state.current}]; views converge within seconds of a membership change, retry`
    }
    if (!state.usable) return 'this node is not one of the key\'s acceptors in its view of the membership'
    if (state.sources.length > 0) {
      return `partition ${partition}'s acceptor set changed and this node is still catching up the acceptor state of the previous set; retry shortly`
    }
    return undefined
  }

  /** This node never answered for `partition` (a fresh data dir): its acceptor state of it is empty, and a catch-up must not count it. */
  isFresh(partition: number): boolean {
    return this.#state(partition).lastReady === null
  }

  /** Resolves once every state change made so far is written (a catch-up answer waits for it). */
  async durable(): Promise<void> {
    await this.#written
  }

  /**
   * `member` answered a catch-up of `partition` saying it is fresh. While this node is fresh and
   * still catching up from its guess of the previous set, a guess that counted `member` is
   * replaced by one without it: two nodes that join at once are not each other's previous set.
   */
  foundFresh(partition: number, member: NodeId): void {
    const state = this.#state(partition)
    if (state.lastReady !== null || state.guess === undefined || !setMembers(state.guess).includes(member)) return
    state.freshMembers.add(member)
    const guess = setKey(this.#options.setWithoutSelf(partition, state.freshMembers))
    state.sources = state.sources.filter((s) => s !== state.guess)
    state.guess = undefined
    if (this.#hasQuorum(guess) && guess !== state.current && !state.sources.includes(guess)) {
      state.sources.push(guess)
      state.guess = guess
    }
    if (state.sources.length === 0 && state.current !== undefined && this.#usable(state.current)) state.lastReady = state.current
    this.#persist()
  }

  /**
   * The sets a node that counts this one's catch-up answer about `partition` must catch up from
   * as well (rule 5): none once caught up for the current set; before that, the set it last
   * answered for and those it still has to catch up from — its state covers no more.
   */
  behind(partition: number): SetKey[] {
    const state = this.#state(partition)
    if (state.current !== undefined && state.lastReady === state.current && state.sources.length === 0) return []
    const sets = state.lastReady === null ? [...state.sources] : [state.lastReady, ...state.sources.filter((s) => s !== state.lastReady)]
    return sets.filter((s) => s !== state.current && this.#hasQuorum(s))
  }

  /**
   * Whether a member that answered this node's catch-up of `partition` from `source` towards
   * `target`, behind on `behind`, may be counted (rule 5): only if this node catches up from
   * every one of those sets itself — they are `source`, or among its sources or done ones.
   * Otherwise its state lacks something this node would not fetch: wait until it caught up.
   */
  catchesUpFrom(partition: number, target: SetKey, source: SetKey, behind: readonly SetKey[]): boolean {
    const state = this.#state(partition)
    if (state.current !== target) return false
    return behind.every((set) => set === source || set === target || !this.#hasQuorum(set) || state.sources.includes(set) || state.done.has(set))
  }

  /**
   * A member answered this node's catch-up of `partition` towards `target` while behind on
   * `sets` (rule 5): they become sources, so that its answer counts (catchesUpFrom) and what it
   * lacks is fetched all the same. A member that left the set never catches up for it, so
   * waiting for it instead would wait forever. True when any was added.
   */
  discovered(partition: number, target: SetKey, sets: readonly SetKey[]): boolean {
    const state = this.#state(partition)
    if (state.current !== target || !this.#usable(target) || state.sources.length === 0) return false
    let added = false
    for (const set of sets) {
      if (set === target || !this.#hasQuorum(set) || state.sources.includes(set) || state.done.has(set)) continue
      state.sources.push(set)
      added = true
    }
    if (added) this.#persist()
    return added
  }

  /** Partitions whose current set this node belongs to but has not caught up for yet. */
  pending(): PendingCatchUp[] {
    const pending: PendingCatchUp[] = []
    this.#partitions.forEach((state, partition) => {
      if (state.current !== undefined && this.#usable(state.current) && state.sources.length > 0) {
        pending.push({ partition, target: state.current, sources: [...state.sources] })
      }
    })
    return pending
  }

  /** True while this node is a member of `partition`'s set and still catching up for it. */
  isPending(partition: number): boolean {
    const state = this.#state(partition)
    return state.current !== undefined && this.#usable(state.current) && state.sources.length > 0
  }

  /**
   * Enough of `source` was merged for `target`: drop it from the partition's sources; with none
   * left (and the view still `target`) the node answers for the partition again.
   */
  sourceDone(partition: number, target: SetKey, source: SetKey): void {
    const state = this.#state(partition)
    if (state.current !== target || !state.sources.includes(source)) return
    state.sources = state.sources.filter((s) => s !== source)
    state.done.add(source)
    if (state.sources.length === 0) {
      state.lastReady = target
      state.guess = undefined
    }
    this.#persist()
  }

  #transition(partition: number, state: PartitionState, next: SetKey): void {
    const previous = state.current
    state.current = next
    state.done.clear()
    const add = (source: SetKey | null | undefined): void => {
      if (source !== null && source !== undefined && this.#hasQuorum(source) && !state.sources.includes(source)) state.sources.push(source)
    }
    // Every set this node held since it last answered may have chosen values without it —
    // the one it held before a restart too: it may have told a catch-up it had left it.
    if (previous !== undefined && previous !== next) add(previous)
    if (previous === undefined && state.restoredView !== next) add(state.restoredView)
    state.restoredView = null
    if (!this.#usable(next)) return
    if (state.lastReady !== next) add(state.lastReady)
    if (state.lastReady === null && state.guess === undefined) {
      const guess = setKey(this.#options.setWithoutSelf(partition, state.freshMembers))
      if (this.#hasQuorum(guess) && guess !== next) state.guess = guess
      add(state.guess)
    }
    // Catching up the set itself is what the quorum of the set does anyway.
    state.sources = state.sources.filter((s) => s !== next)
    if (state.sources.length === 0) {
      state.lastReady = next
      state.guess = undefined
    }
  }

  /** A set that could have formed a quorum. */
  #hasQuorum(key: SetKey): boolean {
    return setMembers(key).length >= this.#options.quorum
  }

  /** A set this node answers for: it is a member, and the set can form a quorum at all. */
  #usable(key: SetKey): boolean {
    return this.#hasQuorum(key) && setMembers(key).includes(this.#options.localId)
  }

  /** Once per turn at most: a catch-up finishing hundreds of partitions writes the state once. */
  #persist(): void {
    if (this.#persistQueued) return
    this.#persistQueued = true
    this.#written = new Promise<void>((resolve) => {
      queueMicrotask(() => {
        this.#persistQueued = false
        const partitions = this.#partitions.map((s) => [s.lastReady, [...s.sources], s.current ?? s.restoredView] as const)
        // The store commits writes in the order they were made: a later state never lands before an earlier one.
        Promise.resolve(this.#options.persist({ format: 2, partitions })).then(() => resolve(), () => resolve())
      })
    })
  }

  #state(partition: number): PartitionState {
    const state = this.#partitions[partition]
    if (state === undefined) throw new RangeError(`partition must be an integer in [0, ${this.#partitions.length}), got ${partition}`)
    return state
  }
}

function sameIds(a: readonly NodeId[], b: readonly NodeId[]): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

function validatePersisted(value: unknown, partitionCount: number): PersistedAcceptorSets {
  if (typeof value !== 'object' || value === null) throw new CorruptAcceptorSetsError('not an object')
  const { format, partitions } = value as { format?: unknown; partitions?: unknown }
  if (format !== 1 && format !== 2) throw new CorruptAcceptorSetsError(`unknown format ${String(format)}`)
  if (!Array.isArray(partitions)) throw new CorruptAcceptorSetsError('partitions is not an array')
  // Written with another partition count: the cluster's partitions changed, which the config forbids.
  if (partitions.length !== partitionCount) throw new CorruptAcceptorSetsError(`it has ${partitions.length} partitions, the config ${partitionCount}`)
  for (const entry of partitions as unknown[]) {
    if (!Array.isArray(entry) || entry.length !== format + 1) throw new CorruptAcceptorSetsError(`a partition entry is not [lastReady, sources${format === 2 ? ', view' : ''}]`)
    const [lastReady, sources, view] = entry as unknown[]
    if (lastReady !== null && !isSetKey(lastReady)) throw new CorruptAcceptorSetsError('a lastReady is not a set of node ids')
    if (format === 2 && view !== null && !isSetKey(view)) throw new CorruptAcceptorSetsError('a view is not a set of node ids')
    if (!Array.isArray(sources) || sources.length > MAX_SOURCES_PER_PARTITION || !sources.every(isSetKey)) throw new CorruptAcceptorSetsError('a sources list is not a list of sets')
  }
  return value as PersistedAcceptorSets
}

function isSetKey(value: unknown): value is SetKey {
  return typeof value === 'string' && (value === '' || value.split(',').every(isNodeId))
}
