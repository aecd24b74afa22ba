import { Packr } from 'msgpackr'
import t from 'tap'
import type { NodeId } from '../../lib/clock/version.js'
import { AcceptBatcher, type AcceptBatcherOptions } from '../../lib/paxos/accept-batcher.js'
import { Acceptor, type AcceptRequest } from '../../lib/paxos/acceptor.js'
import { AcceptorStore } from '../../lib/paxos/acceptor-store.js'
import type { Ballot } from '../../lib/paxos/ballot.js'
import { encodeAcceptMany, encodeAcceptManyReply, validateAcceptMany, validateAcceptManyReply, type AcceptAnswer, type AcceptManyBody, type AcceptManyReplyBody } from '../../lib/paxos/messages.js'
import { FakeClock } from '../../lib/runtime/clock.js'
import { MemoryDatabase } from '../../lib/sim/memory-database.js'
import { MemoryJournal } from '../../lib/sim/memory-journal.js'
import { encodeKey } from '../../lib/store/keys.js'
import type { StoredRecord } from '../../lib/store/record.js'
import { TransportError } from '../../lib/transport/transport.js'
import { openTestStore } from '../store/fixture.js'

/**
 * The batched accept path and the commit/learn rule (accept-batcher.ts, Acceptor.acceptMany): a
 * real Acceptor over a MemoryDatabase behind a "network" of function calls that the test can
 * hold, fail or let through, with a fake clock for deadlines.
 */

const P = 'aaaaaaaaaaaaaaaa' as NodeId
const X = 'cccccccccccccccc' as NodeId
const set = [P, 'bbbbbbbbbbbbbbbb' as NodeId, X]
const ballot = (counter: number): Ballot => ({ counter, node: P })
const rec = (hlc: number, text: string): StoredRecord => ({ value: Buffer.from(text), version: { hlc, node: P }, strong: true })
const text = (record: StoredRecord | undefined): string | undefined => record?.value == null ? undefined : Buffer.from(record.value).toString()
const packr = new Packr({ useRecords: false })
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

interface Held { body: AcceptManyBody; release: () => void; fail: (error: unknown) => void }

class Remote {
  readonly db = new MemoryDatabase<Uint8Array, Uint8Array>()
  readonly journal = new MemoryJournal()
  /** The acceptor's plain store: what learned commits write. */
  readonly kv = new Map<string, StoredRecord>()
  learnFails = false
  readonly learnErrors: string[] = []
  acceptor!: Acceptor

  static async create(): Promise<Remote> {
    const remote = new Remote()
    remote.acceptor = await remote.#open()
    return remote
  }

  async #open(): Promise<Acceptor> {
    return new Acceptor({
    store: await AcceptorStore.open({ db: this.db, journal: this.journal }),
    stored: (key) => this.kv.get(key),
    refusal: () => undefined,
    observeTick: () => undefined,
    learn: async (records) => {
      if (this.learnFails) throw new Error('the store is closing')
      for (const { key, record } of records) {
        const held = this.kv.get(key)
        if (held === undefined || held.version.hlc < record.version.hlc) this.kv.set(key, record)
      }
    },
    onLearnError: (error) => this.learnErrors.push((error as Error).message),
  })
  }
}

