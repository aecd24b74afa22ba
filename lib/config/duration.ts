/** Milliseconds per unit of a duration string such as `10d`, `36h`, `15m`, `30s`, `500ms`. */
const MS_PER_UNIT: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
}

export const DURATION_SYNTAX = 'a positive duration like 10d, 36h, 15m, 30s, 500ms or a whole number of milliseconds'

/**
 * A positive duration in milliseconds, or undefined when `value` is not one. Numbers are taken as
 * milliseconds; strings carry exactly one unit so `1m` can never be misread as a month.
 */
export function parseDurationMs(value: unknown): number | undefined {
  let ms: number
  if (typeof value === 'number') {
    ms = value
  } else if (typeof value === 'string') {
    const match = /^([0-9]+)(ms|s|m|h|d)$/.exec(value)
    if (!match) return undefined
    ms = Number(match[1]) * (MS_PER_UNIT[match[2] ?? ''] ?? Number.NaN)
  } else {
    return undefined
  }
  return Number.isSafeInteger(ms) && ms > 0 ? ms : undefined
}
