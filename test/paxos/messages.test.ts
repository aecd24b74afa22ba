import t, { type Test } from 'tap'
import { Packr, pack } from 'msgpackr'
import { asNodeId, type NodeId, type Version } from '../../lib/clock/version.js'
import { FrameCodec, MalformedFrameError } from '../../lib/codec/codec.js'
import { frameRegistry } from '../../lib/codec/frames.js'
import { MalformedBodyError } from '../../lib/codec/validate.js'
import { MAX_HISTORY } from '../../lib/paxos/acceptor-state.js'
import {
  MAX_ACCEPTS_PER_BATCH, MAX_COMMITS_PER_BATCH, MAX_REASON_CHARS, MAX_WIRE_SET_MEMBERS, PAXOS_ACCEPT, PAXOS_ACCEPT_MANY, PAXOS_ACCEPT_MANY_REPLY,
  PAXOS_ACCEPTED, PAXOS_PREPARE, PAXOS_PROMISE, encodeAccept, encodeAcceptMany, encodeAcceptManyReply, encodePrepare, encodePromise,
  validateAccept, validateAcceptMany, validateAcceptManyReply, validateAccepted, validatePrepare, validatePromise,
  type AcceptAnswer, type AcceptBody, type AcceptManyBody, type AcceptManyReplyBody, type PrepareBody, type PromiseBody,
} from '../../lib/paxos/messages.js'
import { DEFAULT_TRANSPORT_LIMITS } from '../../lib/transport/limits.js'
import { createRandom } from '../../lib/runtime/random.js'

/** The compact paxos frames of peer protocol 3 (docs/protocol.md "Linearizable operations"). */

const codec = new FrameCodec(frameRegistry, DEFAULT_TRANSPORT_LIMITS)
// As the codec decodes: a 64-bit integer becomes a number, never a BigInt.
const packr = new Packr({ useRecords: false, int64AsType: 'number' })
const a = asNodeId('aaaaaaaaaaaaaaaa')
const b = asNodeId('00ff00ff12345678')
const c = asNodeId('fedcba9876543210')
const set = [a, b, c]
const TICK = 1_795_601_425_041_000
const history = (n: number, node: NodeId = a): Version[] => Array.from({ length: n }, (_, i) => ({ hlc: TICK + i, node: i % 3 === 1 ? b : node }))
const entry = (key: string, hlc = TICK) => ({ key, value: Buffer.from('v'), hlc, node: a, strong: true as const })
const accept = (key: string, counter: number, acceptSet: readonly NodeId[] | undefined = set): AcceptBody => ({
  ballot: { counter, node: a }, entry: entry(key, counter), history: history(3), ...(acceptSet === undefined ? {} : { set: acceptSet }),
})

/** typed body → the frame's encode → MessagePack → the frame's validator, as a peer sees it. */
function overTheWire(tt: Test, name: string, body: unknown): unknown {
  const type = frameRegistry.named(name)
  tt.ok(type.encode !== undefined, `${name} has a compact form`)
  return type.validate(packr.unpack(packr.pack(type.encode?.(body) ?? body)))
}

/** The same through the frame codec: a request frame, or a reply inside a response. */
function throughCodec(name: string, body: unknown): unknown {
  const type = frameRegistry.named(name)
  if (type.kind === 'reply') {
    const [frame] = codec.decodeMessage(codec.encodeResponse(3, { type: name, body }))
    return (frame?.body as { body: unknown }).body
  }
  const [frame] = codec.decodeMessage(codec.encode(name, 3, body))
  return frame?.body
}

function roundTrips(tt: Test, name: string, body: unknown, what: string): void {
  tt.same(overTheWire(tt, name, body), body, `${name}: ${what}`)
  tt.same(throughCodec(name, body), body, `${name} through the codec: ${what}`)
}

const refusals: AcceptAnswer[] = [
  { ok: false, promised: { counter: TICK + 9, node: c } },
  { ok: false, refused: 'placement mismatch: this node sees the set [a, b, d]' },
]

