/**
 * Exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff and
 * Jitter"): the delay is uniform in [0, min(cap, base × 2^attempt)), which spreads the
 * reconnects of many nodes that lost a peer at the same moment.
 */
export function backoffDelayMs(attempt: number, baseMs: number, capMs: number, random: () => number): number {
  // 2^31 overflows nothing and is far past any cap; it stops Math.pow from reaching Infinity.
  const ceilingMs = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 31))
  return Math.floor(random() * ceilingMs)
}
