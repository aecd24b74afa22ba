import t from 'tap'
import { PeerBatcher, type PeerBatch } from '../../lib/transport/peer-batcher.js'
import { TransportError } from '../../lib/transport/transport.js'

/**
 * The per-peer batching mechanism on its own (peer-batcher.ts): the end of a turn is a queue the
 * test runs by hand, answers are promises the test settles, and time is a number it moves.
 */

interface Items extends PeerBatch { readonly items: string[]; ready: boolean }
interface Sent { readonly peer: string; readonly items: string[]; readonly timeoutMs: number; answer: (reply: string) => void; fail: (error: unknown) => void }

function setUp(maxInFlight = 1, maxItems = 100): {
  batcher: PeerBatcher<Items, string>; add: (peer: string, item: string, timeoutMs?: number) => Items; endTurn: () => void
  deferred: (() => void)[]; sent: Sent[]; answered: string[]; failed: string[]; now: { ms: number }; throwOnSend: { on: boolean }
} {
  const deferred: (() => void)[] = []
  const sent: Sent[] = []
  const answered: string[] = []
  const failed: string[] = []
  const now = { ms: 1000 }
  const throwOnSend = { on: false }
  const batcher = new PeerBatcher<Items, string>({
    what: 'testBatch',
    maxInFlight,
    nowMs: () => now.ms,
    defer: (task) => { deferred.push(task) },
    ready: (batch) => batch.ready,
    send: (peer, batch, timeoutMs) => {
      if (throwOnSend.on) throw new Error('the link is closed')
      return new Promise((resolve, reject) => sent.push({ peer, items: [...batch.items], timeoutMs, answer: resolve, fail: reject }))
    },
    answered: (peer, batch, reply) => answered.push(`${peer}:${batch.items.join(',')}=${reply}`),
    failed: (peer, batch, error) => failed.push(`${peer}:${batch.items.join(',')}!${error instanceof TransportError ? error.code : (error as Error).message}`),
  })
  const add = (peer: string, item: string, timeoutMs = 100): Items => {
    const batch = batcher.batchFor(peer, (open) => open.items.length < maxItems, (deadlineMs) => ({ items: [], deadlineMs, ready: true }), timeoutMs)
    batch.items.push(item)
    batcher.flushSoon()
    return batch
  }
  const endTurn = (): void => { for (const task of deferred.splice(0)) task() }
  return { batcher, add, endTurn, deferred, sent, answered, failed, now, throwOnSend }
}

const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

t.test('what one turn sends to a peer leaves as one batch per peer, only when the injected end of turn runs', async t => {
  const { add, endTurn, deferred, sent } = setUp()
  add('p', 'a')
  add('p', 'b')
  add('q', 'c')
  t.equal(deferred.length, 1, 'one flush scheduled for the turn')
  t.equal(sent.length, 0, 'nothing leaves before the end of the turn')
  endTurn()
  t.same(sent.map((s) => `${s.peer}:${s.items.join(',')}`), ['p:a,b', 'q:c'])
  t.equal(sent[0]?.timeoutMs, 100, 'the batch carries its callers\' deadline')
})

t.test('while maxInFlight batches await their answer the next one gathers, and leaves when an answer comes', async t => {
  const { add, endTurn, sent, answered } = setUp(1)
  add('p', 'a')
  endTurn()
  add('p', 'b')
  endTurn()
  add('p', 'c')
  endTurn()
  t.equal(sent.length, 1, 'the peer has its one batch out')
  sent[0]?.answer('ok1')
  await settle()
  t.same(sent.map((s) => s.items.join(',')), ['a', 'b,c'], 'the turns in between went as one batch')
  t.same(answered, ['p:a=ok1'])
  sent[1]?.answer('ok2')
  await settle()
  t.same(answered, ['p:a=ok1', 'p:b,c=ok2'])
})

