import t, { type Test } from 'tap'
import { readFileSync } from 'node:fs'
import { pack } from 'msgpackr'
import { FrameCodec, FrameTooLargeError, MalformedFrameError, type MalformedReason } from '../../lib/codec/codec.js'
import { FRAME_TYPES, FrameRegistry, frameRegistry } from '../../lib/codec/frames.js'
import { NONCE_BYTES, PROOF_BYTES, PROTOCOL_VERSION } from '../../lib/codec/transport-frames.js'
import { identity, testRegistry } from '../transport/fixtures.js'

const limits = { maxFrameBytes: 64 * 1024, maxFramesPerMessage: 8 }
const codec = new FrameCodec(testRegistry, limits)
const node = identity(1)
const member = { id: node.id, name: node.name, peer: node.peer, api: node.api, incarnation: 3, state: 'alive' }

/** A valid body for every frame type of the daemon (the test types have their own below). */
const SAMPLE_BODIES: Record<string, unknown> = {
  hello: { protocol: PROTOCOL_VERSION, cluster: 'hearsay', ...node, nonce: new Uint8Array(NONCE_BYTES).fill(7) },
  welcome: { protocol: PROTOCOL_VERSION, cluster: 'hearsay', ...node, nonce: new Uint8Array(NONCE_BYTES).fill(8), proof: new Uint8Array(PROOF_BYTES).fill(9) },
  proof: { proof: new Uint8Array(0) },
  refuse: { code: 'auth', reason: 'wrong cluster secret' },
  error: { code: 'handler', message: 'it broke' },
  ping: { seq: 1, target: node.id, from: member, gossip: [member] },
  ack: { seq: 1, gossip: [] },
  pingReq: { seq: 2, target: node.id, targetPeer: node.peer },
  nack: { seq: 2 },
  pushPull: { members: [member], join: true },
  pushPullReply: { members: [member] },
  gossip: { gossip: [member] },
  replicaWrite: { entries: [{ key: 'k', value: new Uint8Array([0, 255]), hlc: 1_795_601_425_041_000, node: node.id, expiresAtMs: 1_795_601_500_000 }, { key: 'gone', value: null, hlc: 1_795_601_425_041_001, node: node.id }] },
  replicaWriteReply: { applied: [true, false] },
  replicaRead: { key: 'k' },
  replicaReadReply: { entry: null },
  replicaScan: { prefix: 'p/', after: 'p/1', limit: 10 },
  replicaScanReply: { entries: [{ key: 'p/2', value: new Uint8Array([1]), hlc: 1, node: node.id }], more: false },
  syncRoots: { partitions: [0, 7, 255] },
  syncRootsReply: { roots: Buffer.alloc(24, 3) },
  syncNodes: { partition: 7, depth: 2, parents: [0, 15], salt: 123456789, width: 4 },
  syncNodesReply: { digests: Buffer.alloc(2 * 16 * 8, 4) },
  syncLeaves: { partition: 7, buckets: [1, 4095], keys: ['a', 'b'], versions: Buffer.alloc(32, 5) },
  syncLeavesReply: { records: [['a', null, 2, Buffer.from(node.id, 'hex')]], older: [1], missing: [], superseded: [0], done: 2 },
  syncPush: { entries: [['b', Buffer.from([2]), 3, Buffer.from(node.id, 'hex'), 1_795_601_500_000]] },
  syncPushReply: { applied: [true] },
  clockProbe: { wallMs: 1_795_601_425_041 },
  clockProbeReply: { wallMs: 1_795_601_425_052 },
  watchPoll: { waitMs: 5000, maxBytes: 1024, subscriptions: [{ id: 1, prefix: 'cfg/', partitions: [0, 3], fromMs: 1_795_601_425_000 }, { id: 2, prefix: '', partitions: [7], after: [1_795_601_425_001, 42] }] },
  watchPollReply: { results: [{ id: 1, events: [{ key: 'cfg/a', value: new Uint8Array([1]), hlc: 1_795_601_425_000_001, node: '0123456789abcdef' }], next: [1_795_601_425_001, 43] }, { id: 2, events: [], lostHorizonMs: 1_795_601_000_000 }] },
  paxosPrepare: { key: 'lock', ballot: { counter: 1_795_601_425_041_000, node: 'aaaaaaaaaaaaaaaa' }, set: ['aaaaaaaaaaaaaaaa', 'bbbbbbbbbbbbbbbb', 'cccccccccccccccc'] },
  paxosPromise: {
    ok: true,
    accepted: { ballot: { counter: 1_795_601_425_041_000, node: 'aaaaaaaaaaaaaaaa' }, entry: { key: 'lock', value: new Uint8Array([1]), hlc: 1_795_601_425_040_000, node: 'bbbbbbbbbbbbbbbb', strong: true }, history: [{ hlc: 1_795_601_425_040_000, node: 'bbbbbbbbbbbbbbbb' }] },
    stored: null,
  },
  paxosAccept: { ballot: { counter: 1_795_601_425_041_001, node: 'aaaaaaaaaaaaaaaa' }, entry: { key: 'lock', value: null, hlc: 1_795_601_425_041_001, node: 'aaaaaaaaaaaaaaaa', strong: true }, history: [], set: ['aaaaaaaaaaaaaaaa', 'bbbbbbbbbbbbbbbb', 'cccccccccccccccc'] },
  paxosAccepted: { ok: false, promised: { counter: 1_795_601_425_041_002, node: 'cccccccccccccccc' } },
  paxosCatchUp: { partitions: [{ partition: 7, set: ['aaaaaaaaaaaaaaaa', 'bbbbbbbbbbbbbbbb', 'dddddddddddddddd'] }], after: null, maxBytes: 1_048_576 },
  paxosCatchUpReply: { generation: 3, matched: [7], entries: [{ key: 'lock', state: new Uint8Array([0x99, 1, 2]) }], next: 'lock' },
  paxosAcceptMany: {
    accepts: [{ ballot: { counter: 1_795_601_425_041_003, node: 'aaaaaaaaaaaaaaaa' }, entry: { key: 'lock', value: new Uint8Array([1]), hlc: 1_795_601_425_041_003, node: 'aaaaaaaaaaaaaaaa', strong: true }, history: [{ hlc: 1_795_601_425_041_003, node: 'aaaaaaaaaaaaaaaa' }], set: ['aaaaaaaaaaaaaaaa', 'bbbbbbbbbbbbbbbb', 'cccccccccccccccc'] }],
    commits: [{ key: 'lock', ballot: { counter: 1_795_601_425_041_001, node: 'aaaaaaaaaaaaaaaa' }, at: 0 }],
  },
  paxosAcceptManyReply: { answers: [{ ok: true }, { ok: false, refused: 'placement mismatch' }], missing: [0] },
  nodeSummary: {},
  nodeSummaryReply: {
    id: node.id, name: 'alpha', version: '0.1.0', status: 'ok', uptimeSeconds: 5, keys: 1, storeBytes: 4096, hintsPending: 0, digest: '0123456789abcdef',
    members: [{ id: node.id, name: 'alpha', state: 'alive', incarnation: 1, rttMs: null }], samples: [{ atMs: 1, opsPerSecond: 0.5, p99Ms: 1.2 }],
    hintedPartitions: [], syncingPartitions: [7],
  },
  lifecycleGossip: {
    records: [
      { kind: 'removed', id: 'cccccccccccccccc', name: 'gamma', by: node.id, byName: 'alpha', atMs: 1_795_601_425_041 },
      { kind: 'leaving', id: 'dddddddddddddddd', name: 'delta', startedAtMs: 1_795_601_425_041, active: true },
    ],
    reply: true,
  },
  lifecycleProgress: {},
  lifecycleProgressReply: { repairs: [{ id: 'cccccccccccccccc', gained: 12, pending: 3, keysMoved: 400, bytesMoved: 51_200 }] },
}

