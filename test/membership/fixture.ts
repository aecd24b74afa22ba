import { asNodeId, type NodeId } from '../../lib/clock/version.js'
import { DEFAULT_LAN_MEMBERSHIP_CONFIG, type MembershipConfig } from '../../lib/membership/config.js'
import type { MemberRecord, MemberState, MembershipMessage } from '../../lib/membership/messages.js'
import { Swim, type LocalMember, type MessageSender, type SwimEffect } from '../../lib/membership/swim.js'
import { createRandom } from '../../lib/runtime/random.js'

/** Shared helpers for membership unit tests: node n has id 000…n and address 10.0.0.n. */

export function nodeId(n: number): NodeId {
  return asNodeId(n.toString(16).padStart(16, '0'))
}

export function localMember(n: number): LocalMember {
  return { id: nodeId(n), name: `node-${n}`, peer: `10.0.0.${n}:7946`, api: `10.0.0.${n}:7070` }
}

export function sender(n: number): MessageSender {
  return { id: nodeId(n), peer: localMember(n).peer }
}

export function memberRecord(n: number, state: MemberState = 'alive', incarnation = 1, from?: number): MemberRecord {
  const record: MemberRecord = { ...localMember(n), incarnation, state }
  return from === undefined ? record : { ...record, from: nodeId(from) }
}

export function newSwim(n: number, options: { storedIncarnation?: number; config?: Partial<MembershipConfig>; seed?: number } = {}): Swim {
  return new Swim({
    local: localMember(n),
    storedIncarnation: options.storedIncarnation ?? 0,
    config: { ...DEFAULT_LAN_MEMBERSHIP_CONFIG, ...options.config },
    random: createRandom(options.seed ?? 1),
  })
}

/**
 * A started node that learnt members `others` (alive, incarnation 1) from a push-pull by the last
 * of them (so that one counts as heard from directly at time 0, the others do not).
 */
export function swimWithMembers(n: number, others: number[], options: Parameters<typeof newSwim>[1] = {}): Swim {
  const swim = newSwim(n, options)
  swim.join([], 0)
  swim.receive(sender(others[others.length - 1]!), { type: 'pushPull', body: { members: others.map(other => memberRecord(other)), join: false } }, 0)
  return swim
}

export type Sent = { to: string; message: MembershipMessage }

export function sent(effects: readonly SwimEffect[], type?: MembershipMessage['type']): Sent[] {
  const sends: Sent[] = []
  for (const effect of effects) {
    if (effect.kind === 'send' && (type === undefined || effect.message.type === type)) sends.push({ to: effect.to, message: effect.message })
  }
  return sends
}

export function ofKind<K extends SwimEffect['kind']>(effects: readonly SwimEffect[], kind: K): Array<Extract<SwimEffect, { kind: K }>> {
  return effects.filter((effect): effect is Extract<SwimEffect, { kind: K }> => effect.kind === kind)
}

/** Ticks at every due time up to `untilMs` (bounded), collecting the effects. */
export function runUntil(swim: Swim, untilMs: number, maxTicks = 100_000): SwimEffect[] {
  const effects: SwimEffect[] = []
  for (let i = 0; i < maxTicks; i++) {
    const due = swim.nextTickAtMs()
    if (due > untilMs) return effects
    effects.push(...swim.tick(due))
  }
  throw new Error(`more than ${maxTicks} ticks before ${untilMs} ms`)
}

/**
 * Ticks up to `untilMs` while the rest of the cluster answers every direct ping at once, except
 * the nodes in `silent` (a crashed node, say). Returns each step's time and effects.
 */
export function runAnswering(swim: Swim, untilMs: number, silent: ReadonlySet<number> = new Set(), maxTicks = 100_000): Array<{ atMs: number; effects: SwimEffect[] }> {
  const steps: Array<{ atMs: number; effects: SwimEffect[] }> = []
  for (let i = 0; i < maxTicks; i++) {
    const atMs = swim.nextTickAtMs()
    if (atMs > untilMs) return steps
    const effects = swim.tick(atMs)
    steps.push({ atMs, effects })
    for (const { to, message } of sent(effects, 'ping')) {
      const n = Number(to.split('.')[3]?.split(':')[0])
      if (silent.has(n) || message.type !== 'ping') continue
      steps.push({ atMs, effects: swim.receive(sender(n), { type: 'ack', body: { seq: message.body.seq, gossip: [] } }, atMs) })
    }
  }
  throw new Error(`more than ${maxTicks} ticks before ${untilMs} ms`)
}

/** Ticks until the node sends its next probe ping; returns it with the time it went out. */
export function nextPing(swim: Swim, maxTicks = 1000): { atMs: number; to: string; seq: number; target: NodeId; effects: SwimEffect[] } {
  for (let i = 0; i < maxTicks; i++) {
    const atMs = swim.nextTickAtMs()
    const effects = swim.tick(atMs)
    const ping = sent(effects, 'ping')[0]
    if (ping !== undefined && ping.message.type === 'ping') return { atMs, to: ping.to, seq: ping.message.body.seq, target: ping.message.body.target, effects }
  }
  throw new Error(`no probe within ${maxTicks} ticks`)
}

export function peerOf(n: number): string {
  return localMember(n).peer
}
