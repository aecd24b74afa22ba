import type { HighWaterMark } from '../clock/hlc.js'
import type { MetaStore } from './meta.js'

/** The clock's reserved ceiling, kept in `meta` so a restarted node never reuses a tick. */
export class StoreHighWaterMark implements HighWaterMark {
  private readonly meta: MetaStore

  /** Takes the KvStore (or anything holding its MetaStore). */
  constructor(store: { readonly meta: MetaStore }) {
    this.meta = store.meta
  }

  load(): number {
    const stored = this.meta.read('hlcCeiling')
    if (stored === undefined) return 0
    if (typeof stored !== 'number' || !Number.isSafeInteger(stored) || stored < 0) {
      throw new Error(`meta hlcCeiling is not a tick count: ${JSON.stringify(stored)}`)
    }
    return stored
  }

  async save(ceilingHlc: number): Promise<void> {
    if (!Number.isSafeInteger(ceilingHlc) || ceilingHlc < 0) throw new TypeError(`hlc ceiling must be a tick count, got ${ceilingHlc}`)
    // Never lower a stored ceiling: a lower one would let a restart reuse ticks.
    await this.meta.update('hlcCeiling', current => typeof current === 'number' ? Math.max(current, ceilingHlc) : ceilingHlc)
  }
}
