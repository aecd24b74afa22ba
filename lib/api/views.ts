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
  readonly status: 'starting' | 'ok' | 'repairing' | 'leaving'
  readonly id: string
  readonly name: string
}
