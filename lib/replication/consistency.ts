import { BadRequestError } from '../errors.js'

/**
 * How many replicas must answer: a name or an exact count. Resolved against the number of
 * replicas N of the key's partition at request time, because N depends on cluster size.
 */
export type ConsistencyLevel = 'one' | 'quorum' | 'all' | number

/** Largest numeric level accepted anywhere; bigger is a typo, not a cluster. */
export const MAX_NUMERIC_LEVEL = 64

export function parseConsistencyLevel(text: string, what: 'w' | 'r'): ConsistencyLevel {
  if (text === 'one' || text === 'quorum' || text === 'all') return text
  if (/^[1-9][0-9]*$/.test(text)) {
    const n = Number(text)
    if (n <= MAX_NUMERIC_LEVEL) return n
  }
  throw new BadRequestError(`${what} must be one, quorum, all or a number from 1 to ${MAX_NUMERIC_LEVEL}, got ${JSON.stringify(text)}`, { param: what })
}

/**
 * Acks needed for `level` when a key has `replicaCount` replicas (N). A number above N is the
 * caller's error (400): no cluster state could ever satisfy it.
 */
export function requiredAcks(level: ConsistencyLevel, replicaCount: number, what: 'w' | 'r'): number {
  if (level === 'one') return 1
  if (level === 'quorum') return Math.floor(replicaCount / 2) + 1
  if (level === 'all') return replicaCount
  if (level > replicaCount) {
    throw new BadRequestError(`${what}=${level} exceeds the replication factor N=${replicaCount}`, { param: what, n: replicaCount })
  }
  return level
}
