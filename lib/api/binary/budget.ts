/**
 * Memory held on behalf of stream clients, counted in bytes before it is spent: a message the
 * socket delivered, the answer a request may produce (reserved before the request runs), an
 * answer waiting to leave. Each connection has its own budget, inside one node-wide budget, so
 * neither one client nor many can make the node hold more than their bounds (issue 17: one
 * connection asking 4,096 times for a 1 MiB value and never reading took a node to 2 GiB).
 */
export class ByteBudget {
  #usedBytes = 0
  #closed = false
  /** Called once each, in a microtask, after the next release: connections waiting for room in this budget. */
  #waiters = new Set<() => void>()

  /**
   * @param limitBytes bytes this budget may hold through tryReserve
   * @param parent the budget this one is part of (the node's, for a connection's); every byte
   *   reserved here is reserved there too
   */
  constructor(readonly limitBytes: number, private readonly parent?: ByteBudget) {
    if (!Number.isSafeInteger(limitBytes) || limitBytes <= 0) throw new RangeError(`a byte budget must be a positive integer, got ${limitBytes}`)
  }

  get usedBytes(): number {
    return this.#usedBytes
  }

  /** True when `bytes` more fit here and in the parent. */
  fits(bytes: number): boolean {
    return this.#usedBytes + bytes <= this.limitBytes && (this.parent === undefined || this.parent.fits(bytes))
  }

  /** True when `bytes` more fit in the parent (always, without one). */
  parentFits(bytes: number): boolean {
    return this.parent === undefined || this.parent.fits(bytes)
  }

  /** Reserves `bytes` if they fit here and in the parent; false (nothing reserved) otherwise. */
  tryReserve(bytes: number): boolean {
    if (!this.fits(bytes)) return false
    this.reserve(bytes)
    return true
  }

  /**
   * Reserves `bytes` whether or not they fit: for memory already held (a message the socket
   * delivered), or small and bounded (an error answer). Callers stop taking more work while the
   * budget is over its limit.
   */
  reserve(bytes: number): void {
    if (this.#closed || bytes <= 0) return
    this.#usedBytes += bytes
    this.parent?.reserve(bytes)
  }

  release(bytes: number): void {
    if (this.#closed || bytes <= 0) return
    if (bytes > this.#usedBytes) throw new RangeError(`releasing ${bytes} bytes of a budget holding ${this.#usedBytes}`)
    this.#usedBytes -= bytes
    this.parent?.release(bytes)
    this.#wakeWaiters()
  }

  /** Calls `waiter` once after the next release (of this budget or of a child's). */
  whenReleased(waiter: () => void): void {
    this.#waiters.add(waiter)
  }

  /** Releases everything this budget holds and ignores later calls: its connection is gone. */
  close(): void {
    if (this.#closed) return
    const held = this.#usedBytes
    this.#usedBytes = 0
    this.#closed = true
    this.#waiters.clear()
    this.parent?.release(held)
  }

  /** Waiters run in a microtask: a release never re-enters the code that released. */
  #wakeWaiters(): void {
    if (this.#waiters.size === 0) return
    const waiters = [...this.#waiters]
    this.#waiters.clear()
    queueMicrotask(() => {
      for (const waiter of waiters) waiter()
    })
  }
}
