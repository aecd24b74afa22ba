import { compareVersions, type NodeId, type Version } from '../clock/version.js'
import { ConditionFailedError, OutcomeUnknownError, UnavailableError } from '../errors.js'
import { sleep, type Clock } from '../runtime/clock.js'
import type { Random } from '../runtime/random.js'
import { compareRecords, isLive, type StoredRecord } from '../store/record.js'
import { ZERO_BALLOT, compareBallots, maxBallot, type Ballot } from './ballot.js'
import { MAX_HISTORY, nextBallot, type Accepted } from './acceptor-state.js'
import type { Change, ChangeOutcome } from './changes.js'
import type { AcceptAnswer, PromiseAnswer } from './messages.js'
import { KeyQueue } from './key-queue.js'

export interface ProposerOptions {
  readonly localId: NodeId
  /** The key's acceptors: its replicas, best first (lib/placement). */
  readonly acceptorsFor: (key: string) => readonly NodeId[]
  /** Answers a prepare quorum needs: a majority of replication.factor. */
  readonly quorum: number
  /**
   * Sends a prepare to one acceptor (this node's own is called directly); rejects when it is not
   * reached. `set` is the key's acceptor set as this proposer sees it: an acceptor that sees
   * another refuses (acceptor-sets.ts).
   */
  readonly prepare: (acceptor: NodeId, key: string, ballot: Ballot, set: readonly NodeId[]) => Promise<PromiseAnswer>
  /**
   * `alone`: no other operation is running on this node, so no other accept can join this one's
   * batch this turn and it may leave at once (accept-batcher.ts).
   */
  readonly accept: (acceptor: NodeId, key: string, ballot: Ballot, record: StoredRecord, history: readonly Version[], set: readonly NodeId[], alone?: boolean) => Promise<AcceptAnswer>
  /** A fresh HLC tick: ballot counters and versions of new values. */
  readonly nextTick: () => Promise<number>
  /** Moves the HLC past a tick seen from another node; throws ClockSkewError beyond the skew bound. */
  readonly observeTick: (tick: number) => void
  readonly clock: Clock
  readonly random: Random
  /** How long one round (prepare or accept) waits for a quorum. */
  readonly roundTimeoutMs: number
  /** Rounds one operation may start before it gives up (contention, unreachable acceptors). */
  readonly maxAttempts: number
  /** Backoff between attempts: full jitter below min(max, base × 2^attempt) ms. */
  readonly backoffBaseMs: number
  readonly backoffMaxMs: number
  /** Keys whose last accepted ballot is remembered for the one-round-trip path. */
  readonly maxCachedKeys: number
  /** Operations one key may have waiting on this node before new ones are refused. */
  readonly maxQueuedPerKey: number
  /**
   * Writes a committed value to the key's replicas as a strong record (background): it was
   * chosen at `ballot` by a quorum of `acceptors`, which may learn it from their own accepted
   * state (accept-batcher.ts). Also called when a prepare finds a value chosen (a read), whose
   * stores may already hold it. `fresh`: the operation just made this value, so no store holds it.
   */
  readonly commit: (key: string, record: StoredRecord, ballot: Ballot, acceptors: readonly NodeId[], fresh: boolean) => void
  readonly nowMs: () => number
  readonly onRound?: (phase: 'prepare' | 'accept' | 'fast', outcome: 'ok' | 'conflict' | 'unavailable') => void
}

/** An accept this operation sent that may have landed somewhere (it reached no clear verdict). */
interface InDoubt<R> {
  readonly ballot: Ballot
  readonly record: StoredRecord
  /** The answer for the client should this record turn out to be the register's value. */
  readonly result: ChangeOutcome<R>['result']
}

interface Cached {
  /** The ballot of this node's last successful accept for the key, and the value it carried. */
  readonly ballot: Ballot
  readonly record: StoredRecord
  readonly history: readonly Version[]
}

interface RoundTally<T> {
  readonly oks: T[]
  /** Highest ballot an acceptor said it promised, when one refused for that reason. */
  readonly promised: Ballot | undefined
  /** Acceptors that answered no (a higher promise or a refusal): they did not take the request. */
  readonly refusals: number
  readonly reasons: string[]
  /** Acceptors that did not answer by the decision (timeout, unreachable, an error). */
  readonly unanswered: number
}

