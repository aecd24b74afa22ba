import type { NodeId } from '../clock/version.js'
import type { Random } from '../runtime/random.js'
import type { PeerAddress, PeerIdentity } from '../transport/transport.js'
import { Awareness } from './awareness.js'
import { BroadcastQueue } from './broadcast-queue.js'
import { assertMembershipConfig, type MembershipConfig } from './config.js'
import { applyRecord, MemberTable, supersedes, toRecord, type Member } from './member-table.js'
import { estimateWireBytes, MAX_MEMBERS, type MemberRecord, type MembershipMessage, type MemberState } from './messages.js'
import { minSuspicionTimeoutMs, Suspicion } from './suspicion.js'

/**
 * SWIM membership with Lifeguard's refinements as a pure state machine (memberlist state.go).
 * Inputs are calls carrying the current time; outputs are effects for the driver (or the
 * simulator) to carry out. It owns no timer, socket or disk: `nextTickAtMs()` says when it wants
 * `tick()` next, and every decision that needs chance draws from the injected `random`, so a
 * simulation with the same seed replays exactly.
 */

export type SwimEffect =
  | { readonly kind: 'send'; readonly to: PeerAddress; readonly message: MembershipMessage }
  /** Any change to a member's entry (state, incarnation or addresses); previous is undefined for a newcomer. */
  | { readonly kind: 'memberChanged'; readonly member: Member; readonly previous: Member | undefined }
  /** A dead or left member forgotten after reapAfterMs. */
  | { readonly kind: 'memberReaped'; readonly member: Member }
  /** Store this incarnation in the data dir before carrying out the effects that follow it. */
  | { readonly kind: 'persistIncarnation'; readonly incarnation: number }
  | { readonly kind: 'joined'; readonly seed: PeerAddress }
  /** Our probe of `target` was acknowledged after rttMs, directly or through a relay (indirect). */
  | { readonly kind: 'probeAcked'; readonly target: NodeId; readonly rttMs: number; readonly indirect: boolean }
  /** No seed answered yet: the node runs alone and tries again at retryAtMs. */
  | { readonly kind: 'joinUnanswered'; readonly attempt: number; readonly seeds: readonly PeerAddress[]; readonly retryAtMs: number }

/** Who sent a message, as the transport's handshake established it (name: with its certificate, if any). */
export type MessageSender = Pick<PeerIdentity, 'id' | 'peer'> & Partial<Pick<PeerIdentity, 'name' | 'nameCertified'>>

/** This node as it advertises itself. */
export interface LocalMember {
  readonly id: NodeId
  readonly name: string
  readonly peer: PeerAddress
  readonly api: string
}

export interface SwimOptions {
  readonly local: LocalMember
  /** Highest incarnation this node id used before (kept in its data dir), 0 for a new node. */
  readonly storedIncarnation: number
  readonly config: MembershipConfig
  readonly random: Random
}

/** Most updates piggybacked on one message; the wire accepts up to MAX_GOSSIP_PER_MESSAGE. */
export const GOSSIP_MAX_UPDATES_PER_MESSAGE = 32
/** Piggybacked gossip per message, as memberlist keeps a compound message within a UDP packet. */
export const GOSSIP_MAX_BYTES_PER_MESSAGE = 1400
/** Indirect probes we relay at once for others; further pingReqs are ignored (the asker counts a missing nack). */
export const MAX_PENDING_RELAYS = 128
/** Dead members still get gossip this long, so one wrongly declared dead hears it and refutes (memberlist GossipToTheDeadTime). */
export const GOSSIP_TO_THE_DEAD_MS = 30_000
/** First wait before retrying a join; doubles up to joinRetryMaxMs. */
export const JOIN_RETRY_INITIAL_MS = 1000
/**
 * Dead members whose addresses are tried per reconnect round (one round per probe interval): a
 * push-pull to each, so when a partition heals both sides learn it within about one probe
 * interval of their links coming back (Serf's reconnect, at a LAN's pace instead of every 30 s).
 */
export const DEAD_RECONNECT_TARGETS_PER_ROUND = 3
/**
 * Largest jump in a member's incarnation we believe in one piece of news. An honest member moves
 * one step per restart or refutation; a member that knows the cluster secret and claims a far
 * incarnation for another would otherwise out-rank that member's refutations for good.
 */
export const MAX_INCARNATION_STEP = 2 ** 20
/**
 * Members one message may introduce (a newcomer learns the rest from the next exchanges): one
 * push-pull with a thousand invented members once put them all into placement at once.
 */
export const MAX_NEW_MEMBERS_PER_MESSAGE = 64
/** Beyond this many members the push-pull interval grows with log2 n (memberlist pushPullScale). */
export const PUSH_PULL_SCALE_THRESHOLD = 32