t.test('every compact paxos frame reads back as the typed body it was made from', async t => {
  for (const body of [
    { key: 'lock', ballot: { counter: TICK, node: a }, set },
    { key: 'é/🔑', ballot: { counter: 0, node: c }, set: [] },
    { key: 'old', ballot: { counter: 1, node: b } },
  ] as PrepareBody[]) roundTrips(t, PAXOS_PREPARE, body, JSON.stringify(body.key))

  for (const [what, body] of [
    ['accepted and stored', { ok: true, accepted: { ballot: { counter: TICK, node: b }, entry: entry('lock'), history: history(MAX_HISTORY) }, stored: { key: 'lock', value: null, hlc: 5, node: c, expiresAtMs: 9 } }],
    ['nothing accepted', { ok: true, accepted: null, stored: null }],
    ['an empty history', { ok: true, accepted: { ballot: { counter: TICK, node: b }, entry: entry('lock'), history: [] }, stored: null }],
    ['promised', refusals[0]],
    ['refused', refusals[1]],
  ] as [string, PromiseBody][]) roundTrips(t, PAXOS_PROMISE, body, what)

  roundTrips(t, PAXOS_ACCEPT, accept('lock', TICK), 'with a set')
  roundTrips(t, PAXOS_ACCEPT, accept('lock', TICK, undefined), 'without a set')
  roundTrips(t, PAXOS_ACCEPT, { ...accept('lock', TICK), history: [{ hlc: Number.MAX_SAFE_INTEGER, node: c }, { hlc: 0, node: b }] }, 'the largest and smallest hlc')
  for (const answer of [{ ok: true }, ...refusals] as AcceptAnswer[]) roundTrips(t, PAXOS_ACCEPTED, answer, JSON.stringify(answer))

  const other = [b, c, a]
  for (const [what, body] of [
    ['empty', { accepts: [], commits: [] }],
    ['accepts of several sets and none', {
      accepts: [accept('k1', TICK), accept('k2', TICK + 1, [...set]), accept('k3', TICK + 2, other), accept('k4', TICK + 3, undefined), accept('k5', TICK + 4, [...other])],
      commits: [{ key: 'k0', ballot: { counter: TICK - 1, node: a }, at: 0 }, { key: 'k9', ballot: { counter: TICK - 2, node: b }, at: 3 }],
    }],
    ['the most accepts and commits', {
      accepts: Array.from({ length: MAX_ACCEPTS_PER_BATCH }, (_, i) => accept(`k${i}`, TICK + i)),
      commits: Array.from({ length: MAX_COMMITS_PER_BATCH }, (_, i) => ({ key: `k${i}`, ballot: { counter: TICK + i, node: c }, at: i % (MAX_ACCEPTS_PER_BATCH + 1) })),
    }],
  ] as [string, AcceptManyBody][]) roundTrips(t, PAXOS_ACCEPT_MANY, body, what)

  for (const [what, body] of [
    ['empty', { answers: [], missing: [] }],
    ['all ok', { answers: [{ ok: true }, { ok: true }], missing: [1, 4095] }],
    ['refusals among them', { answers: [refusals[0], { ok: true }, refusals[1], { ok: true }, refusals[0]], missing: [] }],
    ['the most answers', { answers: Array.from({ length: MAX_ACCEPTS_PER_BATCH }, (_, i) => i % 2 === 0 ? { ok: true } : refusals[i % 4 === 1 ? 0 : 1]), missing: [0] }],
  ] as [string, AcceptManyReplyBody][]) roundTrips(t, PAXOS_ACCEPT_MANY_REPLY, body, what)
})