/**
 * The CASPaxos proposer (Rystsov 2018, §2; Gryadka's proposer): any node runs it for any key. An
 * operation is a change function f. Prepare with a fresh ballot at the key's acceptors; from a
 * quorum of promises take the value of the highest accepted ballot (or, when none accepted
 * anything, the newest plain record they hold); apply f; accept the result at the same ballot;
 * once a quorum accepted, the change is committed and the value is written to the replicas'
 * stores as a strong record.
 *
 * One round trip instead of two (§2.2.1, Gryadka): an acceptor that accepts ballot b also
 * promises b's successor, so after a quorum accepted b the proposer holds a quorum of promises
 * for it, and its next operation on the key sends only the accept; any refusal drops the cached
 * ballot and the operation falls back to prepare. Operations on one key from this node run one at a time (KeyQueue), so
 * they neither fight over ballots nor use the cached ballot twice.
 *
 * Retries back off with jitter. An accept that reached some acceptors but not a quorum may still
 * be chosen later: the operation then either finds its own value as the register's (and
 * finishes it), proves it was overtaken before it could be chosen (and goes on), or answers
 * OutcomeUnknownError — never a plain failure.
 */
export class Proposer {
  readonly #options: ProposerOptions
  readonly #cache = new Map<string, Cached>()
  readonly #queue: KeyQueue
  /**
   * Operations started by run() and not finished, counted from the call: the requests a client
   * message carries are all counted before the first of them reaches its accept (in a microtask).
   */
  #running = 0

  constructor(options: ProposerOptions) {
    if (options.quorum < 1) throw new RangeError(`quorum must be at least 1, got ${options.quorum}`)
    this.#options = options
    this.#queue = new KeyQueue(options.maxQueuedPerKey)
  }

  /**
   * Runs `change` on `key`'s register; resolves with its result once the change is committed.
   * `readOnly`: the change never writes a new value (a linearizable read), so an accept of it
   * that landed partly changes nothing and is never reported as an unknown outcome.
   */
  async run<R>(key: string, change: Change<R>, readOnly = false): Promise<R> {
    this.#running++
    try {
      return await this.#queue.run(key, () => this.#run(key, change, readOnly))
    } finally {
      this.#running--
    }
  }

