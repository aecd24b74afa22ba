import type { NodeId } from '../clock/version.js'
import { EventEmitter } from 'node:events'
import { systemClock, type Clock, type TimerHandle } from '../runtime/clock.js'
import type { PeerAddress, PeerIdentity, PeerMessage, Transport } from '../transport/transport.js'
import type { Member } from './member-table.js'
import { MEMBERSHIP_MESSAGE_TYPES, type MembershipMessage } from './messages.js'
import type { Swim, SwimEffect } from './swim.js'

/**
 * The thin shell around the SWIM state machine: binds it to a Transport and real timers, stores
 * incarnations through a callback, and reports what happened as events (for logs and metrics).
 * All protocol decisions live in swim.ts.
 */

export interface MembershipEvents {
  change: [member: Member, previous: Member | undefined]
  reaped: [member: Member]
  joined: [seed: PeerAddress]
  /** A probe of ours was acknowledged (for the round-trip histogram). */
  probeAcked: [target: NodeId, rttMs: number, indirect: boolean]
  /** No seed answered: the node runs alone and retries at retryAtMs. */
  joinUnanswered: [attempt: number, seeds: readonly PeerAddress[], retryAtMs: number]
  /** A member sent us a membership message itself (direct contact, for the absence rule). */
  heard: [from: NodeId]
  /** Storing the incarnation failed; the protocol goes on (a restart may then reuse it). */
  persistFailed: [error: unknown]
}

export interface MembershipDriverOptions {
  readonly transport: Transport
  readonly swim: Swim
  /**
   * Must be durable when it returns (e.g. an lmdb sync put): the messages that follow may carry
   * the new incarnation, and a restart has to start above it.
   */
  readonly persistIncarnation: (incarnation: number) => void
  /** Time and timers; systemClock in the daemon, a FakeClock in tests. */
  readonly clock?: Clock
}

/** setTimeout cannot wait longer than this (2^31 - 1 ms); longer waits re-check when it fires. */
const MAX_TIMER_DELAY_MS = 2_147_483_647

export class MembershipDriver extends EventEmitter<MembershipEvents> {
  readonly #transport: Transport
  readonly #swim: Swim
  readonly #persistIncarnation: (incarnation: number) => void
  readonly #clock: Clock
  #timer: TimerHandle | undefined
  /** When the pending timer fires, so a step that leaves it unchanged does not re-arm it. */
  #timerDueAtMs = Infinity
  #stopped = false
  /** Called after every step while leave() waits for the `left` news to spread. */
  #onStep: (() => void) | undefined

  constructor(options: MembershipDriverOptions) {
    super()
    this.#transport = options.transport
    this.#swim = options.swim
    this.#persistIncarnation = options.persistIncarnation
    this.#clock = options.clock ?? systemClock
  }

  /** Registers the membership message handlers and joins through `seeds` (empty: start alone). */
  start(seeds: readonly PeerAddress[]): void {
    for (const type of MEMBERSHIP_MESSAGE_TYPES) {
      this.#transport.handle(type, (from, message) => {
        this.#receive(from, message)
        return undefined
      })
    }
    this.#perform(this.#swim.join(seeds, this.#clock.nowMs()))
  }

  members(): Member[] {
    return this.#swim.members()
  }

  get local(): Member {
    return this.#swim.local
  }

  /**
   * Announces `left` and resolves once it has been gossiped enough, or after `timeoutMs` —
   * whichever comes first. The driver keeps running; call stop() afterwards.
   */
  async leave(timeoutMs: number): Promise<void> {
    if (this.#stopped) return
    this.#perform(this.#swim.leave(this.#clock.nowMs()))
    if (this.#swim.leaveSettled()) return
    await new Promise<void>(resolve => {
      const clock = this.#clock
      const deadline = clock.setTimeout(finish, timeoutMs)
      function finish(): void {
        clock.clearTimeout(deadline)
        resolve()
      }
      this.#onStep = () => {
        if (this.#stopped || this.#swim.leaveSettled()) finish()
      }
    })
    this.#onStep = undefined
  }

  stop(): void {
    this.#stopped = true
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer)
    this.#timer = undefined
    this.#onStep?.()
  }

  #receive(from: PeerIdentity, message: PeerMessage): void {
    if (this.#stopped) return
    // The transport validated the body with membershipBodyValidators (lib/codec/frames.ts)
    // before it reached this handler, and only membership types are registered here.
    // Before the effects: a member turning alive on this message must find the contact counted.
    if (from.id !== this.#swim.local.id) this.emit('heard', from.id)
    this.#perform(this.#swim.receive(from, message as MembershipMessage, this.#clock.nowMs()))
  }

  #tick(): void {
    this.#timer = undefined
    if (this.#stopped) return
    this.#perform(this.#swim.tick(this.#clock.nowMs()))
  }

  #perform(effects: readonly SwimEffect[]): void {
    for (const effect of effects) {
      switch (effect.kind) {
        case 'send':
          this.#transport.send(effect.to, effect.message)
          break
        case 'persistIncarnation':
          try {
            this.#persistIncarnation(effect.incarnation)
          } catch (error) {
            this.emit('persistFailed', error)
          }
          break
        case 'memberChanged':
          this.emit('change', effect.member, effect.previous)
          break
        case 'memberReaped':
          this.emit('reaped', effect.member)
          break
        case 'joined':
          this.emit('joined', effect.seed)
          break
        case 'probeAcked':
          this.emit('probeAcked', effect.target, effect.rttMs, effect.indirect)
          break
        case 'joinUnanswered':
          this.emit('joinUnanswered', effect.attempt, effect.seeds, effect.retryAtMs)
          break
      }
    }
    this.#schedule()
    this.#onStep?.()
  }

  #schedule(): void {
    if (this.#stopped) return
    const dueAtMs = this.#swim.nextTickAtMs()
    if (this.#timer !== undefined && dueAtMs === this.#timerDueAtMs) return
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer)
    this.#timer = undefined
    this.#timerDueAtMs = dueAtMs
    if (dueAtMs === Infinity) return
    const delayMs = Math.min(MAX_TIMER_DELAY_MS, Math.max(0, dueAtMs - this.#clock.nowMs()))
    // systemClock timers are unref'd: the daemon's sockets keep the process alive, not these.
    this.#timer = this.#clock.setTimeout(() => this.#tick(), delayMs)
  }
}