async function setUp(overrides: Partial<AcceptBatcherOptions> = {}): Promise<{ clock: FakeClock; remote: Remote; batcher: AcceptBatcher; sent: AcceptManyBody[]; held: Held[]; hold: { on: boolean }; unlearned: { key: string; text: string | undefined }[] }> {
  const clock = new FakeClock(1_000_000)
  const remote = await Remote.create()
  const sent: AcceptManyBody[] = []
  const held: Held[] = []
  const hold = { on: false }
  const unlearned: { key: string; text: string | undefined }[] = []
  const batcher = new AcceptBatcher({
    send: (_to, body) => {
      // What crosses the wire is validated on both ends, as the transport does.
      const wire = validateAcceptMany(packr.unpack(packr.pack(encodeAcceptMany(body))))
      sent.push(wire)
      const answer = (): Promise<AcceptManyReplyBody> => remote.acceptor.acceptMany(
        wire.accepts.map(({ ballot, entry, history, set }) => ({ key: entry.key, ballot, record: { value: entry.value, version: { hlc: entry.hlc, node: entry.node as NodeId }, strong: true }, history, set })),
        wire.commits).then((reply) => validateAcceptManyReply(packr.unpack(packr.pack(encodeAcceptManyReply(reply)))))
      if (!hold.on) return answer()
      return new Promise((resolve, reject) => held.push({ body: wire, release: () => { answer().then(resolve, reject) }, fail: reject }))
    },
    maxBytes: 1024 * 1024,
    maxInFlight: 1,
    commitTimeoutMs: 1000,
    commitLingerMs: 0,
    clock,
    nowMs: () => clock.nowMs(),
    defer: (task) => { setImmediate(task) },
    unlearned: (_to, key, record) => unlearned.push({ key, text: text(record) }),
    ...overrides,
  })
  return { clock, remote, batcher, sent, held, hold, unlearned }
}

const accept = (batcher: AcceptBatcher, key: string, b: number, value: string, alone = false): Promise<AcceptAnswer> =>
  batcher.accept(X, key, ballot(b), rec(b * 10, value), [{ hlc: b * 10, node: P }], set, 1000, alone)

t.test('the accepts of one turn to one acceptor travel as one batch, answered one by one', async t => {
  const { batcher, sent, remote } = await setUp()
  const answers = await Promise.all([accept(batcher, 'a', 5, 'x'), accept(batcher, 'b', 6, 'y'), accept(batcher, 'c', 7, 'z')])
  t.same(answers, [{ ok: true }, { ok: true }, { ok: true }])
  t.equal(sent.length, 1, 'one frame')
  t.equal(sent[0]?.accepts.length, 3)
  t.equal(remote.kv.size, 0, 'an accept alone writes nothing to the plain store: the value is not known to be chosen')
})

t.test('the accept of a proposer running nothing else leaves within the call, not at the end of the turn', async t => {
  const { batcher, sent, hold } = await setUp({ defer: () => { throw new Error('no end-of-turn flush expected') } })
  hold.on = true
  void accept(batcher, 'a', 5, 'x', true)
  t.equal(sent.length, 1, 'sent before accept() returned')
  t.same(sent[0]?.accepts.map((a) => a.entry.key), ['a'])
})

t.test('an accept alone takes the commits waiting for that acceptor along; with a batch in flight it waits for the turn', async t => {
  const { batcher, sent, remote, hold, held } = await setUp({ commitLingerMs: 20 })
  await accept(batcher, 'k', 5, 'v5', true)
  batcher.commit(X, 'k', ballot(5), rec(50, 'v5'))
  t.equal(sent.length, 1, 'the commit lingers')
  hold.on = true
  const next = accept(batcher, 'k', 6, 'v6', true)
  t.equal(sent.length, 2, 'the accept left at once')
  t.same(sent[1]?.commits.map((c) => c.key), ['k'], 'with the commit')
  const third = accept(batcher, 'j', 7, 'v7', true)
  t.equal(sent.length, 2, 'the next one waits: a batch is in flight to that acceptor (maxInFlight 1)')
  hold.on = false
  held[0]?.release()
  t.same(await next, { ok: true })
  t.same(await third, { ok: true })
  t.equal(sent.length, 3)
  t.equal(text(remote.kv.get('k')), 'v5')
})

t.test('a commit notice makes the acceptor store the value it accepted at exactly that ballot', async t => {
  const { batcher, remote, sent, unlearned } = await setUp()
  await accept(batcher, 'k', 5, 'chosen')
  batcher.commit(X, 'k', ballot(5), rec(50, 'chosen'))
  await turn()
  await turn()
  t.same(sent[1]?.commits, [{ key: 'k', ballot: ballot(5), at: 0 }], 'the notice carries the key and the ballot, not the value')
  t.equal(text(remote.kv.get('k')), 'chosen')
  t.ok(remote.kv.get('k')?.strong, 'as a strong record')
  t.same(unlearned, [])
})