  async #run<R>(key: string, change: Change<R>, readOnly: boolean): Promise<R> {
    const inDoubt: InDoubt<R>[] = []
    let highestPromised: Ballot | undefined
    let lastReason = 'the acceptors did not answer in time'
    const giveUp = (reason: string): Error => inDoubt.length > 0
      ? new OutcomeUnknownError(`${reason}; the change may or may not have been applied`)
      : new UnavailableError(`${reason}; nothing was changed`)
    for (let attempt = 0; attempt < this.#options.maxAttempts; attempt++) {
      if (attempt > 0) await this.#backoff(attempt)
      const acceptors = this.#options.acceptorsFor(key)
      if (acceptors.length < this.#options.quorum) {
        throw giveUp(`linearizable operations need ${this.#options.quorum} of the key's replicas, and only ${acceptors.length === 1 ? '1 is a member' : `${acceptors.length} are members`} now`)
      }

      const cached = this.#cache.get(key)
      if (cached !== undefined && inDoubt.length === 0) {
        const fast = await this.#fastPath(key, acceptors, cached, change)
        if (fast.done) return fast.result
        if (fast.sent !== undefined && !readOnly) inDoubt.push(fast.sent)
        if (fast.promised !== undefined) highestPromised = maxBallot(highestPromised ?? fast.promised, fast.promised)
        // On to prepare at once: a stale cached ballot is no reason to back off.
      }

      const ballot = await this.#freshBallot(highestPromised)
      const prepared = await this.#round(acceptors, (id) => this.#options.prepare(id, key, ballot, acceptors), true)
      if (prepared.promised !== undefined) highestPromised = maxBallot(highestPromised ?? prepared.promised, prepared.promised)
      if (prepared.oks.length < this.#options.quorum) {
        this.#options.onRound?.('prepare', prepared.promised !== undefined ? 'conflict' : 'unavailable')
        lastReason = describe(prepared, 'prepare')
        continue
      }
      this.#options.onRound?.('prepare', 'ok')
      const promises = prepared.oks as Extract<PromiseAnswer, { ok: true }>[]
      let highest = highestAccepted(promises)
      // A committed (strong) record newer than the highest accepted value can only come from
      // outside this quorum's accept history, e.g. an acceptor that missed accepts across a
      // placement change; it is committed, so it is the better base (its history unknown).
      const committed = newestStrongStored(promises)
      if (committed !== undefined && highest !== undefined && compareVersions(committed.version, highest.record.version) > 0) {
        highest = { ballot: ZERO_BALLOT, record: committed, history: [] }
      }
      const current = highest?.record ?? newestStored(promises, this.#options.nowMs())

      // A committed record taken from a store (the zero ballot, above) comes without its history.
      const currentHistory = highest === undefined ? [] : highest.ballot.counter === 0 ? undefined : highest.history
      // An earlier attempt of this operation may have landed. The value's history of changes
      // says whether it did: then finish it (commit the current value, answer as applied); if
      // the history reaches back past it without it, it was not applied before this value, and
      // committing at this ballot (above it) makes sure it never will be; if the history is too
      // short to tell, nobody can.
      let outcome: ChangeOutcome<R>
      const ours = inDoubt.find((d) => (currentHistory ?? []).some((v) => compareVersions(v, d.record.version) === 0))
      if (ours !== undefined) {
        outcome = { next: 'unchanged', result: () => ours.result(ours.record.version, ours.record.value) }
      } else if (inDoubt.some((d) => !historyReachesBack(currentHistory, d.record.version))) {
        throw new OutcomeUnknownError(`the change to key ${JSON.stringify(key)} may or may not have been applied: it reached some replicas but not a majority in time, and ${MAX_HISTORY} or more changes followed`)
      } else {
        try {
          outcome = change(current)
        } catch (error) {
          if (!(error instanceof ConditionFailedError)) throw error
          // A refusal names the current value, so that value must be chosen before it is named:
          // one a minority accepted could still lose to a later proposal, and the 409 would have
          // shown a state that never was. Below, it is committed at this ballot unless a quorum
          // already holds it at one ballot; that also makes earlier accepts of ours impossible
          // to choose, and only then is the refusal true.
          outcome = { next: 'unchanged', result: () => { throw error } }
        }
      }

      // A quorum at one real ballot: that value is chosen and current, nothing to write (the read
      // optimisation). No accepted value at all: the key is not strong, and a read leaves it so.
      const unanimous = highest !== undefined && highest.ballot.counter > 0 &&
        promises.every((p) => p.accepted !== undefined && compareBallots(p.accepted.ballot, highest.ballot) === 0)
      if (outcome.next === 'unchanged' && inDoubt.length === 0 && (unanimous || highest === undefined)) {
        // The value is chosen; its stores may not have it yet (its proposer may have stopped
        // between the accepts and the commit): the commit is cheap where they do (wiring).
        if (unanimous && highest !== undefined) this.#options.commit(key, highest.record, highest.ballot, acceptors, false)
        return outcome.result(current?.version, current?.value ?? null)
      }
      const record = outcome.next !== 'unchanged'
        ? await this.#newRecord(outcome.next, current, promises)
        : current !== undefined ? { ...current, strong: true as const } : await this.#newRecord(null, undefined, promises)
      const history = outcome.next !== 'unchanged' || current === undefined ? extend(currentHistory ?? [], record.version) : currentHistory ?? []
      const alone = this.#running === 1
      const accepted = await this.#round(acceptors, (id) => this.#options.accept(id, key, ballot, record, history, acceptors, alone), false)
      const result = (): R => outcome.result(record.version, record.value)
      if (accepted.oks.length >= this.#options.quorum) {
        this.#options.onRound?.('accept', 'ok')
        this.#remember(key, { ballot, record, history })
        this.#options.commit(key, record, ballot, acceptors, outcome.next !== 'unchanged')
        return result()
      }
      this.#options.onRound?.('accept', accepted.promised !== undefined ? 'conflict' : 'unavailable')
      this.#cache.delete(key)
      if (accepted.promised !== undefined) highestPromised = maxBallot(highestPromised ?? accepted.promised, accepted.promised)
      lastReason = describe(accepted, 'accept')
      if (!readOnly && outcome.next !== 'unchanged' && (accepted.oks.length > 0 || accepted.unanswered > 0)) inDoubt.push({ ballot, record, result: outcome.result })
    }
    throw giveUp(`key ${JSON.stringify(key)} could not be changed after ${this.#options.maxAttempts} attempts (${lastReason})`)
  }