interface ActiveProbe {
  readonly target: NodeId
  readonly targetPeer: PeerAddress
  readonly seq: number
  /** When the ping went out, for the round-trip time. */
  readonly startedAtMs: number
  /** No ack by then: ask k others to probe the target. */
  readonly indirectAtMs: number
  /** No ack by then: suspect the target. */
  readonly endAtMs: number
  indirectSent: boolean
  /** Relays asked; each owes us an ack or a nack (Lifeguard §4.1). */
  expectedNacks: number
  nacks: number
}

interface Relay {
  readonly requester: PeerAddress
  readonly requesterSeq: number
  readonly nackAtMs: number
}

interface JoinAttempt {
  readonly seeds: readonly PeerAddress[]
  attempt: number
  backoffMs: number
  retryAtMs: number
}

export class Swim {
  readonly #config: MembershipConfig
  readonly #random: Random
  readonly #table = new MemberTable()
  readonly #queue: BroadcastQueue<MemberRecord>
  readonly #awareness: Awareness
  readonly #suspicions = new Map<NodeId, Suspicion>()
  /** Our pings sent on others' behalf, by the seq we used. */
  readonly #relays = new Map<number, Relay>()
  #self: Member
  #seq = 0
  #started = false
  #left = false
  #probe: ActiveProbe | undefined
  /** This round's probe order (SWIM §4.3: round-robin over a random permutation bounds detection time). */
  #probeOrder: NodeId[] = []
  #probeIndex = 0
  #nextProbeAtMs = Infinity
  #nextGossipAtMs = Infinity
  #nextPushPullAtMs = Infinity
  #join: JoinAttempt | undefined
  /** Earliest time a dead or left member may be due for reaping. */
  #reapDueAtMs = Infinity
  /** Next round of push-pulls to dead members' addresses. */
  #nextReconnectAtMs = Infinity
  /** When each member last sent us a membership message itself (the transport authenticated it). */
  readonly #lastHeardAtMs = new Map<NodeId, number>()
  /** Members the message being received may still introduce (see MAX_NEW_MEMBERS_PER_MESSAGE). */
  #newMembersLeft = Infinity

  constructor(options: SwimOptions) {
    assertMembershipConfig(options.config)
    if (!Number.isSafeInteger(options.storedIncarnation) || options.storedIncarnation < 0 || options.storedIncarnation >= Number.MAX_SAFE_INTEGER) {
      throw new RangeError(`stored incarnation must be a non-negative safe integer, got ${options.storedIncarnation}`)
    }
    this.#config = options.config
    this.#random = options.random
    this.#queue = new BroadcastQueue({ retransmitMult: options.config.retransmitMult, maxEntries: MAX_MEMBERS })
    this.#awareness = new Awareness(options.config.awarenessMaxMultiplier)
    // A restarted node must out-rank every statement made about its previous life.
    this.#self = { ...options.local, incarnation: options.storedIncarnation + 1, state: 'alive', stateChangedAtMs: 0 }
    this.#table.set(this.#self)
  }

  get local(): Member {
    return this.#self
  }

  get hasLeft(): boolean {
    return this.#left
  }

  /** Lifeguard local health score, 0 = healthy. */
  get awarenessScore(): number {
    return this.#awareness.score
  }

