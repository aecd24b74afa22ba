import { TransportError } from './transport.js'

/** What every batch carries for the mechanism: the deadline of its most patient caller. */
export interface PeerBatch {
  /** nowMs() by which the most patient caller stops waiting; the batch is not sent after it. */
  deadlineMs: number
}

export interface PeerBatcherOptions<B extends PeerBatch, A> {
  /** The request's name, for the error of a batch whose deadline passed before it could leave. */
  readonly what: string
  /**
   * Batches to one peer awaiting their answer at once; while that many are out, new items gather
   * into the next batch, which leaves when an answer comes back (or it is full).
   */
  readonly maxInFlight: number
  /** The injected clock's now, in ms. */
  readonly nowMs: () => number
  /**
   * Runs a task after the current turn, once every request the turn read has queued its items
   * (the daemon: setImmediate; the simulator: its clock's zero-delay timer, so the simulator
   * drives the flushes).
   */
  readonly defer: (task: () => void) => void
  /** Sends one batch with what is left of its deadline; resolves with the peer's answer. */
  readonly send: (peer: string, batch: B, timeoutMs: number) => Promise<A>
  /** The peer answered `batch`. */
  readonly answered: (peer: string, batch: B, answer: A) => void
  /** `batch` got no answer (or its deadline passed before it could leave): nothing of it is known. */
  readonly failed: (peer: string, batch: B, error: unknown) => void
  /** Whether a gathering batch may leave yet (default: always); one not ready waits for release(). */
  readonly ready?: (batch: B) => boolean
}

/**
 * The per-peer batching under the replica write batcher (lib/replication/write-batcher.ts) and
 * the accept batcher (lib/paxos/accept-batcher.ts): what is sent to one peer within an
 * event-loop turn leaves as one batch at the end of the turn, and while maxInFlight batches to
 * that peer await their answer, the items of the turns in between gather into the next one,
 * which leaves when an answer comes back (Nagle's algorithm, group commit). An idle peer costs
 * one batch per turn; a busy one, one per round trip. A batch carries the deadline of its most
 * patient caller, and one that waited past it is failed instead of delivered late.
 *
 * The batch's contents are the caller's (B); this class holds at most one gathering batch per
 * peer and the count of batches in flight.
 */
export class PeerBatcher<B extends PeerBatch, A> {
  readonly #options: PeerBatcherOptions<B, A>
  readonly #gathering = new Map<string, B>()
  /** Batches sent to each peer and not answered yet. */
  readonly #inFlight = new Map<string, number>()
  #flushScheduled = false

  constructor(options: PeerBatcherOptions<B, A>) {
    if (!Number.isSafeInteger(options.maxInFlight) || options.maxInFlight < 1) throw new RangeError(`maxInFlight must be a positive integer, got ${options.maxInFlight}`)
    this.#options = options
  }

  /**
   * The batch gathering for `peer` that still `fits` the next item; a full one leaves at once
   * and a new one (`open`) takes its place. Its deadline is carried to cover `timeoutMs` from now.
   */
  batchFor(peer: string, fits: (batch: B) => boolean, open: (deadlineMs: number) => B, timeoutMs?: number): B {
    let batch = this.#gathering.get(peer)
    if (batch !== undefined && !fits(batch)) {
      this.#send(peer, batch)
      batch = undefined
    }
    const deadlineMs = timeoutMs === undefined ? undefined : this.#options.nowMs() + timeoutMs
    if (batch === undefined) {
      batch = open(deadlineMs ?? this.#options.nowMs())
      this.#gathering.set(peer, batch)
    } else if (deadlineMs !== undefined) {
      batch.deadlineMs = Math.max(batch.deadlineMs, deadlineMs)
    }
    return batch
  }

  /** The batch gathering for `peer`, if any. */
  gathering(peer: string): B | undefined {
    return this.#gathering.get(peer)
  }

  /** Sends every ready gathering batch whose peer has room at the end of this turn. */
  flushSoon(): void {
    if (this.#flushScheduled) return
    this.#flushScheduled = true
    // After the turn, not in a microtask: it runs after every request this turn read.
    this.#options.defer(() => {
      this.#flushScheduled = false
      for (const [peer, batch] of this.#gathering) {
        // A peer with its answers outstanding gets its batch when one comes back (#settled).
        if (this.#hasRoom(peer) && this.#ready(batch)) this.#send(peer, batch)
      }
    })
  }

  /**
   * `peer`'s gathering `batch` just took an item: it leaves now when that item is its only one
   * and nothing is in flight to the peer, otherwise at the end of the turn (flushSoon). A lone
   * operation gains nothing from waiting for the turn to end, only a loop iteration of latency
   * (docs/benchmarks.md, "Session 6: where a lone CAS's time goes"); under load a batch is
   * always in flight and items gather as before. The first item of a burst after a quiet spell
   * leaves alone, and the rest of the burst gathers behind it.
   */
  added(peer: string, batch: B, items: number): void {
    if (items === 1 && !this.#inFlight.has(peer) && this.#gathering.get(peer) === batch && this.#ready(batch)) this.#send(peer, batch)
    else this.flushSoon()
  }

  /** Sends `batch` now if it is still `peer`'s gathering one, ready, and the peer has room. */
  release(peer: string, batch: B): void {
    if (this.#gathering.get(peer) === batch && this.#hasRoom(peer) && this.#ready(batch)) this.#send(peer, batch)
  }

  #hasRoom(peer: string): boolean {
    return (this.#inFlight.get(peer) ?? 0) < this.#options.maxInFlight
  }

  #ready(batch: B): boolean {
    return this.#options.ready?.(batch) ?? true
  }

  #settled(peer: string): void {
    const left = (this.#inFlight.get(peer) ?? 1) - 1
    if (left > 0) this.#inFlight.set(peer, left)
    else this.#inFlight.delete(peer)
    const waiting = this.#gathering.get(peer)
    if (waiting !== undefined && this.#ready(waiting)) this.#send(peer, waiting)
  }

  #send(peer: string, batch: B): void {
    if (this.#gathering.get(peer) === batch) this.#gathering.delete(peer)
    const remainingMs = batch.deadlineMs - this.#options.nowMs()
    if (remainingMs <= 0) {
      // Its callers stopped waiting: delivering it late would only do work nobody counts.
      this.#options.failed(peer, batch, new TransportError(`${this.#options.what} to ${peer}: the deadline passed while earlier batches awaited their answer`, 'timeout'))
      return
    }
    this.#inFlight.set(peer, (this.#inFlight.get(peer) ?? 0) + 1)
    let sent: Promise<A>
    try {
      sent = this.#options.send(peer, batch, remainingMs)
    } catch (error) {
      sent = Promise.reject(error)
    }
    // The next batch leaves first, then the callers hear their answers.
    sent.then(() => this.#settled(peer), () => this.#settled(peer))
    sent.then((answer) => this.#options.answered(peer, batch, answer), (error: unknown) => this.#options.failed(peer, batch, error))
  }
}