  /** The one-round-trip path: accept at a fresh ballot on top of this node's last accepted one. */
  async #fastPath<R>(key: string, acceptors: readonly NodeId[], cached: Cached, change: Change<R>):
    Promise<{ done: true; result: R } | { done: false; sent?: InDoubt<R>; promised?: Ballot }> {
    let outcome: ChangeOutcome<R>
    try {
      outcome = change(cached.record)
    } catch (error) {
      // The cached value may be stale; only a prepare can tell whether the condition really fails.
      if (error instanceof ConditionFailedError) {
        this.#cache.delete(key)
        return { done: false }
      }
      throw error
    }
    // The quorum that accepted the cached ballot promised this one with it (decideAccept); later
    // fresh ballots must go above it.
    const ballot = nextBallot(cached.ballot)
    this.#observe(ballot.counter)
    const record = outcome.next === 'unchanged' ? cached.record : await this.#newRecord(outcome.next, cached.record, [])
    const history = outcome.next === 'unchanged' ? cached.history : extend(cached.history, record.version)
    const alone = this.#running === 1
    const round = await this.#round(acceptors, (id) => this.#options.accept(id, key, ballot, record, history, acceptors, alone), false)
    if (round.oks.length >= this.#options.quorum) {
      this.#options.onRound?.('fast', 'ok')
      this.#remember(key, { ballot, record, history })
      if (outcome.next !== 'unchanged') this.#options.commit(key, record, ballot, acceptors, true)
      return { done: true, result: outcome.result(record.version, record.value) }
    }
    this.#options.onRound?.('fast', 'conflict')
    this.#cache.delete(key)
    const maybe = outcome.next !== 'unchanged' && (round.oks.length > 0 || round.unanswered > 0)
    return { done: false, ...(maybe ? { sent: { ballot, record, result: outcome.result } } : {}), ...(round.promised !== undefined ? { promised: round.promised } : {}) }
  }

  /** A version above the current value's and every record the promises showed, from this node's clock. */
  async #newRecord(value: Uint8Array | null, current: StoredRecord | undefined, promises: readonly Extract<PromiseAnswer, { ok: true }>[]): Promise<StoredRecord> {
    let floor = current?.version.hlc ?? 0
    for (const p of promises) {
      floor = Math.max(floor, p.accepted?.record.version.hlc ?? 0, p.stored?.version.hlc ?? 0)
    }
    if (floor > 0) this.#observe(floor)
    const version = { hlc: await this.#options.nextTick(), node: this.#options.localId }
    return { value, version, strong: true }
  }

  async #freshBallot(above: Ballot | undefined): Promise<Ballot> {
    if (above !== undefined) this.#observe(above.counter)
    return { counter: await this.#options.nextTick(), node: this.#options.localId }
  }

