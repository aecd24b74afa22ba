import type { NodeId } from '../clock/version.js'
import type { Random } from '../runtime/random.js'
import type { MemberRecord, MemberState } from './messages.js'

/** What this node believes about one member: its gossiped record, without the accuser. */
export interface Member extends Omit<MemberRecord, 'from'> {
  /** Local clock reading when `state` last changed (reaping and the gossip-to-the-dead window). */
  readonly stateChangedAtMs: number
}

/**
 * SWIM's precedence rules (SWIM §4.2; memberlist aliveNode/suspectNode/deadNode): whether
 * `update` replaces what we hold about another member. Incarnations order a member's own
 * statements; at equal incarnation the worse news wins, and `left` is final for its incarnation.
 * - alive wins over anything only with a strictly higher incarnation (the member refuted or restarted);
 * - suspect wins over alive at an equal or higher incarnation;
 * - dead wins over alive or suspect at an equal or higher incarnation;
 * - left wins over alive, suspect or dead at an equal or higher incarnation.
 * Only alive news introduces a member we never heard of: rumours about strangers are ignored.
 * Repeated suspicion of a suspect is not a state change but a confirmation (see suspicion.ts).
 */
export function supersedes(current: Member | undefined, update: MemberRecord): boolean {
  if (current === undefined) return update.state === 'alive'
  switch (update.state) {
    case 'alive':
      return update.incarnation > current.incarnation
    case 'suspect':
      return current.state === 'alive' && update.incarnation >= current.incarnation
    case 'dead':
      return (current.state === 'alive' || current.state === 'suspect') && update.incarnation >= current.incarnation
    case 'left':
      return current.state !== 'left' && update.incarnation >= current.incarnation
  }
}

/** The member as it goes on the wire. */
export function toRecord(member: Member): MemberRecord {
  return {
    id: member.id,
    name: member.name,
    peer: member.peer,
    api: member.api,
    incarnation: member.incarnation,
    state: member.state,
  }
}

/** The member table after applying `update` (which must supersede `current`, or be about a stranger). */
export function applyRecord(current: Member | undefined, update: MemberRecord, nowMs: number): Member {
  return {
    id: update.id,
    name: update.name,
    peer: update.peer,
    api: update.api,
    incarnation: update.incarnation,
    state: update.state,
    stateChangedAtMs: current !== undefined && current.state === update.state ? current.stateChangedAtMs : nowMs,
  }
}

/** Members by id, with an id array beside the map so random sampling costs O(k), not O(n). */
export class MemberTable {
  readonly #byId = new Map<NodeId, Member>()
  readonly #ids: NodeId[] = []
  readonly #indexOf = new Map<NodeId, number>()
  /** Kept up to date on every change so hot paths (retransmit limits) need no scan. */
  readonly #counts: Record<MemberState, number> = { alive: 0, suspect: 0, dead: 0, left: 0 }

  get size(): number {
    return this.#byId.size
  }

  get(id: NodeId): Member | undefined {
    return this.#byId.get(id)
  }

  values(): IterableIterator<Member> {
    return this.#byId.values()
  }

  /** Stores `member`, returning what it replaced. */
  set(member: Member): Member | undefined {
    const previous = this.#byId.get(member.id)
    this.#byId.set(member.id, member)
    this.#counts[member.state] += 1
    if (previous !== undefined) this.#counts[previous.state] -= 1
    if (previous === undefined) {
      this.#indexOf.set(member.id, this.#ids.length)
      this.#ids.push(member.id)
    }
    return previous
  }

  delete(id: NodeId): Member | undefined {
    const previous = this.#byId.get(id)
    if (previous === undefined) return undefined
    this.#byId.delete(id)
    this.#counts[previous.state] -= 1
    const index = this.#indexOf.get(id)!
    const last = this.#ids.pop()!
    if (last !== id) {
      this.#ids[index] = last
      this.#indexOf.set(last, index)
    }
    this.#indexOf.delete(id)
    return previous
  }

  /**
   * Up to k distinct members for which `eligible` holds, chosen at random by bounded rejection
   * sampling (memberlist kRandomNodes: 3n tries), so a mostly-eligible table costs O(k).
   */
  sample(k: number, random: Random, eligible: (member: Member) => boolean): Member[] {
    const chosen: Member[] = []
    const n = this.#ids.length
    for (let tries = 0; tries < 3 * n && chosen.length < k; tries++) {
      const member = this.#byId.get(this.#ids[random.int(n)]!)!
      if (eligible(member) && !chosen.includes(member)) chosen.push(member)
    }
    return chosen
  }

  count(state: MemberState): number {
    return this.#counts[state]
  }
}