t.test('a full batch leaves at once, even with the peer busy it counts against maxInFlight', async t => {
  const { add, endTurn, sent } = setUp(2, 2)
  add('p', 'a')
  add('p', 'b')
  add('p', 'c')
  t.same(sent.map((s) => s.items.join(',')), ['a,b'], 'the full batch left before the third item')
  endTurn()
  t.same(sent.map((s) => s.items.join(',')), ['a,b', 'c'])
})

t.test('a batch that waited behind unanswered ones past its deadline fails as a timeout and is never sent', async t => {
  const { add, endTurn, sent, failed, now } = setUp(1)
  add('p', 'a', 100)
  endTurn()
  add('p', 'late', 50)
  endTurn()
  now.ms += 60
  sent[0]?.fail(new Error('no answer'))
  await settle()
  t.same(sent.map((s) => s.items.join(',')), ['a'])
  t.same(failed, ['p:late!timeout', 'p:a!no answer'])
})

t.test('the most patient caller sets the batch\'s deadline', async t => {
  const { add, endTurn, sent, now } = setUp(1)
  add('p', 'a', 100)
  endTurn()
  add('p', 'b', 10)
  add('p', 'c', 500)
  endTurn()
  now.ms += 100
  sent[0]?.answer('ok')
  await settle()
  t.equal(sent[1]?.timeoutMs, 400, 'what is left of the longest deadline')
})

t.test('a batch that is not ready waits for release, which respects maxInFlight', async t => {
  const { batcher, add, endTurn, sent } = setUp(1)
  const first = add('p', 'a')
  endTurn()
  const waiting = add('p', 'b')
  waiting.ready = false
  endTurn()
  sent[0]?.answer('ok')
  await settle()
  t.equal(sent.length, 1, 'a batch that is not ready stays when the answer comes')
  waiting.ready = true
  batcher.release('p', first)
  t.equal(sent.length, 1, 'releasing a batch that already left does nothing')
  batcher.release('p', waiting)
  t.same(sent.map((s) => s.items.join(',')), ['a', 'b'])
  t.equal(batcher.gathering('p'), undefined)
})

t.test('a send that throws fails its batch and frees the peer\'s slot', async t => {
  const { add, endTurn, sent, failed, throwOnSend } = setUp(1)
  throwOnSend.on = true
  add('p', 'a')
  endTurn()
  await settle()
  t.same(failed, ['p:a!the link is closed'])
  throwOnSend.on = false
  add('p', 'b')
  endTurn()
  t.same(sent.map((s) => s.items.join(',')), ['b'], 'the next batch is not held behind the failed one')
})

t.test('maxInFlight must be a positive integer', async t => {
  const options = { what: 'x', nowMs: () => 0, defer: () => undefined, send: async () => '', answered: () => undefined, failed: () => undefined }
  t.throws(() => new PeerBatcher({ ...options, maxInFlight: 0 }), RangeError)
  t.throws(() => new PeerBatcher({ ...options, maxInFlight: 1.5 }), RangeError)
})

t.test('added(): an item alone for a peer with nothing in flight leaves at once; the rest of the turn gathers behind it', async t => {
  const { batcher, endTurn, deferred, sent } = setUp(2)
  const addNow = (peer: string, item: string, ready = true): void => {
    const batch = batcher.batchFor(peer, () => true, (deadlineMs) => ({ items: [], deadlineMs, ready }), 100)
    batch.items.push(item)
    batcher.added(peer, batch, batch.items.length)
  }
  addNow('p', 'a')
  t.same(sent.map((s) => `${s.peer}:${s.items.join(',')}`), ['p:a'], 'the lone item left within the call')
  t.equal(deferred.length, 0, 'no end-of-turn flush for it')
  addNow('p', 'b')
  addNow('p', 'c')
  addNow('q', 'd', false)
  t.equal(sent.length, 1, 'with a batch in flight to p, the next ones wait for the end of the turn; q\'s is not ready')
  endTurn()
  t.same(sent.map((s) => `${s.peer}:${s.items.join(',')}`), ['p:a', 'p:b,c'], 'p\'s next ones left together')
})