t.test('a commit for a ballot the acceptor does not hold is written in full instead, never guessed', async t => {
  const { batcher, remote, unlearned } = await setUp()
  await accept(batcher, 'k', 5, 'only-accepted-here')
  // Chosen at 4 (this acceptor missed that accept) and at 9 (it never heard of it).
  batcher.commit(X, 'k', ballot(4), rec(40, 'four'))
  batcher.commit(X, 'never', ballot(9), rec(90, 'nine'))
  await turn()
  await turn()
  t.equal(remote.kv.get('k'), undefined, 'the value accepted at 5 is not stored for a commit of 4')
  t.same(unlearned, [{ key: 'k', text: 'four' }, { key: 'never', text: 'nine' }])
})

t.test('accepts and commits are taken in the order they were queued, so a batch holding several rounds of one key learns them', async t => {
  const { batcher, remote, sent, held, hold, unlearned } = await setUp()
  hold.on = true
  // A batch to a slow acceptor is out; meanwhile the key goes on through the other acceptors.
  const first = accept(batcher, 'other', 3, 'o')
  await turn()
  t.equal(held.length, 1)
  const answers = [accept(batcher, 'k', 5, 'v5')]
  batcher.commit(X, 'k', ballot(5), rec(50, 'v5'))
  answers.push(accept(batcher, 'k', 6, 'v6'))
  batcher.commit(X, 'k', ballot(6), rec(60, 'v6'))
  answers.push(accept(batcher, 'k', 7, 'v7'))
  hold.on = false
  held[0]?.release()
  await first
  t.same(await Promise.all(answers), [{ ok: true }, { ok: true }, { ok: true }])
  t.equal(sent.length, 2, 'everything queued behind the first batch left as one')
  t.same(sent[1]?.commits.map((c) => c.at), [1, 2])
  t.equal(text(remote.kv.get('k')), 'v6', 'the newest chosen value is stored; v7 is only accepted')
  t.same(unlearned, [])
})

t.test('a commit the acceptor was overtaken on is not written in full when a later commit of the key was learned', async t => {
  const { batcher, remote, unlearned } = await setUp()
  await accept(batcher, 'k', 5, 'v5')
  await accept(batcher, 'k', 6, 'v6')
  batcher.commit(X, 'k', ballot(5), rec(50, 'v5'))
  batcher.commit(X, 'k', ballot(6), rec(60, 'v6'))
  await turn()
  await turn()
  t.equal(text(remote.kv.get('k')), 'v6')
  t.same(unlearned, [], 'v5 is superseded by v6, which the acceptor stored')
})

t.test('a batch that gets no answer: its accepts fail (the proposer counts them unanswered) and its commits are written in full', async t => {
  const { batcher, held, hold, unlearned } = await setUp()
  hold.on = true
  batcher.commit(X, 'j', ballot(3), rec(30, 'v3'))
  const pending = accept(batcher, 'k', 5, 'v5')
  await turn()
  held[0]?.fail(new TransportError('no answer', 'timeout'))
  await t.rejects(pending, TransportError)
  t.same(unlearned, [{ key: 'j', text: 'v3' }])
})

t.test('a batch that waited behind an unanswered one past its deadline is not sent late', async t => {
  const { batcher, clock, held, hold, sent, unlearned } = await setUp()
  hold.on = true
  const first = accept(batcher, 'a', 5, 'x')
  await turn()
  const late = accept(batcher, 'b', 6, 'y')
  batcher.commit(X, 'c', ballot(2), rec(20, 'z'))
  await turn()
  await clock.advance(1001)
  held[0]?.release()
  await first
  await t.rejects(late, /deadline passed/)
  t.equal(sent.length, 1)
  t.same(unlearned, [{ key: 'c', text: 'z' }])
})

