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

/**
 * The clock offset monitor (lib/clock/offset-monitor.ts) found this node's wall clock beyond
 * `clock.maxSkewMs` from a majority of its peers: it coordinates no writes, so that no version
 * from beyond the bound is created. Nothing was written anywhere (`outcome: refused`), so the
 * client may safely write through another node.
 */
export class ClockSkewedError extends UnavailableError {
  constructor(aheadMs: number, maxSkewMs: number, peersBeyond: number, peersMeasured: number) {
    const offset = `${Math.abs(Math.round(aheadMs))} ms ${aheadMs >= 0 ? 'ahead of' : 'behind'}`
    super(`this node's clock is ${offset} its peers (${peersBeyond} of ${peersMeasured} measured), beyond clock.maxSkewMs ${maxSkewMs}: it coordinates no writes until its clock is corrected (check NTP); write through another node`,
      { outcome: 'refused', nodeState: 'skewed', clockAheadMs: Math.round(aheadMs), maxSkewMs })
  }
}

/**
 * The clock has handed out timestamps further ahead of the wall clock than `clock.maxSkewMs`
 * (the wall clock was set back, or a previous run's clock was ahead and its persisted ceiling is
 * in the future). Replicas would refuse such versions, so the clock issues none until the wall
 * clock is back within the bound; transient, hence 503.
 */
export class ClockAheadError extends UnavailableError {
  constructor(leadMs: number, maxSkewMs: number) {
    super(`this node's clock has issued timestamps ${leadMs} ms ahead of its wall clock, beyond clock.maxSkewMs ${maxSkewMs} (its clock was set back, or ran ahead before a restart): it coordinates no writes for about ${leadMs - maxSkewMs} ms; write through another node`,
      { outcome: 'refused', clockLeadMs: leadMs, maxSkewMs })
  }
}
