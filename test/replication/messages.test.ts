import { pack } from 'msgpackr'
import t from 'tap'
import { FrameCodec, MalformedFrameError } from '../../lib/codec/codec.js'
import { frameRegistry } from '../../lib/codec/frames.js'
import { asNodeId } from '../../lib/clock/version.js'
import type { ReplicaWriteBody, ReplicaWriteReplyBody, WireEntry } from '../../lib/replication/messages.js'
import { DEFAULT_TRANSPORT_LIMITS } from '../../lib/transport/limits.js'

const codec = new FrameCodec(frameRegistry, DEFAULT_TRANSPORT_LIMITS)
const node = asNodeId('00ff00ff12345678')
const other = asNodeId('abcdef0123456789')
const code = (name: string): number => frameRegistry.named(name).code

function roundTrip(body: ReplicaWriteBody): unknown {
  const [frame] = codec.decodeMessage(codec.encode('replicaWrite', 7, body))
  return frame?.body
}

t.test('replicaWrite entries of every shape survive the compact wire form', async t => {
  const entries: WireEntry[] = [
    { key: 'plain', value: Buffer.from('v'), hlc: 1_795_601_425_041_000, node },
    { key: 'gone', value: null, hlc: 2, node: other },
    { key: 'ttl', value: Buffer.alloc(0), hlc: 3, node, expiresAtMs: 1_795_601_500_000 },
    { key: 'strong', value: Buffer.from([1, 2]), hlc: 4, node, strong: true },
    { key: 'strong-ttl', value: Buffer.from([3]), hlc: 5, node: other, expiresAtMs: 9, strong: true },
    { key: 'é/🔑', value: null, hlc: 6, node, strong: true },
  ]
  t.same(roundTrip({ entries }), { entries })
  t.same(roundTrip({ entries: [] }), { entries: [] }, 'an empty batch')
})

t.test('a replicaWrite is an array of arrays with 8-byte node ids, not maps', async t => {
  const bytes = codec.encode('replicaWrite', 7, { entries: [{ key: 'k', value: Buffer.from('v'), hlc: 1, node }] })
  const mapForm = pack([code('replicaWrite'), 7, { entries: [{ key: 'k', value: Buffer.from('v'), hlc: 1, node }] }])
  t.ok(bytes.byteLength < mapForm.byteLength - 30, `${bytes.byteLength} bytes against ${mapForm.byteLength} as maps`)
  t.throws(() => codec.decodeMessage(mapForm), MalformedFrameError, 'the map form of protocol 1 is refused')
})

t.test('replicaWriteReply packs applied flags as bits and keeps strong indices', async t => {
  for (const body of [
    { applied: [] },
    { applied: [true] },
    { applied: [false, true, true, false, false, false, false, true, true] },
    { applied: Array.from({ length: 1024 }, (_, i) => i % 3 === 0), strong: [1, 1023] },
  ] as ReplicaWriteReplyBody[]) {
    const [frame] = codec.decodeMessage(codec.encodeResponse(9, { type: 'replicaWriteReply', body }))
    t.same(frame?.body, { type: 'replicaWriteReply', body }, `${body.applied.length} flags`)
  }
})

t.test('malformed compact replica frames are refused with a reason, never an exception of another kind', async t => {
  const write = code('replicaWrite')
  const nodeBytes = Buffer.from(node, 'hex')
  const bad: [string, unknown][] = [
    ['a map body', { entries: [] }],
    ['an entry that is a map', [{ key: 'k', value: null, hlc: 1, node }]],
    ['too few fields', [['k', null, 1]]],
    ['too many fields', [['k', null, 1, nodeBytes, null, true, 1]]],
    ['an empty key', [['', null, 1, nodeBytes]]],
    ['a hex node id', [['k', null, 1, node]]],
    ['a 7-byte node id', [['k', null, 1, nodeBytes.subarray(1)]]],
    ['a negative hlc', [['k', null, -1, nodeBytes]]],
    ['a string value', [['k', 'v', 1, nodeBytes]]],
    ['a strong flag that is false', [['k', null, 1, nodeBytes, null, false]]],
    ['a bad expiry', [['k', null, 1, nodeBytes, 'soon']]],
    ['too many entries', Array.from({ length: 1025 }, () => ['k', null, 1, nodeBytes])],
  ]
  for (const [what, body] of bad) {
    t.throws(() => codec.decodeMessage(pack([write, 7, body])), MalformedFrameError, what)
  }
  const response = code('response')
  const reply = code('replicaWriteReply')
  for (const [what, body] of [
    ['bits short of the count', [9, Buffer.alloc(1)]],
    ['a count above the batch bound', [1025, Buffer.alloc(129)]],
    ['booleans instead of bits', [2, [true, false]]],
    ['a map', { applied: [true] }],
    ['a strong index past the bound', [1, Buffer.alloc(1), [1024]]],
  ] as [string, unknown][]) {
    t.throws(() => codec.decodeMessage(pack([response, 7, [reply, body]])), MalformedFrameError, what)
  }
})
