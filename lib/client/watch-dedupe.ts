import { HLC_TICKS_PER_MS, parseVersion } from '../clock/version.js'

/**
 * What a watch has delivered, so a resumed stream (which re-sends from a safe margin before the
 * resume point) and a stream that brings a key's changes out of order deliver each key's
 * versions once and in increasing order.
 *
 * Per key it keeps the newest version delivered. Memory is bounded two ways: a key whose newest
 * delivered version is older than `windowMs` before the newest version seen at all is forgotten
 * (the server never re-sends that far back: re-delivery starts resumeMarginMs before the resume
 * point, and windowMs must be at least that), and at most `maxKeys` keys are kept, the least
 * recently changed forgotten first. A forgotten key's late change is delivered: at least once,
 * never lost.
 */
export class DeliveredVersions {
  readonly #windowTicks: number
  readonly #maxKeys: number
  /** key → newest version delivered; Map order is the order of the last change per key. */
  readonly #newestByKey = new Map<string, string>()
  #newest: string | undefined

  constructor(windowMs: number, maxKeys: number) {
    this.#windowTicks = windowMs * HLC_TICKS_PER_MS
    this.#maxKeys = maxKeys
  }

  /** The newest version delivered (or noted as a resume point), the `since` of the next connection. */
  get newest(): string | undefined {
    return this.#newest
  }

  /** Keys remembered now (for tests and metrics). */
  get size(): number {
    return this.#newestByKey.size
  }

  /**
   * Moves the resume point forward without a delivery, e.g. to the version a stream started at
   * (no change below it is owed to the caller then). Version strings sort like versions.
   */
  advanceTo(version: string): void {
    if (this.#newest === undefined || version > this.#newest) this.#newest = version
  }

  /**
   * True when `key` at `version` is to be delivered (and records it), false when this key was
   * already delivered at this version or a newer one.
   */
  admit(key: string, version: string): boolean {
    const known = this.#newestByKey.get(key)
    if (known !== undefined && version <= known) return false
    this.#newestByKey.delete(key)
    this.#newestByKey.set(key, version)
    this.advanceTo(version)
    this.#forget()
    return true
  }

  /** Drops the least recently changed keys while they are past the window or over the count. */
  #forget(): void {
    const floor = this.#newest === undefined ? -Infinity : parseVersion(this.#newest).hlc - this.#windowTicks
    for (const [key, version] of this.#newestByKey) {
      const overCount = this.#newestByKey.size > this.#maxKeys
      if (!overCount && parseVersion(version).hlc >= floor) return
      this.#newestByKey.delete(key)
    }
  }
}
