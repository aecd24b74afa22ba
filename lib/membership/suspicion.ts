import type { NodeId } from '../clock/version.js'

/**
 * A suspicion timer with Lifeguard's dynamic timeout (Lifeguard §4.2, memberlist suspicion.go).
 * It starts at `maxMs` and falls toward `minMs` as independent members confirm the suspicion:
 * after n of the k expected confirmations the timeout is
 *   max − (max − min) · log(n + 1) / log(k + 1),
 * never below min. A node that is really down is declared dead quickly once several members agree;
 * a lone (possibly unhealthy) accuser has to wait long enough for the suspect to refute.
 * Time is an input: the owner asks for `deadlineMs` and compares it with its clock.
 */
export class Suspicion {
  readonly startedAtMs: number
  /** Confirmations wanted to reach minMs; 0 means none are expected and minMs applies at once. */
  readonly k: number
  readonly minMs: number
  readonly maxMs: number
  /** Accusers seen so far, the first one included, so nobody is counted twice. */
  readonly #accusers = new Set<NodeId>()
  #confirmations = 0
  #deadlineMs: number

  constructor(options: { accuser: NodeId; k: number; minMs: number; maxMs: number; nowMs: number }) {
    this.startedAtMs = options.nowMs
    this.k = options.k
    this.minMs = options.minMs
    this.maxMs = Math.max(options.minMs, options.maxMs)
    this.#accusers.add(options.accuser)
    this.#deadlineMs = this.startedAtMs + (this.k < 1 ? this.minMs : this.maxMs)
  }

  get confirmations(): number {
    return this.#confirmations
  }

  /** Absolute time at which the suspect is declared dead unless it refutes first. */
  get deadlineMs(): number {
    return this.#deadlineMs
  }

  /**
   * Counts a confirmation from `accuser`. True when it was new information (worth re-gossiping):
   * a first confirmation from this accuser while fewer than k have arrived.
   */
  confirm(accuser: NodeId): boolean {
    if (this.#confirmations >= this.k || this.#accusers.has(accuser)) return false
    this.#accusers.add(accuser)
    this.#confirmations += 1
    this.#deadlineMs = this.startedAtMs + suspicionTimeoutAfterConfirmationsMs(this.#confirmations, this.k, this.minMs, this.maxMs)
    return true
  }
}

/** Total suspicion timeout after n of k expected confirmations (memberlist remainingSuspicionTime + elapsed). */
export function suspicionTimeoutAfterConfirmationsMs(n: number, k: number, minMs: number, maxMs: number): number {
  if (k < 1) return minMs
  const fraction = Math.log(n + 1) / Math.log(k + 1)
  return Math.max(minMs, Math.floor(maxMs - fraction * (maxMs - minMs)))
}

/** The minimum suspicion timeout for a cluster of n members: suspicionMult × max(1, log10 n) × probe interval. */
export function minSuspicionTimeoutMs(suspicionMult: number, memberCount: number, probeIntervalMs: number): number {
  const nodeScale = Math.max(1, Math.log10(Math.max(1, memberCount)))
  return Math.floor(suspicionMult * nodeScale * probeIntervalMs)
}