  #observe(tick: number): void {
    try {
      this.#options.observeTick(tick)
    } catch (error) {
      throw new UnavailableError(`a linearizable operation met a clock reading beyond clock.maxSkewMs (${(error as Error).message}); check the nodes' clocks`)
    }
  }

  #remember(key: string, cached: Cached): void {
    this.#cache.delete(key)
    this.#cache.set(key, cached)
    if (this.#cache.size > this.#options.maxCachedKeys) {
      const oldest = this.#cache.keys().next().value
      if (oldest !== undefined) this.#cache.delete(oldest)
    }
  }

  /** Sends to every acceptor and tallies the answers until a quorum said yes, it cannot, or time is up. */
  async #round<T extends PromiseAnswer | AcceptAnswer>(acceptors: readonly NodeId[], send: (id: NodeId) => Promise<T>, stopWhenImpossible: boolean): Promise<RoundTally<T>> {
    const quorum = this.#options.quorum
    const oks: T[] = []
    const reasons: string[] = []
    let promised: Ballot | undefined
    let refusals = 0
    let settled = 0
    return new Promise((resolve) => {
      let done = false
      const finish = (): void => {
        if (done) return
        done = true
        this.#options.clock.clearTimeout(timer)
        resolve({ oks: [...oks], promised, refusals, reasons, unanswered: acceptors.length - oks.length - refusals })
      }
      const timer = this.#options.clock.setTimeout(finish, this.#options.roundTimeoutMs)
      // This node's own acceptor last: its store work starts once the requests to the others
      // are on their way, not before them.
      const local = this.#options.localId
      const order = acceptors.includes(local) ? [...acceptors.filter((id) => id !== local), local] : acceptors
      for (const id of order) {
        send(id).then((answer) => {
          if (done) return
          if (answer.ok) oks.push(answer)
          else {
            refusals++
            if ('promised' in answer) promised = maxBallot(promised ?? answer.promised, answer.promised)
            else reasons.push(answer.refused)
          }
        }, () => undefined).finally(() => {
          settled++
          if (done) return
          if (oks.length >= quorum || settled === acceptors.length) finish()
          else if (stopWhenImpossible && refusals > acceptors.length - quorum) finish()
        })
      }
    })
  }

  async #backoff(attempt: number): Promise<void> {
    const ceilingMs = Math.min(this.#options.backoffMaxMs, this.#options.backoffBaseMs * 2 ** Math.min(attempt, 20))
    await sleep(this.#options.clock, this.#options.random.next() * ceilingMs)
  }
}

function highestAccepted(promises: readonly Extract<PromiseAnswer, { ok: true }>[]): Accepted | undefined {
  let highest: Accepted | undefined
  for (const { accepted } of promises) {
    if (accepted === undefined) continue
    const order = highest === undefined ? 1 : compareBallots(accepted.ballot, highest.ballot)
    // Equal ballots hold the same value (a proposer never uses one ballot twice).
    if (order > 0 || (order === 0 && compareRecords(accepted.record, highest!.record) > 0)) highest = accepted
  }
  return highest
}

function newestStrongStored(promises: readonly Extract<PromiseAnswer, { ok: true }>[]): StoredRecord | undefined {
  let newest: StoredRecord | undefined
  for (const { stored } of promises) {
    if (stored?.strong === true && (newest === undefined || compareRecords(stored, newest) > 0)) newest = stored
  }
  return newest
}

/** The newest plain record of a quorum none of whose acceptors accepted anything; undefined when absent or expired. */
function newestStored(promises: readonly Extract<PromiseAnswer, { ok: true }>[], nowMs: number): StoredRecord | undefined {
  let newest: StoredRecord | undefined
  for (const { stored } of promises) {
    if (stored !== undefined && (newest === undefined || compareRecords(stored, newest) > 0)) newest = stored
  }
  if (newest === undefined) return undefined
  return isLive(newest, nowMs) ? newest : { value: null, version: newest.version }
}

/** The history with `version` appended, keeping the last MAX_HISTORY. */
function extend(history: readonly Version[], version: Version): Version[] {
  return [...history, version].slice(-MAX_HISTORY)
}

/**
 * True when `history` covers every change back to before `version`: it holds the whole chain
 * (fewer entries than it keeps), or its oldest entry is older. Versions along a chain increase.
 */
function historyReachesBack(history: readonly Version[] | undefined, version: Version): boolean {
  if (history === undefined) return false
  const oldest = history[0]
  return history.length < MAX_HISTORY || (oldest !== undefined && compareVersions(oldest, version) < 0)
}

function describe(tally: RoundTally<unknown>, phase: string): string {
  const parts = [`${phase}: ${tally.oks.length} yes`]
  if (tally.promised !== undefined) parts.push('a higher ballot was promised')
  if (tally.reasons.length > 0) parts.push(`refused: ${tally.reasons[0]}`)
  if (tally.unanswered > 0) parts.push(`${tally.unanswered} unanswered`)
  return parts.join(', ')
}
