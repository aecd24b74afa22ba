import { joinFrames } from './codec.js'

/**
 * Frames written in one event-loop turn leave together: the first push schedules a flush for
 * the end of the turn (setImmediate), which sends everything queued by then in as few messages
 * as maxMessageBytes allows. Under load one message then carries dozens of answers, and one
 * syscall replaces dozens. Only one turn's frames are ever queued here.
 *
 * A frame the caller knows to be alone (nothing else in flight on the connection, so no other
 * frame can join it this turn) leaves at once when nothing is queued: waiting for the end of the
 * turn would buy no coalescing, only a loop iteration of latency for every lone request and
 * answer (docs/benchmarks.md, "Lone operations").
 */
export class Outbox {
  #frames: Uint8Array[] = []
  #bytes = 0
  #scheduled = false
  #closed = false

  /**
   * @param maxMessageBytes may change later: a client learns the server's bound only from the
   *   upgrade answer
   */
  constructor(private readonly write: (message: Uint8Array) => void, public maxMessageBytes: number) {}

  /** @param alone no other frame will follow this one this turn: send it now if nothing is queued */
  push(frame: Uint8Array, alone = false): void {
    if (this.#closed) return
    if (alone && this.#frames.length === 0) {
      this.write(frame)
      return
    }
    this.#frames.push(frame)
    this.#bytes += frame.byteLength
    if (!this.#scheduled) {
      this.#scheduled = true
      setImmediate(this.flush)
    }
  }

  /** Drops what is still queued and ignores later pushes: the socket is closing or gone. */
  close(): void {
    this.#closed = true
    this.#frames = []
    this.#bytes = 0
  }

  /** Sends what is queued now (the scheduled flush then finds nothing); before a close frame, say. */
  readonly flush = (): void => {
    this.#scheduled = false
    const frames = this.#frames
    const totalBytes = this.#bytes
    this.#frames = []
    this.#bytes = 0
    if (this.#closed || frames.length === 0) return
    if (totalBytes <= this.maxMessageBytes) {
      this.write(joinFrames(frames, totalBytes))
      return
    }
    // A message holds at least one frame, then more while it stays within the bound.
    let start = 0
    while (start < frames.length) {
      let bytes = (frames[start] as Uint8Array).byteLength
      let end = start + 1
      while (end < frames.length && bytes + (frames[end] as Uint8Array).byteLength <= this.maxMessageBytes) {
        bytes += (frames[end] as Uint8Array).byteLength
        end++
      }
      this.write(joinFrames(frames.slice(start, end), bytes))
      start = end
    }
  }
}
