/**
 * SWIM/Lifeguard timings. Names match the `membership.*` keys of the convict schema; the
 * defaults are memberlist's DefaultLANConfig.
 */
export interface MembershipConfig {
  /** Time between the starts of two probes (before Lifeguard's health scaling). */
  readonly probeIntervalMs: number
  /** How long to wait for a direct ack before asking others to probe (indirect probe). */
  readonly probeTimeoutMs: number
  /** k: members asked to probe indirectly, and the confirmations a suspicion expects. */
  readonly indirectChecks: number
  /** Minimum suspicion timeout = suspicionMult × max(1, log10 n) × probeIntervalMs. */
  readonly suspicionMult: number
  /** Maximum suspicion timeout = suspicionMaxTimeoutMult × the minimum. */
  readonly suspicionMaxTimeoutMult: number
  /** An update is piggybacked retransmitMult × ceil(log10(n + 1)) times. */
  readonly retransmitMult: number
  /** Full-table exchange with one random member, scaled up beyond 32 members. */
  readonly pushPullIntervalMs: number
  /** Gossip fan-out of queued updates. */
  readonly gossipIntervalMs: number
  /** Members each gossip fan-out goes to. */
  readonly gossipNodes: number
  /** Lifeguard local health: the probe interval and timeout scale up to this factor. */
  readonly awarenessMaxMultiplier: number
  /** Dead and left members are forgotten this long after their last state change. */
  readonly reapAfterMs: number
  /** Cap of the exponential backoff between join attempts while no seed answers. */
  readonly joinRetryMaxMs: number
}

export const DEFAULT_LAN_MEMBERSHIP_CONFIG: MembershipConfig = Object.freeze({
  probeIntervalMs: 1000,
  probeTimeoutMs: 500,
  indirectChecks: 3,
  suspicionMult: 4,
  suspicionMaxTimeoutMult: 6,
  retransmitMult: 4,
  pushPullIntervalMs: 30_000,
  gossipIntervalMs: 200,
  gossipNodes: 3,
  awarenessMaxMultiplier: 8,
  reapAfterMs: 86_400_000,
  joinRetryMaxMs: 30_000,
})

/** Invariants the protocol relies on; the convict schema checks ranges, this checks relations. */
export function assertMembershipConfig(config: MembershipConfig): void {
  for (const [key, value] of Object.entries(config)) {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`membership.${key} must be a non-negative integer, got ${value}`)
  }
  if (config.probeIntervalMs < 1 || config.gossipIntervalMs < 1 || config.pushPullIntervalMs < 1 || config.joinRetryMaxMs < 1) {
    throw new RangeError('membership intervals must be at least 1 ms')
  }
  if (config.probeTimeoutMs < 1 || config.probeTimeoutMs >= config.probeIntervalMs) {
    throw new RangeError(`membership.probeTimeoutMs (${config.probeTimeoutMs}) must be at least 1 and below membership.probeIntervalMs (${config.probeIntervalMs})`)
  }
  if (config.suspicionMult < 1 || config.suspicionMaxTimeoutMult < 1 || config.retransmitMult < 1 || config.awarenessMaxMultiplier < 1) {
    throw new RangeError('membership multipliers must be at least 1')
  }
}
