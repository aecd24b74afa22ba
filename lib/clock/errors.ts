import { UnavailableError } from '../errors.js'

/**
 * A remote hlc reading is further ahead of our wall clock than `maxSkewMs` allows. Adopting it
 * would drag every later local timestamp into the future, so the clock refuses it unchanged.
 */
export class ClockSkewError extends Error {
  constructor(
    /** The refused remote reading, in hlc ticks. */
    readonly remoteHlc: number,
    /** How far the remote reading is ahead of our wall clock, in ms. */
    readonly aheadMs: number,
    /** The configured tolerance, in ms. */
    readonly maxSkewMs: number,
  ) {
    super(`remote clock reading ${remoteHlc} is ${aheadMs} ms ahead of the local wall clock, more than the allowed ${maxSkewMs} ms skew`)
    this.name = 'ClockSkewError'
  }
}

/**
 * The clock cannot hand out a timestamp right now without going past the high-water mark that
 * is safely on disk (the save of the next reservation has not completed). Transient: retrying
 * once the save lands succeeds, hence 503.
 */
export class ClockExhaustedError extends UnavailableError {
  constructor(durableCeilingHlc: number) {
    super(`the clock cannot issue a timestamp beyond its persisted high-water mark ${durableCeilingHlc} until the next reservation is saved; retry shortly`, { durableCeilingHlc })
  }
}
