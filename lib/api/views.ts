import type { NodeId } from '../clock/version.js'

/** A member's state as the failure detector sees it (SWIM; `left` = said goodbye). */
export type MemberState = 'alive' | 'suspect' | 'dead' | 'left'

/** One row of GET /members and of the status page's members table. */
export interface MemberView {
  readonly id: NodeId
  readonly name: string
  /** Advertised peer address, `host:port`. */
  readonly peer: string
  /** Advertised client API address, `host:port`. */
  readonly api: string
  readonly state: MemberState
  readonly incarnation: number
}

/** What GET /health reports; only `ok` answers 200. */
export interface HealthView {
  /** `skewed`: this node's clock is beyond clock.maxSkewMs from its peers; it takes no writes. */
  readonly status: 'starting' | 'ok' | 'repairing' | 'leaving' | 'skewed'
  readonly id: string
  readonly name: string
  /** While skewed: the measured offset, so the answer says how far off the clock is. */
  readonly clock?: ClockHealthView
  /** Why the node is not ok, one sentence each (empty while ok). */
  readonly reasons?: readonly string[]
  /** The local store: keys (tombstones included), bytes used, room left in the LMDB map and on disk. */
  readonly storage?: StorageHealthView
}

export interface StorageHealthView {
  readonly keys: number
  readonly bytesUsed: number
  readonly mapBytes: number
  readonly mapFreeBytes: number
  readonly diskFreeBytes: number | null
}

/** The clock offset monitor's verdict as /health shows it while the node is skewed. */
export interface ClockHealthView {
  /** Median of how far this node's clock is ahead of its peers' (negative: behind), in ms. */
  readonly aheadMs: number
  readonly maxSkewMs: number
  /** Peers with a fresh offset estimate, and how many of them put this node beyond the bound. */
  readonly peersMeasured: number
  readonly peersBeyond: number
}