function requestIdFor(kind: string): number {
  return kind === 'request' || kind === 'envelope' ? 41 : 0
}

function expectMalformed(t: Test, bytes: Uint8Array, reason: MalformedReason, detail: RegExp, what: string): void {
  let caught: unknown
  try {
    codec.decodeMessage(bytes)
  } catch (error) {
    caught = error
  }
  t.ok(caught instanceof MalformedFrameError, `${what}: rejected`)
  t.equal((caught as MalformedFrameError).reason, reason, `${what}: reason`)
  t.match((caught as Error).message, detail, `${what}: detail`)
}

t.test('every frame type of the daemon round-trips through encode and decode', async t => {
  for (const type of FRAME_TYPES) {
    if (type.name === 'response') continue
    const body = SAMPLE_BODIES[type.name]
    t.ok(body !== undefined, `a sample body exists for ${type.name}`)
    if (type.kind === 'reply') {
      // A reply travels only inside a response frame.
      const [response] = codec.decodeMessage(codec.encodeResponse(41, { type: type.name, body }))
      t.same(response?.body, { type: type.name, body }, `${type.name} survives inside a response`)
      continue
    }
    const [frame] = codec.decodeMessage(codec.encode(type.name, requestIdFor(type.kind), body))
    t.equal(frame?.type.name, type.name, `${type.name} decodes as itself`)
    t.equal(frame?.requestId, requestIdFor(type.kind))
    t.same(frame?.body, body, `${type.name} body survives`)
  }
})

