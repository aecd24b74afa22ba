/**
 * Lifeguard's local health multiplier (LHM, Lifeguard §4.3, memberlist awareness.go). A node that
 * is itself slow — starved CPU, full queues — misses acks and would wrongly suspect healthy peers.
 * Evidence of our own trouble (a failed probe, a missing nack, having to refute) raises the score;
 * each successful probe lowers it. Probe interval and timeout are stretched by (score + 1).
 */
export class Awareness {
  /** 0 = healthy; at most maxMultiplier - 1. */
  #score = 0
  readonly #maxMultiplier: number

  constructor(maxMultiplier: number) {
    if (!Number.isSafeInteger(maxMultiplier) || maxMultiplier < 1) throw new RangeError(`awareness max multiplier must be a positive integer, got ${maxMultiplier}`)
    this.#maxMultiplier = maxMultiplier
  }

  get score(): number {
    return this.#score
  }

  applyDelta(delta: number): void {
    this.#score = Math.min(this.#maxMultiplier - 1, Math.max(0, this.#score + delta))
  }

  scaleMs(durationMs: number): number {
    return durationMs * (this.#score + 1)
  }
}
