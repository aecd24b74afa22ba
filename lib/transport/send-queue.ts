/**
 * Encoded frames waiting for a peer's link, oldest first. The transport bounds its bytes
 * (maxSendQueueBytes, together with the socket's own buffer) and batches frames into messages.
 */

export interface QueuedFrame {
  readonly bytes: Uint8Array
  /** A one-way frame still queued then is dropped; a request frame expires with its request. */
  readonly expiresAtMs: number
  /** 0 for one-way frames and answers; a request's id otherwise. */
  readonly requestId: number
}

export class SendQueue {
  #frames: QueuedFrame[] = []
  /** Index of the oldest frame in #frames; the array is compacted when half of it is consumed. */
  #head = 0
  #bytes = 0

  get bytes(): number {
    return this.#bytes
  }

  get length(): number {
    return this.#frames.length - this.#head
  }

  push(frame: QueuedFrame): void {
    this.#frames.push(frame)
    this.#bytes += frame.bytes.byteLength
  }

  /**
   * Takes the frames of one message: at least one frame when any is queued, then more while
   * the message stays within maxBytes and maxFrames.
   */
  takeMessage(maxFrames: number, maxBytes: number): QueuedFrame[] {
    const taken: QueuedFrame[] = []
    let bytes = 0
    while (taken.length < maxFrames) {
      const next = this.#frames[this.#head]
      if (next === undefined || (taken.length > 0 && bytes + next.bytes.byteLength > maxBytes)) break
      taken.push(next)
      bytes += next.bytes.byteLength
      this.#head++
    }
    this.#bytes -= bytes
    this.#compact()
    return taken
  }

  /** Removes frames past their expiry; returns the one-way ones among them (to count as dropped). */
  dropExpired(nowMs: number): number {
    let droppedOneWay = 0
    const kept: QueuedFrame[] = []
    for (let index = this.#head; index < this.#frames.length; index++) {
      const frame = this.#frames[index] as QueuedFrame
      if (frame.expiresAtMs > nowMs) kept.push(frame)
      else {
        this.#bytes -= frame.bytes.byteLength
        if (frame.requestId === 0) droppedOneWay++
      }
    }
    this.#frames = kept
    this.#head = 0
    return droppedOneWay
  }

  /** Empties the queue; returns how many one-way frames were in it. */
  clear(): number {
    const oneWay = this.#frames.slice(this.#head).filter(frame => frame.requestId === 0).length
    this.#frames = []
    this.#head = 0
    this.#bytes = 0
    return oneWay
  }

  /** Moves every frame of `other` behind ours (two addresses turned out to be one peer). */
  takeAll(other: SendQueue): void {
    for (let index = other.#head; index < other.#frames.length; index++) this.push(other.#frames[index] as QueuedFrame)
    other.#frames = []
    other.#head = 0
    other.#bytes = 0
  }

  #compact(): void {
    if (this.#head > 0 && this.#head * 2 >= this.#frames.length) {
      this.#frames = this.#frames.slice(this.#head)
      this.#head = 0
    }
  }
}