t.test('a batch names each acceptor set once, however many accepts carry it', async t => {
  const body: AcceptManyBody = { accepts: [accept('k1', TICK), accept('k2', TICK + 1, [...set]), accept('k3', TICK + 2, [c, b, a]), accept('k4', TICK + 3, [...set])], commits: [] }
  const [sets, accepts] = encodeAcceptMany(body) as [Uint8Array[], unknown[][]]
  t.equal(sets.length, 2, 'two distinct sets')
  t.same(accepts.map((fields) => fields[4]), [0, 0, 1, 0], 'accepts refer to them by index')
  const back = validateAcceptMany(packr.unpack(packr.pack(encodeAcceptMany(body))))
  t.same(back.accepts[3]?.set, set)

  // Past 16 distinct sets the encoder looks them up by members rather than one by one.
  const many = Array.from({ length: 40 }, (_, i) => [asNodeId(i.toString(16).padStart(16, '0')), a])
  const wide: AcceptManyBody = { accepts: Array.from({ length: 120 }, (_, i) => accept(`w${i}`, TICK + i, [...(many[(i * 7) % 40] as NodeId[])])), commits: [] }
  const [wideSets, wideAccepts] = encodeAcceptMany(wide) as [Uint8Array[], unknown[][]]
  t.equal(wideSets.length, 40, 'forty distinct sets, each once')
  t.same(wideAccepts.slice(40, 43).map((fields) => fields[4]), wideAccepts.slice(0, 3).map((fields) => fields[4]), 'a set seen again gets its first index')
  t.same(validateAcceptMany(packr.unpack(packr.pack(encodeAcceptMany(wide)))), wide)
})

t.test('a set array changed in place after it was sent goes out with its new members', async t => {
  const row: NodeId[] = [a, b, c]
  const first = validatePrepare(packr.unpack(packr.pack(encodePrepare({ key: 'k', ballot: { counter: 1, node: a }, set: row }))))
  row[1] = asNodeId('0123456789abcdef')
  const second = validatePrepare(packr.unpack(packr.pack(encodePrepare({ key: 'k', ballot: { counter: 1, node: a }, set: row }))))
  t.same(first.set, [a, b, c])
  t.same(second.set, [a, '0123456789abcdef', c], 'not the bytes encoded for the array before')
})

t.test('the compact accept batch is far smaller than the same body as maps', async t => {
  const body: AcceptManyBody = { accepts: Array.from({ length: 32 }, (_, i) => ({ ...accept(`bench/k${i}`, TICK + i), history: history(MAX_HISTORY) })), commits: Array.from({ length: 32 }, (_, i) => ({ key: `bench/k${i}`, ballot: { counter: TICK + i, node: a }, at: 0 })) }
  const compact = pack(encodeAcceptMany(body)).byteLength
  const maps = pack(body).byteLength
  t.ok(compact < maps * 0.5, `${compact} bytes compact against ${maps} as maps`)
  t.throws(() => validateAcceptMany(packr.unpack(packr.pack(body))), MalformedBodyError, 'the map form of protocol 2 is refused')
  t.throws(() => validateAcceptManyReply({ answers: [{ ok: true }], missing: [] }), MalformedBodyError, 'so is its reply')
})

const nodeBytes = Buffer.from(a, 'hex')
const entryFields = ['k', null, 5, nodeBytes, null, true]
const historyOf = (n: number): Buffer => Buffer.concat(Array.from({ length: n }, (_, i) => Buffer.concat([Buffer.from([0, 0x1f, 0xff, 0xff, 0, 0, 0, i]), nodeBytes])))
const acceptFields = (overrides: Record<number, unknown> = {}): unknown[] => Object.assign([TICK, nodeBytes, entryFields, historyOf(2), 0], overrides)
const batch = (accepts: unknown[], commits: unknown[] = [], sets: unknown[] = [Buffer.concat([nodeBytes, nodeBytes, nodeBytes])]): unknown[] => [sets, accepts, commits]
const unsafeHistory = Buffer.concat([Buffer.from([0x00, 0x20, 0, 0, 0, 0, 0, 0]), nodeBytes])