  members(): Member[] {
    return [...this.#table.values()]
  }

  member(id: NodeId): Member | undefined {
    return this.#table.get(id)
  }

  /** Members in `state`, this node included (for the members gauge). */
  memberCount(state: MemberState): number {
    return this.#table.count(state)
  }

  /**
   * When `tick` wants to run next; Infinity before `join`. A gossip round with an empty queue and
   * a reconnect round with no dead member have nothing to do, so they wake nobody: an idle node
   * wakes for its probes only (see #resumeIdleRounds for how their schedule is kept meanwhile).
   */
  nextTickAtMs(): number {
    if (!this.#started) return Infinity
    let due = Math.min(this.#queue.size > 0 ? this.#nextGossipAtMs : Infinity, this.#reapDueAtMs)
    for (const relay of this.#relays.values()) due = Math.min(due, relay.nackAtMs)
    // A node that left judges nobody: it only passes news on until the driver stops it.
    if (this.#left) return due
    const reconnectAtMs = this.#table.count('dead') > 0 ? this.#nextReconnectAtMs : Infinity
    due = Math.min(due, this.#nextProbeAtMs, this.#nextPushPullAtMs, reconnectAtMs, this.#join?.retryAtMs ?? Infinity)
    if (this.#probe !== undefined) {
      due = Math.min(due, this.#probe.endAtMs)
      if (!this.#probe.indirectSent) due = Math.min(due, this.#probe.indirectAtMs)
    }
    for (const suspicion of this.#suspicions.values()) due = Math.min(due, suspicion.deadlineMs)
    return due
  }

  /**
   * Starts the protocol: announces this node, and sends a join push-pull to each seed (addresses
   * only — their ids are learnt from the answers). With no seed besides itself the node starts a
   * cluster of its own.
   */
  join(seeds: readonly PeerAddress[], nowMs: number): SwimEffect[] {
    if (this.#started) throw new Error('join() called twice')
    this.#started = true
    const effects: SwimEffect[] = [{ kind: 'persistIncarnation', incarnation: this.#self.incarnation }]
    this.#self = { ...this.#self, stateChangedAtMs: nowMs }
    this.#table.set(this.#self)
    this.#enqueue(toRecord(this.#self))
    // Random first deadlines keep the members of a cluster started together out of lockstep.
    this.#nextProbeAtMs = nowMs + this.#random.int(this.#config.probeIntervalMs)
    this.#nextGossipAtMs = nowMs + this.#random.int(this.#config.gossipIntervalMs)
    this.#nextPushPullAtMs = nowMs + this.#random.int(this.#config.pushPullIntervalMs)
    this.#nextReconnectAtMs = nowMs + this.#config.probeIntervalMs
    const others = [...new Set(seeds)].filter(seed => seed !== this.#self.peer)
    if (others.length > 0) {
      const backoffMs = Math.min(JOIN_RETRY_INITIAL_MS, this.#config.joinRetryMaxMs)
      this.#join = { seeds: others, attempt: 1, backoffMs, retryAtMs: nowMs + backoffMs }
      this.#sendJoin(others, effects)
    }
    return effects
  }

  /**
   * Leaves gracefully: `left` for itself at a bumped incarnation, gossiped at once and then by the
   * gossip loop. The driver keeps ticking until `leaveSettled()` (or its own deadline) and stops.
   */
  leave(nowMs: number): SwimEffect[] {
    if (!this.#started || this.#left) return []
    this.#resumeIdleRounds(nowMs)
    this.#left = true
    this.#probe = undefined
    this.#join = undefined
    this.#suspicions.clear()
    const effects: SwimEffect[] = []
    this.#setSelf({ ...this.#self, incarnation: this.#self.incarnation + 1, state: 'left', stateChangedAtMs: nowMs }, effects)
    this.#gossip(nowMs, effects)
    return effects
  }

  /** True once the `left` news has used up its retransmissions, or nobody is left to tell. */
  leaveSettled(): boolean {
    if (!this.#left) return false
    const othersListening = this.#table.count('alive') + this.#table.count('suspect')
    return !this.#queue.has(this.#self.id) || othersListening === 0
  }

  tick(nowMs: number): SwimEffect[] {
    const effects: SwimEffect[] = []
    if (!this.#started) return effects
    this.#resumeIdleRounds(nowMs)
    this.#expireRelays(nowMs, effects)
    if (!this.#left) {
      this.#retryJoin(nowMs, effects)
      this.#advanceProbe(nowMs, effects)
      this.#expireSuspicions(nowMs, effects)
      if (nowMs >= this.#nextPushPullAtMs) this.#pushPull(nowMs, effects)
      if (nowMs >= this.#nextReconnectAtMs) this.#reconnectDead(nowMs, effects)
    }
    if (nowMs >= this.#nextGossipAtMs) {
      this.#nextGossipAtMs = nowMs + this.#config.gossipIntervalMs
      this.#gossip(nowMs, effects)
    }
    if (nowMs >= this.#reapDueAtMs) this.#reap(nowMs, effects)
    // Every deadline that was due has been handled and moved on; anything else would spin the driver.
    if (this.nextTickAtMs() <= nowMs) throw new Error(`membership tick at ${nowMs} ms left a deadline due at ${this.nextTickAtMs()} ms`)
    return effects
  }

  receive(from: MessageSender, message: MembershipMessage, nowMs: number): SwimEffect[] {
    const effects: SwimEffect[] = []
    if (!this.#started) return effects
    this.#resumeIdleRounds(nowMs)
    // Judged before this message's news applies: a sender we hold dead speaks from a stale view.
    const senderState = this.#table.get(from.id)?.state
    const senderAlive = senderState === 'alive' || senderState === 'suspect'
    // The answer to our own join brings the whole cluster; anything else introduces few members.
    this.#newMembersLeft = message.type === 'pushPullReply' && this.#join !== undefined ? Infinity : MAX_NEW_MEMBERS_PER_MESSAGE
    switch (message.type) {
      case 'ping': {
        // A ping for another id reached a node that now holds that address: no ack, so the prober's
        // verdict stays about the member it meant.
        if (message.body.target !== this.#self.id) break
        const sender = message.body.from
        if (sender !== undefined && sender.id === from.id && sender.state === 'alive') this.#apply(sender, from, nowMs, effects)
        this.#applyAll(message.body.gossip, from, senderAlive, nowMs, effects)
        this.#send(from.peer, { type: 'ack', body: { seq: message.body.seq, gossip: this.#takeGossip() } }, effects)
        break
      }
      case 'ack': {
        this.#applyAll(message.body.gossip, from, senderAlive, nowMs, effects)
        const seq = message.body.seq
        if (this.#probe?.seq === seq) {
          effects.push({ kind: 'probeAcked', target: this.#probe.target, rttMs: nowMs - this.#probe.startedAtMs, indirect: this.#probe.indirectSent })
          this.#probe = undefined
          this.#awareness.applyDelta(-1)
          break
        }
        const relay = this.#relays.get(seq)
        if (relay !== undefined) {
          this.#relays.delete(seq)
          this.#send(relay.requester, { type: 'ack', body: { seq: relay.requesterSeq, gossip: this.#takeGossip() } }, effects)
        }
        break
      }
      case 'nack':
        if (this.#probe?.seq === message.body.seq && this.#probe.indirectSent) {
          this.#probe.nacks = Math.min(this.#probe.expectedNacks, this.#probe.nacks + 1)
        }
        break
      case 'pingReq': {
        const { target, targetPeer, seq } = message.body
        if (target === this.#self.id || this.#relays.size >= MAX_PENDING_RELAYS) break
        const relaySeq = this.#nextSeq()
        this.#relays.set(relaySeq, { requester: from.peer, requesterSeq: seq, nackAtMs: nowMs + this.#config.probeTimeoutMs })
        this.#send(targetPeer, { type: 'ping', body: { seq: relaySeq, target, from: toRecord(this.#self), gossip: this.#takeGossip() } }, effects)
        break
      }
      case 'pushPull':
        // Merge first, so the reply carries any refutation their table provoked: at a heal, the
        // other side then learns in this one round trip that we are alive.
        this.#merge(message.body.members, from, senderAlive, nowMs, effects)
        this.#send(from.peer, { type: 'pushPullReply', body: { members: this.#records() } }, effects)
        break
      case 'pushPullReply': {
        const incarnation = this.#self.incarnation
        this.#merge(message.body.members, from, senderAlive, nowMs, effects)
        if (this.#join !== undefined) {
          this.#join = undefined
          effects.push({ kind: 'joined', seed: from.peer })
        }
        // Their table held us dead or suspect: tell them our refutation straight away, since
        // gossip does not reach a member we may still hold dead ourselves.
        if (this.#self.incarnation > incarnation) {
          this.#send(from.peer, { type: 'pushPull', body: { members: this.#records(), join: false } }, effects)
        }
        break
      }
      case 'gossip':
        this.#applyAll(message.body.gossip, from, senderAlive, nowMs, effects)
        break
    }
    this.#newMembersLeft = Infinity
    if (from.id !== this.#self.id && this.#table.get(from.id) !== undefined) this.#lastHeardAtMs.set(from.id, nowMs)
    return effects
  }

  // --- probing (SWIM §3.1, Lifeguard §4.1) ---

  #advanceProbe(nowMs: number, effects: SwimEffect[]): void {
    const probe = this.#probe
    if (probe !== undefined && !probe.indirectSent && nowMs >= probe.indirectAtMs) this.#probeIndirectly(probe, effects)
    if (probe !== undefined && nowMs >= probe.endAtMs) this.#failProbe(probe, nowMs, effects)
    if (nowMs >= this.#nextProbeAtMs) this.#startProbe(nowMs, effects)
  }

  #startProbe(nowMs: number, effects: SwimEffect[]): void {
    const target = this.#nextProbeTarget()
    if (target === undefined) {
      this.#nextProbeAtMs = nowMs + this.#config.probeIntervalMs
      return
    }
    const seq = this.#nextSeq()
    // Lifeguard §4.3: an unhealthy node waits longer before blaming others.
    const probe: ActiveProbe = {
      target: target.id,
      targetPeer: target.peer,
      seq,
      startedAtMs: nowMs,
      indirectAtMs: nowMs + this.#awareness.scaleMs(this.#config.probeTimeoutMs),
      endAtMs: nowMs + this.#awareness.scaleMs(this.#config.probeIntervalMs),
      indirectSent: false,
      expectedNacks: 0,
      nacks: 0,
    }
    this.#probe = probe
    this.#nextProbeAtMs = probe.endAtMs
    this.#send(target.peer, { type: 'ping', body: { seq, target: target.id, from: toRecord(this.#self), gossip: this.#takeGossip() } }, effects)
  }

  #probeIndirectly(probe: ActiveProbe, effects: SwimEffect[]): void {
    probe.indirectSent = true
    const relays = this.#table.sample(this.#config.indirectChecks, this.#random,
      member => member.state === 'alive' && member.id !== this.#self.id && member.id !== probe.target)
    probe.expectedNacks = relays.length
    for (const relay of relays) {
      this.#send(relay.peer, { type: 'pingReq', body: { seq: probe.seq, target: probe.target, targetPeer: probe.targetPeer } }, effects)
    }
  }

  #failProbe(probe: ActiveProbe, nowMs: number, effects: SwimEffect[]): void {
    this.#probe = undefined
    // Lifeguard §4.1: missing nacks mean our own links or process are the problem; with no relays
    // to judge by, any failed probe counts against our health.
    this.#awareness.applyDelta(probe.expectedNacks > 0 ? probe.expectedNacks - probe.nacks : 1)
    const target = this.#table.get(probe.target)
    if (target === undefined || (target.state !== 'alive' && target.state !== 'suspect')) return
    this.#apply({ ...toRecord(target), state: 'suspect', from: this.#self.id }, this.#selfSender(), nowMs, effects)
  }

  #nextProbeTarget(): Member | undefined {
    for (let pass = 0; pass < 2; pass++) {
      while (this.#probeIndex < this.#probeOrder.length) {
        const member = this.#table.get(this.#probeOrder[this.#probeIndex++]!)
        if (member !== undefined && (member.state === 'alive' || member.state === 'suspect') && member.id !== this.#self.id) return member
      }
      this.#probeOrder = []
      for (const member of this.#table.values()) {
        if (member.id !== this.#self.id && (member.state === 'alive' || member.state === 'suspect')) this.#probeOrder.push(member.id)
      }
      shuffleInPlace(this.#probeOrder, this.#random)
      this.#probeIndex = 0
    }
    return undefined
  }

  #expireRelays(nowMs: number, effects: SwimEffect[]): void {
    for (const [seq, relay] of this.#relays) {
      if (nowMs < relay.nackAtMs) continue
      this.#relays.delete(seq)
      this.#send(relay.requester, { type: 'nack', body: { seq: relay.requesterSeq } }, effects)
    }
  }

  #expireSuspicions(nowMs: number, effects: SwimEffect[]): void {
    for (const [id, suspicion] of this.#suspicions) {
      if (nowMs < suspicion.deadlineMs) continue
      this.#suspicions.delete(id)
      const member = this.#table.get(id)
      if (member?.state === 'suspect') this.#apply({ ...toRecord(member), state: 'dead', from: this.#self.id }, this.#selfSender(), nowMs, effects)
    }
  }

  // --- dissemination (SWIM §4.1) and anti-entropy (push-pull) ---

  #gossip(nowMs: number, effects: SwimEffect[]): void {
    if (this.#queue.size === 0) return
    const targets = this.#table.sample(this.#config.gossipNodes, this.#random, member =>
      member.id !== this.#self.id && (member.state === 'alive' || member.state === 'suspect' ||
        (member.state === 'dead' && nowMs - member.stateChangedAtMs <= GOSSIP_TO_THE_DEAD_MS)))
    for (const target of targets) {
      const gossip = this.#takeGossip()
      if (gossip.length === 0) return
      this.#send(target.peer, { type: 'gossip', body: { gossip } }, effects)
    }
  }

  #pushPull(nowMs: number, effects: SwimEffect[]): void {
    // Jitter of ±50 % keeps members that joined together from exchanging tables in lockstep.
    const intervalMs = pushPullIntervalMs(this.#config.pushPullIntervalMs, this.#table.size)
    this.#nextPushPullAtMs = nowMs + Math.max(1, Math.floor(intervalMs * (0.5 + this.#random.next())))
    const isOther = (member: Member): boolean => member.id !== this.#self.id
    const [partner] = this.#table.sample(1, this.#random, member => member.state === 'alive' && isOther(member))
    if (partner !== undefined) this.#send(partner.peer, { type: 'pushPull', body: { members: this.#records(), join: false } }, effects)
  }

  /**
   * Members on the far side of a partition are dead to us and we to them, and neither side probes
   * the dead. So every probe interval a few dead members get a push-pull (Serf's reconnect): the
   * transport keeps dialing their addresses while it has one queued, and the first exchange after
   * a heal merges both tables (see the pushPull cases of receive()).
   */
  #reconnectDead(nowMs: number, effects: SwimEffect[]): void {
    this.#nextReconnectAtMs = nowMs + this.#config.probeIntervalMs
    if (this.#table.count('dead') === 0) return
    const lost = this.#table.sample(DEAD_RECONNECT_TARGETS_PER_ROUND, this.#random, member => member.state === 'dead')
    for (const member of lost) this.#send(member.peer, { type: 'pushPull', body: { members: this.#records(), join: false } }, effects)
  }

  #sendJoin(seeds: readonly PeerAddress[], effects: SwimEffect[]): void {
    for (const seed of seeds) this.#send(seed, { type: 'pushPull', body: { members: this.#records(), join: true } }, effects)
  }

  #retryJoin(nowMs: number, effects: SwimEffect[]): void {
    const join = this.#join
    if (join === undefined || nowMs < join.retryAtMs) return
    // Someone found us (a node that joined through us, or a late seed answer merged by gossip).
    if (this.#table.count('alive') + this.#table.count('suspect') > 1) {
      this.#join = undefined
      return
    }
    join.attempt += 1
    join.backoffMs = Math.min(join.backoffMs * 2, this.#config.joinRetryMaxMs)
    join.retryAtMs = nowMs + join.backoffMs
    effects.push({ kind: 'joinUnanswered', attempt: join.attempt - 1, seeds: join.seeds, retryAtMs: join.retryAtMs })
    this.#sendJoin(join.seeds, effects)
  }

  /**
   * Merges a remote member table (memberlist mergeState). Their `dead` becomes our `suspect`:
   * we give the member the chance to refute rather than take a second-hand death as fact.
   */
  #merge(records: readonly MemberRecord[], sender: MessageSender, senderAlive: boolean, nowMs: number, effects: SwimEffect[]): void {
    for (const record of records) {
      if (this.#judgeRumour(record, sender, senderAlive, nowMs) !== 'believe') continue
      const update: MemberRecord = record.state === 'dead' || record.state === 'suspect'
        ? { ...record, state: 'suspect', from: this.#self.id }
        : record
      this.#apply(update, sender, nowMs, effects)
    }
  }

  // --- applying news ---

  #applyAll(records: readonly MemberRecord[], sender: MessageSender, senderAlive: boolean, nowMs: number, effects: SwimEffect[]): void {
    for (const record of records) {
      const verdict = this.#judgeRumour(record, sender, senderAlive, nowMs)
      if (verdict === 'believe') this.#apply(record, sender, nowMs, effects)
      // Passed on unbelieved, so it still reaches the member, which refutes it for everyone.
      else if (verdict === 'passOn') this.#enqueue({ ...record, from: record.from ?? sender.id })
    }
  }

  /**
   * Second-hand doubt about a member we hold alive is not believed when it cannot be current:
   * - the sender is not alive to us, so its view is from the far side of a partition (at a heal
   *   its stale "dead" news would otherwise take healthy members out for a moment): dropped;
   * - the member itself spoke to us within the minimum suspicion timeout, the time it would have
   *   to refute anyway: passed on but not acted upon, and our next probe goes to that member, so
   *   our own eyes judge it.
   * Our own suspicions (raised by #failProbe and #expireSuspicions) do not come through here.
   * `left` is doubt too when someone else says it: only the member itself can leave.
   */
  #judgeRumour(update: MemberRecord, sender: MessageSender, senderAlive: boolean, nowMs: number): 'believe' | 'passOn' | 'drop' {
    const current = this.#table.get(update.id)
    if (update.state !== 'suspect' && update.state !== 'dead' && (update.state !== 'left' || speaksFor(sender, update, current))) return 'believe'
    // News that loses to what we hold anyway is #apply's to ignore (never re-queued over fresher news).
    if (update.id === this.#self.id || current?.state !== 'alive' || !supersedes(current, update)) return 'believe'
    if (!senderAlive) return 'drop'
    const heardAtMs = this.#lastHeardAtMs.get(update.id)
    const memberCount = this.#table.count('alive') + this.#table.count('suspect')
    if (heardAtMs === undefined || nowMs - heardAtMs >= minSuspicionTimeoutMs(this.#config.suspicionMult, memberCount, this.#config.probeIntervalMs)) return 'believe'
    this.#probeNext(update.id)
    return 'passOn'
  }

  /** Makes `id` the next probe target of this round. */
  #probeNext(id: NodeId): void {
    const at = this.#probeOrder.indexOf(id, this.#probeIndex)
    if (at > this.#probeIndex) {
      this.#probeOrder.splice(at, 1)
      this.#probeOrder.splice(this.#probeIndex, 0, id)
    } else if (at === -1) {
      this.#probeOrder.splice(this.#probeIndex, 0, id)
    }
  }

  /** Applies one piece of news by SWIM's precedence rules; accepted news is passed on. */
  #apply(update: MemberRecord, sender: MessageSender, nowMs: number, effects: SwimEffect[]): void {
    if (update.id === this.#self.id) {
      this.#aboutSelf(update, effects)
      return
    }
    const current = this.#table.get(update.id)
    const accuser = update.from ?? sender.id
    if (update.state === 'suspect' && current?.state === 'suspect') {
      // Lifeguard §4.2: an independent accuser shortens the timeout; re-gossip so others count it too.
      const suspicion = this.#suspicions.get(update.id)
      if (update.incarnation >= current.incarnation && suspicion?.confirm(accuser) === true) this.#enqueue({ ...update, from: accuser })
      return
    }
    if (!supersedes(current, update) || !this.#credible(update, current, sender)) return
    if (current === undefined) {
      if (this.#table.size >= MAX_MEMBERS || this.#newMembersLeft <= 0) return
      this.#newMembersLeft--
    }
    const member = applyRecord(current, update, nowMs)
    this.#table.set(member)
    effects.push({ kind: 'memberChanged', member, previous: current })
    this.#enqueue(update.state === 'suspect' || update.state === 'dead' ? { ...update, from: accuser } : toRecord(member))
    if (current === undefined) this.#addToProbeOrder(member.id)
    if (member.state !== 'suspect') this.#suspicions.delete(member.id)
    if (member.state === 'suspect' && current?.state !== 'suspect') this.#startSuspicion(member.id, accuser, nowMs)
    if (member.state === 'dead' || member.state === 'left') {
      this.#reapDueAtMs = Math.min(this.#reapDueAtMs, member.stateChangedAtMs + this.#config.reapAfterMs)
    }
  }

  /**
   * Bounds on what anyone may claim about a member (issue 17): the incarnation moves by at most
   * MAX_INCARNATION_STEP, and a member's addresses change only when the member says so itself.
   * Relayed address news could otherwise point a member's traffic at whoever sent it.
   */
  #credible(update: MemberRecord, current: Member | undefined, sender: MessageSender): boolean {
    if (current === undefined) return true
    if (update.incarnation > current.incarnation + MAX_INCARNATION_STEP) return false
    const moved = update.peer !== current.peer || update.api !== current.api || update.name !== current.name
    return !(moved && update.state === 'alive' && !speaksFor(sender, update, current))
  }

  /** This node as the sender of its own verdicts (suspect, dead). */
  #selfSender(): MessageSender {
    return { id: this.#self.id, peer: this.#self.peer }
  }

  /** SWIM §4.2: a member that hears itself doubted refutes with a higher incarnation. */
  #aboutSelf(update: MemberRecord, effects: SwimEffect[]): void {
    if (this.#left) return
    const self = this.#self
    // Beyond any honest step: someone invents it, and following would put us out of others' reach.
    if (update.incarnation > self.incarnation + MAX_INCARNATION_STEP) return
    const doubted = update.state === 'alive'
      // Our own alive news at a higher incarnation, or with other addresses, is a previous life talking.
      ? update.incarnation > self.incarnation ||
        (update.incarnation === self.incarnation && (update.name !== self.name || update.peer !== self.peer || update.api !== self.api))
      : update.incarnation >= self.incarnation
    if (!doubted) return
    const incarnation = Math.max(self.incarnation, update.incarnation) + 1
    if (!Number.isSafeInteger(incarnation)) return
    // Lifeguard §4.3: being doubted hints that we have been slow to answer.
    this.#awareness.applyDelta(1)
    this.#setSelf({ ...self, incarnation }, effects)
  }

  #setSelf(self: Member, effects: SwimEffect[]): void {
    const previous = this.#self
    this.#self = self
    this.#table.set(self)
    effects.push({ kind: 'persistIncarnation', incarnation: self.incarnation })
    effects.push({ kind: 'memberChanged', member: self, previous })
    this.#enqueue(toRecord(self))
  }

  #startSuspicion(id: NodeId, accuser: NodeId, nowMs: number): void {
    const memberCount = this.#table.count('alive') + this.#table.count('suspect')
    // Without enough other members to confirm, expect no confirmations (memberlist: n - 2 < k → k = 0).
    const k = memberCount - 2 < this.#config.indirectChecks ? 0 : this.#config.indirectChecks
    const minMs = minSuspicionTimeoutMs(this.#config.suspicionMult, memberCount, this.#config.probeIntervalMs)
    this.#suspicions.set(id, new Suspicion({ accuser, k, minMs, maxMs: this.#config.suspicionMaxTimeoutMult * minMs, nowMs }))
  }

  #addToProbeOrder(id: NodeId): void {
    // Anywhere in the rest of this round, so a newcomer is probed soon but not predictably.
    const position = this.#probeIndex + this.#random.int(this.#probeOrder.length - this.#probeIndex + 1)
    this.#probeOrder.splice(position, 0, id)
  }

  #reap(nowMs: number, effects: SwimEffect[]): void {
    this.#reapDueAtMs = Infinity
    for (const member of [...this.#table.values()]) {
      if (member.state !== 'dead' && member.state !== 'left') continue
      const dueAtMs = member.stateChangedAtMs + this.#config.reapAfterMs
      if (nowMs >= dueAtMs && member.id !== this.#self.id) {
        this.#table.delete(member.id)
        this.#lastHeardAtMs.delete(member.id)
        effects.push({ kind: 'memberReaped', member })
      } else if (member.id !== this.#self.id) {
        this.#reapDueAtMs = Math.min(this.#reapDueAtMs, dueAtMs)
      }
    }
  }

  // --- helpers ---

  /**
   * The gossip and reconnect rounds skip their wake-ups while they have nothing to do (see
   * nextTickAtMs), which leaves their deadlines behind. Before anything can queue news or declare
   * a member dead, a stale deadline moves to the first point of its old grid at or after now: the
   * rounds then run exactly when they would have had they ticked idly all along (an idle round
   * draws no randomness, so a seeded run replays as before).
   */
  #resumeIdleRounds(nowMs: number): void {
    if (this.#queue.size === 0) this.#nextGossipAtMs = resumeOnGrid(this.#nextGossipAtMs, this.#config.gossipIntervalMs, nowMs)
    if (this.#table.count('dead') === 0) this.#nextReconnectAtMs = resumeOnGrid(this.#nextReconnectAtMs, this.#config.probeIntervalMs, nowMs)
  }

  #enqueue(record: MemberRecord): void {
    this.#queue.enqueue(record.id, record, estimateWireBytes(record))
  }

  #takeGossip(): MemberRecord[] {
    return this.#queue.take(this.#table.size, GOSSIP_MAX_UPDATES_PER_MESSAGE, GOSSIP_MAX_BYTES_PER_MESSAGE)
  }

  #records(): MemberRecord[] {
    return [...this.#table.values()].map(member => toRecord(member))
  }

  #send(to: PeerAddress, message: MembershipMessage, effects: SwimEffect[]): void {
    effects.push({ kind: 'send', to, message })
  }

  #nextSeq(): number {
    this.#seq += 1
    return this.#seq
  }
}

/** memberlist pushPullScale: big clusters exchange full tables less often, keeping the total rate flat-ish. */
export function pushPullIntervalMs(baseMs: number, memberCount: number): number {
  if (memberCount <= PUSH_PULL_SCALE_THRESHOLD) return baseMs
  const multiplier = Math.ceil(Math.log2(memberCount) - Math.log2(PUSH_PULL_SCALE_THRESHOLD)) + 1
  return multiplier * baseMs
}

/** The first of dueAtMs, dueAtMs + intervalMs, dueAtMs + 2 × intervalMs … that is not before nowMs. */
function resumeOnGrid(dueAtMs: number, intervalMs: number, nowMs: number): number {
  if (dueAtMs >= nowMs) return dueAtMs
  return dueAtMs + Math.ceil((nowMs - dueAtMs) / intervalMs) * intervalMs
}

function shuffleInPlace<T>(items: T[], random: Random): void {
  for (let i = items.length - 1; i > 0; i--) {
    const j = random.int(i + 1)
    const swap = items[i]!
    items[i] = items[j]!
    items[j] = swap
  }
}

/**
 * Whether `sender` speaks as the member `update` is about (its own address moves, its own
 * `left`): the same id and, on a link whose certificate names its node (tls.peer on, issue 12),
 * that name is the member's as we hold it and as the update gives it. Ids are in no
 * certificate, so without the name a node that knows the cluster secret could claim another
 * member's id in its handshake and move or evict it. Hence also: with TLS a member keeps its
 * name for its id (a renamed node starts with a new data directory).
 */
function speaksFor(sender: MessageSender, update: MemberRecord, current: Member | undefined): boolean {
  if (sender.id !== update.id) return false
  if (sender.nameCertified !== true) return true
  return update.name === sender.name && (current === undefined || current.name === sender.name)
}
