import { pack, unpack } from 'msgpackr'
import t from 'tap'
import {
  estimateWireBytes, MAX_GOSSIP_PER_MESSAGE, MEMBERSHIP_MESSAGE_TYPES, membershipBodyValidators,
  validateMembershipMessage, type MembershipMessage,
} from '../../lib/membership/messages.js'
import { memberRecord, nodeId } from './fixture.js'

const samples: MembershipMessage[] = [
  { type: 'ping', body: { seq: 1, target: nodeId(2), from: memberRecord(1), gossip: [memberRecord(3, 'suspect', 4, 1)] } },
  { type: 'ack', body: { seq: 1, gossip: [] } },
  { type: 'pingReq', body: { seq: 7, target: nodeId(2), targetPeer: '[fe80::1]:7946' } },
  { type: 'nack', body: { seq: 7 } },
  { type: 'pushPull', body: { members: [memberRecord(1), memberRecord(2, 'left', 3)], join: true } },
  { type: 'pushPullReply', body: { members: [memberRecord(1, 'dead', 9, 2)] } },
  { type: 'gossip', body: { gossip: [memberRecord(4)] } },
]

t.test('every message type survives encoding and validation unchanged', async t => {
  t.same(new Set(samples.map(sample => sample.type)), new Set(MEMBERSHIP_MESSAGE_TYPES), 'one sample per type')
  for (const sample of samples) {
    const decoded = unpack(pack(sample)) as { type: string; body: unknown }
    t.same(validateMembershipMessage(decoded.type, decoded.body), sample, sample.type)
  }
})

t.test('malformed bodies are refused with a one-line reason', async t => {
  const good = memberRecord(1)
  const cases: Array<[string, unknown, RegExp]> = [
    ['ping', null, /ping is not an object/],
    ['ping', { seq: -1, target: nodeId(1), gossip: [] }, /ping.seq/],
    ['ping', { seq: 1.5, target: nodeId(1), gossip: [] }, /ping.seq/],
    ['ping', { seq: 1, target: 'NOT-AN-ID', gossip: [] }, /ping.target is not a node id/],
    ['ack', { seq: 1, gossip: 'x' }, /ack.gossip is not an array/],
    ['ack', { seq: 1, gossip: Array.from({ length: MAX_GOSSIP_PER_MESSAGE + 1 }, () => good) }, /more than 64/],
    ['gossip', { gossip: [{ ...good, state: 'zombie' }] }, /gossip.gossip\[0\].state is not one of alive, suspect, dead, left/],
    ['gossip', { gossip: [{ ...good, incarnation: 2 ** 53 }] }, /incarnation is not an integer in \[0, 1099511627776\]/],
    ['gossip', { gossip: [{ ...good, incarnation: 2 ** 40 + 1 }] }, /incarnation is not an integer in \[0, 1099511627776\]/],
    ['gossip', { gossip: [{ ...good, name: 'x'.repeat(256) }] }, /name is not a string of 1 to 255/],
    ['gossip', { gossip: [{ ...good, name: '' }] }, /name/],
    ['gossip', { gossip: [{ ...good, peer: '0.0.0.0' }] }, /peer is not a host:port address/],
    ['gossip', { gossip: [{ ...good, api: 42 }] }, /api is not a host:port address/],
    ['gossip', { gossip: [{ ...good, from: 'someone' }] }, /from is not a node id/],
    ['pingReq', { seq: 1, target: nodeId(1), targetPeer: 'h:99999' }, /targetPeer/],
    ['pushPull', { members: [good] }, /pushPull.join is not a boolean/],
    ['pushPullReply', [], /pushPullReply is not an object/],
    ['nack', { seq: '1' }, /nack.seq/],
  ]
  for (const [type, body, reason] of cases) {
    t.throws(() => validateMembershipMessage(type, body), reason, `${type}: ${reason.source}`)
    try {
      validateMembershipMessage(type, body)
    } catch (error) {
      t.notMatch((error as Error).message, /\n/, 'one line')
    }
  }
})

t.test('an unknown message type is refused', async t => {
  t.throws(() => validateMembershipMessage('hello', {}), /unknown membership message type "hello"/)
  t.throws(() => validateMembershipMessage('__proto__', {}), /unknown membership message type/)
})

t.test('validators drop unknown fields instead of passing them on', async t => {
  const body = membershipBodyValidators.nack({ seq: 3, extra: 'x'.repeat(1000) })
  t.same(body, { seq: 3 })
})

t.test('the size estimate is within a few bytes of the real encoding', async t => {
  const values: unknown[] = [
    ...samples,
    memberRecord(1),
    { ...memberRecord(2), name: 'ünïcødé-名前-😀' },
    { seq: 2 ** 40, n: -5, f: 1.5, big: 70_000, neg: -40_000, ok: true, nothing: null },
    { members: Array.from({ length: 40 }, (_, i) => memberRecord(i + 1)) },
  ]
  for (const value of values) {
    const actual = pack(value).length
    const estimate = estimateWireBytes(value)
    t.ok(Math.abs(estimate - actual) <= 2 + 2 * countObjects(value), `estimate ${estimate} vs ${actual}`)
  }
})

function countObjects(value: unknown): number {
  if (Array.isArray(value)) return value.reduce((sum: number, item) => sum + countObjects(item), 0)
  if (typeof value === 'object' && value !== null) return 1 + Object.values(value).reduce((sum: number, item) => sum + countObjects(item), 0)
  return 0
}
