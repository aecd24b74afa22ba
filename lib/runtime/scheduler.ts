import { schedule as cronSchedule } from 'node-cron'
import type { Clock, TimerHandle } from './clock.js'
import type { Random } from './random.js'

/**
 * Recurring work on a schedule, the way anti-entropy runs its rounds. The daemon uses
 * cronScheduler (node-cron, wall-clock aligned); simulations use ClockScheduler, which runs the
 * same job on the node's (fake) clock at the period the expression describes, so a whole cluster
 * stays a function of its seed.
 */
export interface Scheduler {
  /**
   * Runs `job` on `expression` (a node-cron expression, validated at config load) until the
   * returned task is stopped. A run still in progress makes the next one skip (no overlap).
   */
  every(expression: string, name: string, job: () => Promise<void>): ScheduledJob
}

export interface ScheduledJob {
  /** No further runs; a run in progress goes on (the owner waits for its own work). */
  stop(): Promise<void>
}

/** node-cron: runs at the wall-clock instants the expression names. */
export const cronScheduler: Scheduler = {
  every(expression, name, job) {
    const task = cronSchedule(expression, () => job().catch(() => undefined), { noOverlap: true, name })
    return { stop: async () => { await task.destroy() } }
  },
}

/** Longest period ClockScheduler derives from an expression it only partly understands. */
const FALLBACK_PERIOD_MS = 60_000

/**
 * The period of the common "every N" expressions: `*\/N` (or `*`) in the seconds field of a
 * six-field expression, or in the minutes field of a five-field one, everything after it `*`.
 * Anything else: a minute (a simulation that cares passes its own period).
 */
export function cronPeriodMs(expression: string): number {
  const fields = expression.trim().split(/\s+/)
  const [first, unitMs] = fields.length === 6 ? [fields[0], 1000] : [fields[0], 60_000]
  if (!fields.slice(1).every((field) => field === '*')) return FALLBACK_PERIOD_MS
  if (first === '*') return unitMs
  const step = /^\*\/(\d+)$/.exec(first ?? '')
  return step === null ? FALLBACK_PERIOD_MS : Number(step[1]) * unitMs
}

export interface ClockSchedulerOptions {
  readonly clock: Clock
  /** Draws each schedule's first run within its period, so nodes do not run in lockstep. */
  readonly random: Random
  /** The period of an expression; default cronPeriodMs. */
  readonly periodMs?: (expression: string) => number
}

/** Runs jobs every period on a Clock (a FakeClock in simulations); first run at a random phase. */
export class ClockScheduler implements Scheduler {
  readonly #options: ClockSchedulerOptions

  constructor(options: ClockSchedulerOptions) {
    this.#options = options
  }

  every(expression: string, _name: string, job: () => Promise<void>): ScheduledJob {
    const { clock, random } = this.#options
    const periodMs = (this.#options.periodMs ?? cronPeriodMs)(expression)
    if (!(periodMs > 0)) throw new RangeError(`a schedule needs a positive period, got ${periodMs} for "${expression}"`)
    let stopped = false
    let running = false
    let handle: TimerHandle | undefined
    const arm = (delayMs: number): void => {
      handle = clock.setTimeout(() => {
        if (stopped) return
        arm(periodMs)
        if (running) return
        running = true
        void job().catch(() => undefined).finally(() => { running = false })
      }, delayMs)
    }
    arm(1 + random.int(periodMs))
    return {
      stop: async () => {
        stopped = true
        if (handle !== undefined) clock.clearTimeout(handle)
      },
    }
  }
}