t.test('a response carries a reply type and its validated body', async t => {
  const [frame] = codec.decodeMessage(codec.encodeResponse(9, { type: 'test.echoed', body: { text: 'hi', n: 1 } }))
  t.equal(frame?.type.name, 'response')
  t.equal(frame?.requestId, 9)
  t.same(frame?.body, { type: 'test.echoed', body: { text: 'hi', n: 1 } })
  t.throws(() => codec.encodeResponse(9, { type: 'test.note', body: {} }), TypeError, 'only reply types answer requests')
})

t.test('a response whose reply code is a hostile map is malformed, not an internal error (issue 17)', async t => {
  const responseCode = testRegistry.named('response').code
  for (const code of [{ toString: 1 }, { toString: 'x', valueOf: 2 }, null, 'ack', [1]]) {
    const bytes = pack([responseCode, 7, [code, {}]])
    t.throws(() => codec.decodeMessage(bytes), MalformedFrameError, `reply code ${JSON.stringify(code)}`)
  }
})

t.test('byte strings stay bytes and integers stay numbers', async t => {
  const [hello] = codec.decodeMessage(codec.encode('hello', 0, SAMPLE_BODIES.hello))
  t.ok((hello?.body as { nonce: unknown }).nonce instanceof Uint8Array)
  // requestId written as a MessagePack uint64 (0xcf) by some other encoder.
  const bytes = Buffer.from([0x93, 0x70, 0xcf, 0, 0, 0, 0, 0, 0, 0, 5, 0x82, 0xa4, ...Buffer.from('text'), 0xa0, 0xa1, 0x6e, 0xcf, 0, 0, 0, 1, 0, 0, 0, 0])
  const [frame] = codec.decodeMessage(bytes)
  t.equal(frame?.requestId, 5)
  t.equal(typeof (frame?.body as { n: unknown }).n, 'number', 'a uint64 decodes to a number, not a BigInt')
  t.equal((frame?.body as { n: number }).n, 2 ** 32)
})

t.test('frames queued together travel as one message and decode in order', async t => {
  const frames = [
    codec.encode('test.note', 0, { text: 'a', n: 1 }),
    codec.encode('test.echo', 7, { text: 'b', n: 2 }),
    codec.encodeError(8, { code: 'unhandled', message: 'no handler' }),
  ]
  const decoded = codec.decodeMessage(codec.joinMessage(frames))
  t.same(decoded.map(frame => [frame.type.name, frame.requestId]), [['test.note', 0], ['test.echo', 7], ['error', 8]])
  t.equal(codec.joinMessage([frames[0]!]), frames[0], 'a single frame is its own message')
})

