import { randomInt } from 'node:crypto'

/**
 * A small seeded pseudo-random generator (mulberry32) for simulations and for protocol code that
 * must be deterministic under test: same seed, same sequence, on every machine. Not for secrets.
 */
export interface Random {
  /** A float in [0, 1). */
  next(): number
  /** An integer in [0, n); n must be a positive safe integer. */
  int(n: number): number
  /** True with probability p (p ≤ 0 never, p ≥ 1 always). */
  chance(p: number): boolean
}

export function createRandom(seed: number): Random {
  let state = seed >>> 0
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0
    let z = state
    z = Math.imul(z ^ (z >>> 15), z | 1)
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61)
    return ((z ^ (z >>> 14)) >>> 0) / 4294967296
  }
  return {
    next,
    int(n: number): number {
      if (!Number.isSafeInteger(n) || n <= 0) throw new RangeError(`random.int needs a positive integer, got ${n}`)
      return Math.floor(next() * n)
    },
    chance(p: number): boolean {
      return next() < p
    },
  }
}

/** A generator seeded from the OS's randomness: what the daemon passes where a simulation passes a seed. */
export function cryptoSeededRandom(): Random {
  return createRandom(randomInt(2 ** 32))
}
