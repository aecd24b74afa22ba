import { roundTotals, type RoundSummary } from '../antientropy/anti-entropy.js'

/** The last anti-entropy rounds this node ran, with the bytes of sync frames each one moved. */

export interface RoundEntry {
  /** Wall-clock ms when the round ended. */
  readonly endedAtMs: number
  readonly trigger: string
  readonly mode: string
  readonly peers: number
  readonly partitionsCompared: number
  readonly partitionsDiffering: number
  /** Records this node sent that the peer stored, and records it stored from the peer. */
  readonly pushed: number
  readonly pulled: number
  /**
   * Bytes of anti-entropy frames sent and received on this node's peer links while the round
   * ran; sessions peers started at the same time count in too (the links cannot tell them apart).
   */
  readonly bytes: number
  readonly durationMs: number
  readonly failures: number
}

export interface RoundLogOptions {
  /** Rounds kept; the oldest falls out. */
  readonly maxRounds: number
  readonly nowMs: () => number
  /** Running total of anti-entropy frame bytes on the peer links. */
  readonly syncBytesTotal: () => number
}

export class RoundLog {
  readonly #options: RoundLogOptions
  readonly #rounds: RoundEntry[] = []
  #bytesAtStart = 0

  constructor(options: RoundLogOptions) {
    if (!Number.isSafeInteger(options.maxRounds) || options.maxRounds < 1) throw new RangeError(`maxRounds must be a positive integer, got ${options.maxRounds}`)
    this.#options = options
  }

  started(): void {
    this.#bytesAtStart = this.#options.syncBytesTotal()
  }

  finished(summary: RoundSummary): void {
    const totals = roundTotals(summary)
    this.#rounds.push({
      endedAtMs: this.#options.nowMs(),
      trigger: summary.trigger,
      mode: summary.mode,
      peers: summary.sessions.length,
      partitionsCompared: totals.partitionsCompared,
      partitionsDiffering: totals.partitionsDiffering,
      pushed: totals.pushed,
      pulled: totals.pulled,
      bytes: Math.max(0, this.#options.syncBytesTotal() - this.#bytesAtStart),
      durationMs: summary.durationMs,
      failures: summary.failures.length,
    })
    if (this.#rounds.length > this.#options.maxRounds) this.#rounds.shift()
  }

  /** Newest first. */
  rounds(): RoundEntry[] {
    return [...this.#rounds].reverse()
  }
}