t.test('malformed messages are rejected with a reason', async t => {
  const ok = { text: 'x', n: 1 }
  expectMalformed(t, new Uint8Array(0), 'empty', /empty/, 'an empty message')
  expectMalformed(t, Buffer.from([0xc1, 0xc1, 0xc1]), 'bad-frame', /array of 3/, 'the never-used MessagePack byte')
  expectMalformed(t, Buffer.from([0xd9, 0x10, 0x41]), 'undecodable', /not MessagePack/, 'a string running past the end')
  expectMalformed(t, Buffer.from([0x93, 0x70]), 'undecodable', /not MessagePack/, 'a truncated frame')
  expectMalformed(t, pack([0x72, 0]), 'bad-frame', /array of 3/, 'wrong arity (2)')
  expectMalformed(t, pack([0x72, 0, ok, 1]), 'bad-frame', /array of 3/, 'wrong arity (4)')
  expectMalformed(t, pack({ type: 0x72 }), 'bad-frame', /array of 3/, 'a map instead of an array')
  expectMalformed(t, pack([0x7f, 0, ok]), 'unknown-type', /unknown frame type code 127/, 'an unknown type code')
  expectMalformed(t, pack(['test.note', 0, ok]), 'bad-frame', /not a non-negative integer/, 'a type name instead of a code')
  expectMalformed(t, pack([0x72, -1, ok]), 'bad-frame', /requestId/, 'a negative requestId')
  expectMalformed(t, pack([0x72, 1.5, ok]), 'bad-frame', /requestId/, 'a fractional requestId')
  expectMalformed(t, pack([0x72, 2 ** 53, ok]), 'bad-frame', /requestId/, 'an unsafe requestId')
  expectMalformed(t, pack([0x72, 3, ok]), 'bad-frame', /oneway frame test.note with requestId 3/, 'a one-way frame with a requestId')
  expectMalformed(t, pack([0x70, 0, ok]), 'bad-frame', /request frame test.echo with requestId 0/, 'a request without a requestId')
  expectMalformed(t, pack([0x71, 4, ok]), 'bad-frame', /reply test.echoed outside a response/, 'a reply outside a response')
  expectMalformed(t, pack([0x05, 4, [0x72, ok]]), 'bad-frame', /not a reply type/, 'a response carrying a one-way type')
  expectMalformed(t, pack([0x05, 4, { type: 0x71 }]), 'bad-body', /\[replyType, body\]/, 'a response body of the wrong shape')
  expectMalformed(t, pack([0x72, 0, { text: 5, n: 1 }]), 'bad-body', /test.note.text is not a string/, 'a field of the wrong type')
  expectMalformed(t, pack([0x72, 0, { text: 'x', n: -1 }]), 'bad-body', /test.note.n/, 'a negative count')
  expectMalformed(t, pack([0x72, 0, 'text']), 'bad-body', /not a map/, 'a body that is not a map')
  expectMalformed(t, pack([0x01, 0, { ...SAMPLE_BODIES.hello as object, name: 'n'.repeat(256) }]), 'bad-body', /hello.name has 256 characters, more than 255/, 'an oversized string')
  expectMalformed(t, pack([0x01, 0, { ...SAMPLE_BODIES.hello as object, nonce: new Uint8Array(3) }]), 'bad-body', /hello.nonce/, 'a short nonce')
  expectMalformed(t, pack([0x01, 0, { ...SAMPLE_BODIES.hello as object, peer: 'nowhere' }]), 'bad-body', /hello.peer is not a host:port/, 'a bad address')
  expectMalformed(t, pack([0x04, 0, { code: 'bored', reason: '' }]), 'bad-body', /refuse.code/, 'an unknown refusal code')
  expectMalformed(t, pack([0x10, 0, { seq: 'one', target: node.id, gossip: [] }]), 'bad-body', /bad ping body/, 'a membership body failing its validator')
})

t.test('message bounds: frame count and size', async t => {
  const note = codec.encode('test.note', 0, { text: 'x', n: 1 })
  t.equal(codec.decodeMessage(codec.joinMessage(Array(limits.maxFramesPerMessage).fill(note))).length, limits.maxFramesPerMessage)
  expectMalformed(t, codec.joinMessage(Array(limits.maxFramesPerMessage + 1).fill(note)), 'too-many-frames', /more than 8 frames/, 'one frame too many')
  expectMalformed(t, new Uint8Array(limits.maxFrameBytes + 1), 'oversized', /exceeds maxFrameBytes/, 'a message over the size limit')
  t.throws(() => codec.encode('test.note', 0, { text: 'x'.repeat(limits.maxFrameBytes), n: 1 }), FrameTooLargeError, 'encoding refuses an oversized frame')
})

t.test('encoding rejects programming errors', async t => {
  t.throws(() => codec.encode('no.such.type', 0, {}), TypeError)
  t.throws(() => codec.encode('test.note', 1, {}), TypeError, 'a one-way frame takes requestId 0')
  t.throws(() => codec.encode('test.echo', 0, {}), TypeError, 'a request needs a requestId')
  t.throws(() => codec.encode('test.echoed', 1, {}), TypeError, 'a reply goes through encodeResponse')
})

t.test('the registry refuses duplicate or out-of-range codes and names', async t => {
  const validate = (body: unknown) => body
  t.throws(() => new FrameRegistry([...FRAME_TYPES, { code: 0x01, name: 'again', kind: 'oneway', validate }]), /code 1 is used twice/)
  t.throws(() => new FrameRegistry([...FRAME_TYPES, { code: 0x7e, name: 'ping', kind: 'oneway', validate }]), /name ping is used twice/)
  t.throws(() => new FrameRegistry([...FRAME_TYPES, { code: 128, name: 'big', kind: 'oneway', validate }]), RangeError)
  t.throws(() => new FrameRegistry([]), /lacks the response envelope/)
  t.equal([...frameRegistry.types()].length, FRAME_TYPES.length)
})

t.test('docs/protocol.md lists every frame type with its code and kind', async t => {
  const doc = readFileSync(new URL('../../docs/protocol.md', import.meta.url), 'utf8')
  for (const type of FRAME_TYPES) {
    const row = `| 0x${type.code.toString(16).padStart(2, '0')} | \`${type.name}\` | ${type.kind} |`
    t.ok(doc.includes(row), `documented: ${row}`)
  }
})
