import { build, type Histogram } from 'hdr-histogram-js'

/** Three significant digits: a reported percentile is within 0.1 % of the true one. */
export const SIGNIFICANT_DIGITS = 3
/**
 * Longest latency kept as measured; anything slower is recorded as this. Fixed so the
 * histogram's memory is fixed (no auto-resize while a run is being measured).
 */
export const MAX_RECORDED_LATENCY_US = 10 * 60 * 1_000_000

/** Percentiles and mean in milliseconds of the successful operations recorded. */
export interface LatencySummaryMs {
  readonly p50: number
  readonly p90: number
  readonly p95: number
  readonly p99: number
  readonly max: number
  readonly mean: number
}

/** A latency histogram at microsecond resolution, 1 µs … MAX_RECORDED_LATENCY_US. */
export function createLatencyHistogram(): Histogram {
  return build({
    numberOfSignificantValueDigits: SIGNIFICANT_DIGITS,
    lowestDiscernibleValue: 1,
    highestTrackableValue: MAX_RECORDED_LATENCY_US,
    autoResize: false,
  })
}

/** Records one latency given in (fractional) milliseconds. */
export function recordLatencyMs(histogram: Histogram, latencyMs: number): void {
  const micros = Math.round(latencyMs * 1000)
  // Below 1 µs is below the clock's meaning here; above the bound is clamped, not dropped, so counts stay whole.
  histogram.recordValue(Math.min(MAX_RECORDED_LATENCY_US, Math.max(1, micros)))
}

/** Percentiles of a histogram in ms (microsecond values / 1000); zeros when nothing was recorded. */
export function summarizeLatency(histogram: Histogram): LatencySummaryMs {
  if (histogram.totalCount === 0) return { p50: 0, p90: 0, p95: 0, p99: 0, max: 0, mean: 0 }
  const max = histogram.maxValue
  // A percentile is reported as the top of its bucket, which may lie just above the largest value seen.
  const at = (percentile: number): number => Math.min(histogram.getValueAtPercentile(percentile), max) / 1000
  return {
    p50: at(50),
    p90: at(90),
    p95: at(95),
    p99: at(99),
    max: max / 1000,
    mean: histogram.mean / 1000,
  }
}
