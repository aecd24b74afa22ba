import type { NodeId } from '../clock/version.js'
import type { Clock, TimerHandle } from '../runtime/clock.js'
import type { PeerMessage } from '../transport/transport.js'
import { NODE_SUMMARY, validateNodeSummaryReply, type NodeSummary } from './messages.js'
import type { RoundEntry } from './round-log.js'

/**
 * The cluster as the dashboard shows it: this node's summary and every peer's, asked over the
 * peer links every refreshIntervalMs while at least one page is watching (no page, no polling),
 * plus the partition map and the last anti-entropy rounds. One refresh serves every subscriber.
 */

/** A member's summary as last heard, or why it could not be heard. */
export interface NodeEntry {
  readonly id: string
  readonly name: string
  /** The summary as last answered; absent until the member first answered. */
  readonly summary?: NodeSummary
  /** Wall-clock ms of that answer. */
  readonly heardAtMs?: number
  /** Why the last refresh has no fresh answer (the member is not alive, or did not answer). */
  readonly error?: string
}

/** Which members hold which partitions: one bitmap per member, partition p = bit p (LSB first). */
export interface PartitionMap {
  readonly count: number
  readonly replicationFactor: number
  readonly members: readonly { readonly id: string; readonly name: string; readonly state: string; readonly held: string }[]
}

export interface ClusterState {
  readonly generatedAtMs: number
  readonly self: string
  readonly nodes: readonly NodeEntry[]
  readonly partitions: PartitionMap
  readonly rounds: readonly RoundEntry[]
  /** Removed and leaving members, re-replication and this node's decommission (lib/lifecycle); null when not wired. */
  readonly lifecycle: unknown
}

export interface ViewMember {
  readonly id: NodeId
  readonly name: string
  readonly peer: string
  readonly state: string
}

export interface ClusterViewOptions {
  readonly localId: NodeId
  readonly clock: Clock
  readonly localSummary: () => NodeSummary
  /** Every member in this node's table, itself included. */
  readonly members: () => readonly ViewMember[]
  readonly request: (peer: string, message: PeerMessage, timeoutMs: number) => Promise<PeerMessage>
  readonly partitionCount: number
  readonly replicationFactor: number
  readonly replicas: (partition: number) => readonly NodeId[]
  readonly rounds: () => readonly RoundEntry[]
  readonly refreshIntervalMs: number
  /** Deadline of one peer's answer; a slow peer shows its previous summary with an error. */
  readonly requestTimeoutMs: number
  /** Pages watching at once; one more is refused (each costs a long-lived response). */
  readonly maxSubscribers: number
  /** Node lifecycle as GET /admin/lifecycle shows it. */
  readonly lifecycle?: () => Promise<unknown>
}

export type StateListener = (state: ClusterState) => void

export class ClusterView {
  readonly #options: ClusterViewOptions
  readonly #listeners = new Set<StateListener>()
  /** Last answer per member id; members no longer in the table are forgotten at each refresh. */
  readonly #heard = new Map<string, { summary: NodeSummary; atMs: number }>()
  #state: ClusterState | undefined
  #timer: TimerHandle | undefined
  #refreshing: Promise<ClusterState> | undefined

  constructor(options: ClusterViewOptions) {
    this.#options = options
  }

  /** Adds a listener (it gets the current state at once); undefined when maxSubscribers watch already. */
  subscribe(listener: StateListener): (() => void) | undefined {
    if (this.#listeners.size >= this.#options.maxSubscribers) return undefined
    this.#listeners.add(listener)
    if (this.#state !== undefined) listener(this.#state)
    if (this.#timer === undefined && this.#refreshing === undefined) void this.#cycle()
    return () => {
      this.#listeners.delete(listener)
      if (this.#listeners.size === 0) this.stop()
    }
  }

  get subscribers(): number {
    return this.#listeners.size
  }

  stop(): void {
    if (this.#timer !== undefined) this.#options.clock.clearTimeout(this.#timer)
    this.#timer = undefined
  }

  /** Asks every alive peer for its summary (at most one refresh at a time) and builds the state. */
  refresh(): Promise<ClusterState> {
    this.#refreshing ??= this.#build().finally(() => { this.#refreshing = undefined })
    return this.#refreshing
  }

  async #cycle(): Promise<void> {
    this.#timer = undefined
    try {
      const state = await this.refresh()
      this.#state = state
      for (const listener of this.#listeners) listener(state)
    } catch {
      // The store closing under a shutdown, say: this refresh is skipped, pages keep the last
      // state, and an escaped rejection must never take the daemon down.
    }
    if (this.#listeners.size > 0) this.#timer = this.#options.clock.setTimeout(() => void this.#cycle(), this.#options.refreshIntervalMs)
  }

  async #build(): Promise<ClusterState> {
    const { localId, clock } = this.#options
    const members = this.#options.members()
    const known = new Set<string>(members.map(m => m.id))
    for (const id of this.#heard.keys()) if (!known.has(id)) this.#heard.delete(id)
    const nodes = await Promise.all(members.map(async (member): Promise<NodeEntry> => {
      if (member.id === localId) {
        return { id: member.id, name: member.name, summary: this.#options.localSummary(), heardAtMs: clock.nowMs() }
      }
      let error: string | undefined
      if (member.state === 'alive') {
        try {
          const reply = await this.#options.request(member.peer, { type: NODE_SUMMARY, body: {} }, this.#options.requestTimeoutMs)
          // The transport validated the reply by its type; a reply of another type is a peer bug.
          const summary = validateNodeSummaryReply(reply.body)
          this.#heard.set(member.id, { summary, atMs: clock.nowMs() })
        } catch (failure) {
          error = failure instanceof Error ? failure.message : String(failure)
        }
      } else {
        error = `the member is ${member.state}`
      }
      const last = this.#heard.get(member.id)
      return {
        id: member.id, name: member.name,
        ...(last !== undefined ? { summary: last.summary, heardAtMs: last.atMs } : {}),
        ...(error !== undefined ? { error } : {}),
      }
    }))
    nodes.sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id))
    const lifecycle = this.#options.lifecycle === undefined ? null : await this.#options.lifecycle().catch(() => null)
    return { generatedAtMs: clock.nowMs(), self: localId, nodes, partitions: this.#partitionMap(members), rounds: this.#options.rounds(), lifecycle }
  }

  #partitionMap(members: readonly ViewMember[]): PartitionMap {
    const { partitionCount } = this.#options
    const bitmaps = new Map<NodeId, Uint8Array>()
    for (const member of members) bitmaps.set(member.id, new Uint8Array(Math.ceil(partitionCount / 8)))
    for (let partition = 0; partition < partitionCount; partition++) {
      for (const id of this.#options.replicas(partition)) {
        const bitmap = bitmaps.get(id)
        if (bitmap !== undefined) bitmap[partition >> 3]! |= 1 << (partition & 7)
      }
    }
    return {
      count: partitionCount,
      replicationFactor: this.#options.replicationFactor,
      members: [...members]
        .sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id))
        .map(m => ({ id: m.id, name: m.name, state: m.state, held: Buffer.from(bitmaps.get(m.id)!).toString('base64') })),
    }
  }
}
