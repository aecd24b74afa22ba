import type { Logger } from 'pino'
import type { Metrics } from '../metrics/metrics.js'

/**
 * Reports work a limit refused: every refusal counts in hearsay_limit_refusals_total{limit}, and
 * each limit logs one warning per interval with how many refusals it stood for, so an attack
 * that trips a limit 100,000 times a second is visible without flooding the log.
 */

export type RefusalReporter = (limit: string, detail: Record<string, unknown>) => void

/** One log line per limit per this interval. */
const LOG_INTERVAL_MS = 1000

export function refusalReporter(metrics: Metrics, log: Logger, nowMs: () => number = Date.now): RefusalReporter {
  /** Per limit: when it last logged, and refusals since then. */
  const lastLogged = new Map<string, { atMs: number; suppressed: number }>()
  return (limit, detail) => {
    metrics.limitRefusals.inc({ limit })
    const now = nowMs()
    const last = lastLogged.get(limit)
    if (last !== undefined && now - last.atMs < LOG_INTERVAL_MS) {
      last.suppressed++
      return
    }
    const suppressed = last?.suppressed ?? 0
    lastLogged.set(limit, { atMs: now, suppressed: 0 })
    log.warn({ limit, ...detail, ...(suppressed > 0 ? { alsoRefusedSinceLastLine: suppressed } : {}) }, `a limit refused work: ${limit}`)
  }
}
