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
 * Acks `level` needs when a key has `replicaCount` replicas (members holding its partition, at
 * most N). A number above the replication factor N can never be met and is the caller's error
 * (400); a number above a small cluster's replica count is merely unmet now (503 later).
 */
export function requiredAcks(level: ConsistencyLevel, replicaCount: number, what: 'w' | 'r', replicationFactor = replicaCount): number {
  if (typeof level === 'number') {
    if (level > replicationFactor) {
      throw new BadRequestError(`${what}=${level} exceeds the replication factor N=${replicationFactor}`, { param: what, n: replicationFactor })
    }
    return level
  }
  if (level === 'one') return 1
  if (level === 'quorum') return Math.floor(replicaCount / 2) + 1
  return replicaCount
}