t.test('when the store cannot take a learned value, the accepts still count and the failure is reported, not hidden', async t => {
  const { batcher, remote, unlearned } = await setUp()
  await accept(batcher, 'k', 5, 'v5')
  remote.learnFails = true
  const next = accept(batcher, 'j', 8, 'v8')
  batcher.commit(X, 'k', ballot(5), rec(50, 'v5'))
  t.same(await next, { ok: true })
  await turn()
  await turn()
  t.match(remote.learnErrors, [/the store is closing/])
  t.same(unlearned, [], 'the acceptor did hold the chosen value: the other replicas and anti-entropy carry it')
})

t.test('a key whose acceptor state is corrupt refuses its own accept only', async t => {
  const { batcher, remote } = await setUp()
  await remote.db.put(encodeKey('bad'), Buffer.from([0xc1]))
  const [bad, good] = await Promise.all([accept(batcher, 'bad', 5, 'x'), accept(batcher, 'good', 6, 'y')])
  t.equal(bad.ok, false)
  t.match((bad as { refused?: string }).refused, /acceptor state for key "bad" is corrupt/)
  t.same(good, { ok: true })
})

t.test('commits wait up to commitLingerMs for an accept to ride along with, and leave on their own after it', async t => {
  const { batcher, clock, sent, remote } = await setUp({ commitLingerMs: 20 })
  await accept(batcher, 'k', 5, 'v5')
  batcher.commit(X, 'k', ballot(5), rec(50, 'v5'))
  await turn()
  await turn()
  t.equal(sent.length, 1, 'the commit alone does not leave at once')
  t.same(await accept(batcher, 'k', 6, 'v6'), { ok: true })
  t.equal(sent.length, 2)
  t.same(sent[1]?.commits.map((c) => c.key), ['k'], 'it rode along with the next accept')
  t.equal(text(remote.kv.get('k')), 'v5', 'and was learned with it')
  batcher.commit(X, 'k', ballot(6), rec(60, 'v6'))
  await turn()
  t.equal(sent.length, 2)
  await clock.advance(20)
  await turn()
  await turn()
  t.equal(sent.length, 3, 'with no accept coming, it left after the linger')
  t.equal(text(remote.kv.get('k')), 'v6')
})

t.test('on the daemon\'s LMDB store a learned value reaches the store after the answer, survives a reopen and is announced once', async t => {
  const dataDir = t.testdir()
  const store = await openTestStore(t, dataDir)
  const changes: string[] = []
  let learnedK: () => void = () => undefined
  const kLearned = new Promise<void>((resolve) => { learnedK = resolve })
  store.onChange(({ key, current }) => {
    changes.push(`${key}=${text(current)}`)
    if (key === 'k') learnedK()
  })
  const acceptor = new Acceptor({
    store: await AcceptorStore.open({ db: store.paxos, journal: store.paxosJournal }),
    stored: (key) => store.get(key),
    refusal: () => undefined,
    observeTick: () => undefined,
    learn: (records) => store.applyMany(records),
  })
  const request = (key: string, b: number, value: string): AcceptRequest => ({ key, ballot: ballot(b), record: rec(b * 10, value), history: [], set })
  t.same((await acceptor.acceptMany([request('k', 5, 'v5')], [])).answers, [{ ok: true }])
  t.equal(store.get('k'), undefined, 'accepted, not yet known chosen: not in the store')
  const { answers, missing } = await acceptor.acceptMany([request('j', 7, 'v7')], [{ key: 'k', ballot: ballot(5), at: 0 }])
  t.same(answers, [{ ok: true }])
  t.same(missing, [])
  // The store write is not awaited by the answer (the journal holds the value durably): wait for its change event.
  await Promise.race([kLearned, new Promise((_, reject) => setTimeout(() => reject(new Error('the learned value never reached the store')), 5000).unref())])
  t.equal(text(store.get('k')), 'v5')
  t.ok(store.get('k')?.strong)
  t.same(changes, ['k=v5'], 'the change listeners heard of it once, after the flush')
  await store.close()
  const reopened = await openTestStore(t, dataDir)
  t.equal(text(reopened.get('k')), 'v5', 'durable with the batch')
  t.equal(reopened.get('j'), undefined)
})