t.test('malformed compact paxosAcceptMany bodies are refused with a reason naming the field', async t => {
  const cases: [string, unknown, RegExp][] = [
    ['a map body', { accepts: [], commits: [] }, /^paxosAcceptMany is not \[sets, accepts, commits\]/],
    ['a missing part', [[], []], /^paxosAcceptMany is not \[sets, accepts, commits\]/],
    ['sets that are not an array', ['x', [], []], /paxosAcceptMany.sets is not an array/],
    ['a set of 7 bytes', batch([acceptFields()], [], [Buffer.alloc(7)]), /paxosAcceptMany.sets\[0\] has 7 bytes, not a multiple of 8/],
    ['a set of hex node ids', batch([acceptFields()], [], [[a, b]]), /paxosAcceptMany.sets\[0\] is not a byte string/],
    ['a set of 65 members', batch([acceptFields()], [], [Buffer.alloc(8 * (MAX_WIRE_SET_MEMBERS + 1))]), /paxosAcceptMany.sets\[0\] has 520 bytes, more than 64 node ids/],
    ['too many sets', batch([], [], Array.from({ length: MAX_ACCEPTS_PER_BATCH + 1 }, () => nodeBytes)), /paxosAcceptMany.sets has 1025 entries, more than 1024/],
    ['a set index out of range', batch([acceptFields({ 4: 1 })]), /paxosAcceptMany.accepts\[0\].set is index 1, but the batch lists 1 sets/],
    ['a set index into an empty table', batch([acceptFields({ 4: 0 })], [], []), /paxosAcceptMany.accepts\[0\].set is index 0, but the batch lists 0 sets/],
    ['a negative set index', batch([acceptFields({ 4: -1 })]), /paxosAcceptMany.accepts\[0\].set is not a non-negative integer/],
    ['a set inline instead of an index', batch([acceptFields({ 4: nodeBytes })]), /paxosAcceptMany.accepts\[0\].set is not a non-negative integer/],
    ['too many accepts', batch(Array.from({ length: MAX_ACCEPTS_PER_BATCH + 1 }, () => acceptFields())), /paxosAcceptMany.accepts has 1025 entries, more than 1024/],
    ['an accept of 4 fields', batch([acceptFields().slice(0, 4)]), /paxosAcceptMany.accepts\[0\] is not \[counter, node, entry, history, set\]/],
    ['an accept as a map', batch([{ ballot: { counter: 1, node: a } }]), /paxosAcceptMany.accepts\[0\] is not \[counter/],
    ['a fractional counter', batch([acceptFields({ 0: 1.5 })]), /paxosAcceptMany.accepts\[0\].ballot.counter is not a non-negative integer/],
    ['an unsafe counter', batch([acceptFields({ 0: 2 ** 53 })]), /paxosAcceptMany.accepts\[0\].ballot.counter is not a non-negative integer/],
    ['a ballot node of 7 bytes', batch([acceptFields({ 1: Buffer.alloc(7) })]), /paxosAcceptMany.accepts\[0\].ballot.node is not a node id \(a byte string of 8\)/],
    ['a ballot node of 9 bytes', batch([acceptFields({ 1: Buffer.alloc(9) })]), /paxosAcceptMany.accepts\[0\].ballot.node is not a node id/],
    ['a ballot node in hex', batch([acceptFields({ 1: a })]), /paxosAcceptMany.accepts\[0\].ballot.node is not a node id/],
    ['an entry as a map', batch([acceptFields({ 2: { key: 'k', value: null, hlc: 1, node: a } })]), /paxosAcceptMany.accepts\[0\].entry is not \[key, value, hlc, node/],
    ['an entry without a key', batch([acceptFields({ 2: ['', null, 5, nodeBytes] })]), /paxosAcceptMany.accepts\[0\].entry.key has 0 characters/],
    ['a history of 17 bytes', batch([acceptFields({ 3: Buffer.alloc(17) })]), /paxosAcceptMany.accepts\[0\].history has 17 bytes, not a multiple of 16/],
    ['a history of 17 versions', batch([acceptFields({ 3: historyOf(MAX_HISTORY + 1) })]), /paxosAcceptMany.accepts\[0\].history has 272 bytes, more than 16 versions/],
    ['a huge history', batch([acceptFields({ 3: Buffer.alloc(1024 * 1024) })]), /paxosAcceptMany.accepts\[0\].history has 1048576 bytes, more than 16 versions/],
    ['an unsafe hlc in a history', batch([acceptFields({ 3: Buffer.concat([historyOf(1), unsafeHistory]) })]), /paxosAcceptMany.accepts\[0\].history\[1\].hlc is above 2\^53/],
    ['a history as maps (protocol 2)', batch([acceptFields({ 3: [{ hlc: 1, node: a }] })]), /paxosAcceptMany.accepts\[0\].history is not a byte string/],
    ['too many commits', batch([], Array.from({ length: MAX_COMMITS_PER_BATCH + 1 }, () => ['k', 1, nodeBytes, 0])), /paxosAcceptMany.commits has 4097 entries, more than 4096/],
    ['a commit of 3 fields', batch([], [['k', 1, nodeBytes]]), /paxosAcceptMany.commits\[0\] is not \[key, counter, node, at\]/],
    ['a commit without a key', batch([], [['', 1, nodeBytes, 0]]), /paxosAcceptMany.commits\[0\].key has 0 characters/],
    ['a commit at beyond a batch', batch([], [['k', 1, nodeBytes, MAX_ACCEPTS_PER_BATCH + 1]]), /paxosAcceptMany.commits\[0\].at is 1025, more than 1024/],
    ['a commit node of 16 bytes', batch([], [['k', 1, Buffer.alloc(16), 0]]), /paxosAcceptMany.commits\[0\].ballot.node is not a node id/],
  ]
  for (const [what, body, reason] of cases) t.throws(() => validateAcceptMany(body), { name: 'MalformedBodyError', message: reason }, what)
  t.same(validateAcceptMany(batch([acceptFields({ 4: null })])).accepts[0]?.set, undefined, 'an accept without a set index has no set')
})

t.test('malformed compact paxosAcceptManyReply bodies are refused with a reason naming the field', async t => {
  const cases: [string, unknown, RegExp][] = [
    ['a map body', { answers: [], missing: [] }, /^paxosAcceptManyReply is not \[count, refusals, missing\]/],
    ['a count above a batch', [MAX_ACCEPTS_PER_BATCH + 1, [], []], /paxosAcceptManyReply.count is 1025, more than 1024/],
    ['a negative count', [-1, [], []], /paxosAcceptManyReply.count is not a non-negative integer/],
    ['more refusals than answers', [1, [[0, 2, 'no'], [1, 2, 'no']], []], /paxosAcceptManyReply.refusals has 2 entries, more than 1/],
    ['a refusal index out of range', [2, [[2, 2, 'no']], []], /paxosAcceptManyReply.refusals\[0\].index is 2, more than 1/],
    ['a refusal index twice', [3, [[1, 2, 'no'], [1, 2, 'no']], []], /paxosAcceptManyReply.refusals\[1\].index is 1, not above the previous refusal's 1/],
    ['refusals out of order', [3, [[2, 2, 'no'], [0, 2, 'no']], []], /paxosAcceptManyReply.refusals\[1\].index is 0, not above/],
    ['an ok answer listed', [1, [[0, 0, 'ok']], []], /paxosAcceptManyReply.refusals\[0\] is not \[index, 1, counter, node\] or \[index, 2, reason\]/],
    ['an unknown answer code', [1, [[0, 7, 'x']], []], /paxosAcceptManyReply.refusals\[0\] is not \[index, 1, counter, node\] or \[index, 2, reason\]/],
    ['a promise without its node', [1, [[0, 1, 5]], []], /paxosAcceptManyReply.refusals\[0\] is not \[index, 1, counter, node\] or \[index, 2, reason\]/],
    ['a promised node in hex', [1, [[0, 1, 5, a]], []], /paxosAcceptManyReply.refusals\[0\].promised.node is not a node id/],
    ['an empty reason', [1, [[0, 2, '']], []], /paxosAcceptManyReply.refusals\[0\].refused has 0 characters/],
    ['a reason too long', [1, [[0, 2, 'x'.repeat(MAX_REASON_CHARS + 1)]], []], /paxosAcceptManyReply.refusals\[0\].refused has 513 characters, more than 512/],
    ['a missing index beyond a batch', [0, [], [MAX_COMMITS_PER_BATCH]], /paxosAcceptManyReply.missing\[0\] is 4096, more than 4095/],
    ['too many missing', [0, [], Array.from({ length: MAX_COMMITS_PER_BATCH + 1 }, () => 0)], /paxosAcceptManyReply.missing has 4097 entries/],
  ]
  for (const [what, body, reason] of cases) t.throws(() => validateAcceptManyReply(body), { name: 'MalformedBodyError', message: reason }, what)
})

t.test('malformed compact prepare, promise, accept and accepted bodies are refused with a reason', async t => {
  const cases: [string, (body: unknown) => unknown, unknown, RegExp][] = [
    ['a prepare as a map', validatePrepare, { key: 'k', ballot: { counter: 1, node: a }, set }, /^paxosPrepare is not \[key, counter, node, set \| nil\]/],
    ['a prepare without a key', validatePrepare, ['', 1, nodeBytes, null], /paxosPrepare.key has 0 characters/],
    ['a prepare whose set is 12 bytes', validatePrepare, ['k', 1, nodeBytes, Buffer.alloc(12)], /paxosPrepare.set has 12 bytes, not a multiple of 8/],
    ['a prepare whose set is an index', validatePrepare, ['k', 1, nodeBytes, 0], /paxosPrepare.set is not a byte string/],
    ['an accept whose history is odd', validateAccept, [1, nodeBytes, entryFields, Buffer.alloc(15), null], /paxosAccept.history has 15 bytes, not a multiple of 16/],
    ['an accept with an unsafe hlc', validateAccept, [1, nodeBytes, entryFields, unsafeHistory, null], /paxosAccept.history\[0\].hlc is above 2\^53/],
    ['an accept of 6 fields', validateAccept, [1, nodeBytes, entryFields, historyOf(0), null, null], /^paxosAccept is not \[counter, node, entry, history, set\]/],
    ['an accepted as a map', validateAccepted, { ok: true }, /^paxosAccepted is not \[0\], \[1, counter, node\] or \[2, reason\]/],
    ['an ok with a reason', validateAccepted, [0, 'x'], /^paxosAccepted is not \[1, counter, node\] or \[2, reason\]/],
    ['an empty accepted', validateAccepted, [], /^paxosAccepted is not \[0\]/],
    ['a promise as a map', validatePromise, { ok: true, accepted: null, stored: null }, /^paxosPromise is not \[0, accepted, stored\] or a refusal/],
    ['an ok promise of 2 fields', validatePromise, [0, null], /^paxosPromise is not \[0, accepted, stored\]/],
    ['an accepted value of 3 fields', validatePromise, [0, [1, nodeBytes, entryFields], null], /paxosPromise.accepted is not \[counter, node, entry, history\]/],
    ['an accepted history of 17 versions', validatePromise, [0, [1, nodeBytes, entryFields, historyOf(17)], null], /paxosPromise.accepted.history has 272 bytes, more than 16 versions/],
    ['a stored entry as a map', validatePromise, [0, null, { key: 'k' }], /paxosPromise.stored is not \[key, value, hlc, node/],
    ['a promised ballot with a 4-byte node', validatePromise, [1, 5, Buffer.alloc(4)], /paxosPromise.promised.node is not a node id/],
    ['a refusal without a reason', validatePromise, [2, null], /paxosPromise.refused is not a string/],
  ]
  for (const [what, validate, body, reason] of cases) t.throws(() => validate(body), { name: 'MalformedBodyError', message: reason }, what)
})

t.test('through the codec, a malformed compact body is a bad-body frame error, not a crash', async t => {
  const bytes = pack([frameRegistry.named(PAXOS_ACCEPT_MANY).code, 5, batch([acceptFields({ 4: 3 })])])
  let caught: unknown
  try {
    codec.decodeMessage(bytes)
  } catch (error) {
    caught = error
  }
  t.ok(caught instanceof MalformedFrameError, 'a malformed frame error')
  t.equal((caught as MalformedFrameError).reason, 'bad-body')
  t.match((caught as Error).message, /bad paxosAcceptMany body: paxosAcceptMany.accepts\[0\].set is index 3, but the batch lists 1 sets/)
})

t.test('mangled compact bodies either validate or are refused as malformed, never throw anything else', async t => {
  const seed = 20261206
  const seeded = createRandom(seed)
  const next = (): number => seeded.next()
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)] as T
  const junk: unknown[] = [null, true, -1, 0, 1, 2, 1.5, 2 ** 53, 'x', '', Buffer.alloc(0), Buffer.alloc(8, 0xff), Buffer.alloc(16, 0xff), Buffer.alloc(7), [], {}, [0], [1, 2, 3]]
  const samples: [string, unknown, (body: unknown) => unknown][] = [
    [PAXOS_ACCEPT_MANY, encodeAcceptMany({ accepts: [accept('k1', TICK), accept('k2', TICK + 1, [b])], commits: [{ key: 'k0', ballot: { counter: TICK, node: a }, at: 1 }] }), validateAcceptMany],
    [PAXOS_ACCEPT_MANY_REPLY, encodeAcceptManyReply({ answers: [{ ok: true }, ...refusals], missing: [0] }), validateAcceptManyReply],
    [PAXOS_PREPARE, encodePrepare({ key: 'k', ballot: { counter: TICK, node: a }, set }), validatePrepare],
    [PAXOS_PROMISE, encodePromise({ ok: true, accepted: { ballot: { counter: TICK, node: b }, entry: entry('k'), history: history(4) }, stored: null }), validatePromise],
    [PAXOS_ACCEPT, encodeAccept(accept('k', TICK)), validateAccept],
    [PAXOS_ACCEPTED, [1, TICK, nodeBytes], validateAccepted],
  ]
  const mangle = (value: unknown, depth: number): unknown => {
    if (Array.isArray(value)) {
      const copy = value.map((item) => (next() < 0.3 ? mangle(item, depth + 1) : item))
      const roll = next()
      if (roll < 0.15) copy.pop()
      else if (roll < 0.3) copy.push(pick(junk))
      else if (roll < 0.5 || depth > 3) copy[Math.floor(next() * Math.max(1, copy.length))] = pick(junk)
      return copy
    }
    if (value instanceof Uint8Array) {
      const copy = Buffer.from(value)
      if (next() < 0.5 && copy.byteLength > 0) copy[Math.floor(next() * copy.byteLength)] = Math.floor(next() * 256)
      return next() < 0.3 ? copy.subarray(0, Math.floor(next() * copy.byteLength)) : copy
    }
    return next() < 0.5 ? pick(junk) : value
  }
  let refused = 0
  let accepted = 0
  for (let i = 0; i < 3000; i++) {
    const [name, sample, validate] = pick(samples)
    const body = packr.unpack(packr.pack(mangle(sample, 0)))
    try {
      validate(body)
      accepted++
    } catch (error) {
      if (!(error instanceof MalformedBodyError)) {
        t.fail(`seed ${seed}, case ${i}: ${name} threw ${String(error)}`)
        return
      }
      refused++
    }
  }
  t.ok(refused > 1000, `${refused} mangled bodies refused`)
  t.ok(accepted > 0, `${accepted} mangled bodies still well-formed`)
})
