import type { Clock, TimerHandle } from '../runtime/clock.js'
import { TransportError, type PeerMessage } from './transport.js'

/**
 * Requests awaiting their answer, by requestId, each with a deadline. Shared by both
 * transports. An owner is whatever the transport files a peer's traffic under (a channel,
 * an address): answers count only from the owner a request went to, and the in-flight bound
 * applies per owner.
 */

interface Pending {
  owner: unknown
  /** The link the request went out on, once it did: its closing fails the request at once. */
  sentOn: unknown
  readonly timer: TimerHandle
  readonly resolve: (message: PeerMessage) => void
  readonly reject: (error: TransportError) => void
}

export class PendingRequests {
  readonly #clock: Clock
  readonly #maxPerOwner: number
  readonly #byId = new Map<number, Pending>()
  readonly #countByOwner = new Map<unknown, number>()
  #lastRequestId = 0

  constructor(clock: Clock, maxPerOwner: number) {
    this.#clock = clock
    this.#maxPerOwner = maxPerOwner
  }

  /**
   * Registers a request to `owner` and returns its id and answer; throws TransportError('limit')
   * when the owner already has the maximum in flight.
   */
  open(owner: unknown, describe: string, timeoutMs: number): { requestId: number; answer: Promise<PeerMessage> } {
    if (!(timeoutMs > 0) || !Number.isFinite(timeoutMs)) throw new TypeError(`request timeout must be a positive number of ms, got ${timeoutMs}`)
    const count = this.#countByOwner.get(owner) ?? 0
    if (count >= this.#maxPerOwner) throw new TransportError(`${describe}: ${count} requests already in flight to this peer`, 'limit')
    const requestId = ++this.#lastRequestId
    const answer = new Promise<PeerMessage>((resolve, reject) => {
      const timer = this.#clock.setTimeout(() => {
        this.#settle(requestId)?.reject(new TransportError(`${describe}: no answer within ${timeoutMs} ms`, 'timeout'))
      }, timeoutMs)
      this.#byId.set(requestId, { owner, sentOn: undefined, timer, resolve, reject })
    })
    this.#countByOwner.set(owner, count + 1)
    return { requestId, answer }
  }

  /** Requests filed under `owner` that await their answer. */
  inFlight(owner: unknown): number {
    return this.#countByOwner.get(owner) ?? 0
  }

  has(requestId: number): boolean {
    return this.#byId.has(requestId)
  }

  markSent(requestId: number, link: unknown): void {
    const pending = this.#byId.get(requestId)
    if (pending !== undefined) pending.sentOn = link
  }

  /** Settles with an answer that came from `owner`; false when no such request awaits it. */
  resolve(requestId: number, owner: unknown, message: PeerMessage): boolean {
    if (this.#byId.get(requestId)?.owner !== owner) return false
    this.#settle(requestId)?.resolve(message)
    return true
  }

  /** Fails request `requestId` if it awaits an answer from `owner`. */
  reject(requestId: number, owner: unknown, error: TransportError): boolean {
    if (this.#byId.get(requestId)?.owner !== owner) return false
    this.#settle(requestId)?.reject(error)
    return true
  }

  /** Fails every request that went out on `link`: its answer can no longer arrive. */
  rejectSentOn(link: unknown, error: TransportError): void {
    for (const [requestId, pending] of this.#byId) {
      if (pending.sentOn === link) this.#settle(requestId)?.reject(error)
    }
  }

  /** Fails every request filed under `owner`. */
  rejectOwner(owner: unknown, error: TransportError): void {
    for (const [requestId, pending] of this.#byId) {
      if (pending.owner === owner) this.#settle(requestId)?.reject(error)
    }
  }

  rejectAll(error: TransportError): void {
    for (const requestId of [...this.#byId.keys()]) this.#settle(requestId)?.reject(error)
  }

  /** Files `from`'s requests under `to` (two addresses turned out to be one peer). */
  transfer(from: unknown, to: unknown): void {
    let moved = 0
    for (const pending of this.#byId.values()) {
      if (pending.owner === from) {
        pending.owner = to
        moved++
      }
    }
    if (moved === 0) return
    this.#countByOwner.delete(from)
    this.#countByOwner.set(to, (this.#countByOwner.get(to) ?? 0) + moved)
  }

  #settle(requestId: number): Pending | undefined {
    const pending = this.#byId.get(requestId)
    if (pending === undefined) return undefined
    this.#byId.delete(requestId)
    this.#clock.clearTimeout(pending.timer)
    const count = (this.#countByOwner.get(pending.owner) ?? 1) - 1
    if (count === 0) this.#countByOwner.delete(pending.owner)
    else this.#countByOwner.set(pending.owner, count)
    return pending
  }
}
