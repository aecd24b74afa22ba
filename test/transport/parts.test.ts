import t from 'tap'
import { pino } from 'pino'
import { Dispatcher } from '../../lib/transport/dispatcher.js'
import { identity, testRegistry } from './fixtures.js'
import { FakeClock } from '../../lib/runtime/clock.js'
import { backoffDelayMs } from '../../lib/transport/backoff.js'
import { PendingRequests } from '../../lib/transport/pending-requests.js'
import { SendQueue } from '../../lib/transport/send-queue.js'
import { TransportError } from '../../lib/transport/transport.js'

t.test('backoff: full jitter under an exponential ceiling capped at the maximum', async t => {
  t.equal(backoffDelayMs(0, 100, 10_000, () => 0.999), 99)
  t.equal(backoffDelayMs(3, 100, 10_000, () => 0.5), 400)
  t.equal(backoffDelayMs(10, 100, 10_000, () => 0.999), 9990, 'capped')
  t.equal(backoffDelayMs(1e9, 100, 10_000, () => 0.5), 5000, 'no overflow for absurd attempts')
  t.equal(backoffDelayMs(5, 100, 10_000, () => 0), 0)
})

t.test('fake clock: timers run in due order, ties in insertion order, on advance only', async t => {
  const clock = new FakeClock(1000)
  const ran: string[] = []
  clock.setTimeout(() => ran.push(`b@${clock.nowMs()}`), 20)
  clock.setTimeout(() => ran.push(`a@${clock.nowMs()}`), 10)
  clock.setTimeout(() => ran.push(`c@${clock.nowMs()}`), 20)
  const cancelled = clock.setTimeout(() => ran.push('never'), 5)
  clock.clearTimeout(cancelled)
  t.equal(clock.pendingTimers, 3)
  await clock.advance(15)
  t.same(ran, ['a@1010'])
  t.equal(clock.nowMs(), 1015)
  await clock.advance(100)
  t.same(ran, ['a@1010', 'b@1020', 'c@1020'])
  t.equal(clock.pendingTimers, 0)
})

t.test('fake clock: a timer set by a timer runs within the same advance when due', async t => {
  const clock = new FakeClock()
  const ran: number[] = []
  clock.setTimeout(() => {
    ran.push(clock.nowMs())
    clock.setTimeout(() => ran.push(clock.nowMs()), 5)
  }, 5)
  await clock.advance(10)
  t.same(ran, [5, 10])
  await t.rejects(clock.advance(-1), RangeError)
})

t.test('fake clock: promise callbacks settle before the next timer runs', async t => {
  const clock = new FakeClock()
  const order: string[] = []
  clock.setTimeout(() => { void Promise.resolve().then(() => order.push(`then@${clock.nowMs()}`)) }, 1)
  clock.setTimeout(() => order.push(`timer@${clock.nowMs()}`), 2)
  await clock.advance(5)
  t.same(order, ['then@1', 'timer@2'])
})

t.test('pending requests: answers, timeouts, the in-flight bound and owners', async t => {
  const clock = new FakeClock()
  const pending = new PendingRequests(clock, 2)
  const first = pending.open('peer-a', 'first', 100)
  const second = pending.open('peer-a', 'second', 100)
  t.throws(() => pending.open('peer-a', 'third', 100), { code: 'limit' })
  const other = pending.open('peer-b', 'other', 1000)
  t.not(first.requestId, second.requestId)
  t.notOk(pending.resolve(first.requestId, 'peer-b', { type: 'x', body: 1 }), 'an answer from another peer does not count')
  t.ok(pending.resolve(first.requestId, 'peer-a', { type: 'x', body: 1 }))
  t.same(await first.answer, { type: 'x', body: 1 })
  const third = pending.open('peer-a', 'third', 100)
  pending.markSent(third.requestId, 'link-1')
  pending.rejectSentOn('link-1', new TransportError('gone', 'closed'))
  await t.rejects(third.answer, { code: 'closed' })
  const late = second.answer.catch((error: unknown) => error)
  await clock.advance(100)
  t.match(await late, { code: 'timeout', message: 'second: no answer within 100 ms' })
  pending.transfer('peer-b', 'peer-c')
  t.ok(pending.resolve(other.requestId, 'peer-c', { type: 'y', body: 2 }), 'transferred to the new owner')
  await other.answer
  t.throws(() => pending.open('peer-a', 'bad', 0), TypeError)
})

t.test('send queue: batches within frame and byte bounds, expiry, merging', async t => {
  const queue = new SendQueue()
  const frame = (size: number, requestId = 0, expiresAtMs = 100) => ({ bytes: new Uint8Array(size), requestId, expiresAtMs })
  for (const size of [10, 10, 10, 50, 10]) queue.push(frame(size))
  t.equal(queue.bytes, 90)
  t.same(queue.takeMessage(2, 1000).map(f => f.bytes.byteLength), [10, 10], 'at most 2 frames')
  t.same(queue.takeMessage(10, 40).map(f => f.bytes.byteLength), [10], 'stops before passing 40 bytes')
  t.same(queue.takeMessage(10, 40).map(f => f.bytes.byteLength), [50], 'a frame larger than the bound still goes alone')
  t.equal(queue.length, 1)
  queue.push(frame(5, 0, 10))
  queue.push(frame(5, 7, 10))
  t.equal(queue.dropExpired(10), 1, 'one expired one-way frame (the request expires on its own)')
  t.equal(queue.length, 1)
  const other = new SendQueue()
  other.push(frame(3))
  queue.takeAll(other)
  t.equal(queue.length, 2)
  t.equal(other.length, 0)
  t.equal(queue.clear(), 2)
  t.equal(queue.bytes, 0)
})

t.test('dispatcher: one-way handlers, request answers and the ways a handler can go wrong', async t => {
  const lines: string[] = []
  const log = pino({ level: 'debug' }, { write: (line: string) => { lines.push(line) } })
  const dispatcher = new Dispatcher(testRegistry, log)
  const from = identity(1)
  dispatcher.handle('test.note', () => ({ type: 'test.echoed', body: {} }))
  dispatcher.handle('test.echo', (_from, message) => (message.body as { n: number }).n === 0 ? undefined : { type: 'test.note', body: {} })
  await dispatcher.deliver(from, { type: 'test.note', body: {} })
  t.match(lines.join(''), /handler of a one-way message returned an answer; ignored/)
  await dispatcher.deliver(from, { type: 'ping', body: {} })
  t.match(lines.join(''), /no handler for one-way message; dropped/)
  t.same(await dispatcher.answer(from, { type: 'test.echo', body: { n: 0 } }), { error: { code: 'no-answer', message: 'the test.echo handler answered nothing' } })
  t.match(await dispatcher.answer(from, { type: 'test.echo', body: { n: 1 } }), { error: { code: 'bad-answer' } })
  t.match(await dispatcher.answer(from, { type: 'test.slow', body: {} }), { error: { code: 'unhandled' } })
  t.throws(() => dispatcher.handle('hello', () => undefined), /handshake frame/)
})
