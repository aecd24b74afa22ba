import t from 'tap'
import { BroadcastQueue, retransmitLimit } from '../../lib/membership/broadcast-queue.js'

function queue(maxEntries = 100): BroadcastQueue<string> {
  return new BroadcastQueue<string>({ retransmitMult: 4, maxEntries })
}

t.test('the retransmit limit is retransmitMult × ceil(log10(n + 1))', async t => {
  t.equal(retransmitLimit(4, 1), 4)
  t.equal(retransmitLimit(4, 9), 4)
  t.equal(retransmitLimit(4, 10), 8)
  t.equal(retransmitLimit(4, 100), 12)
  t.equal(retransmitLimit(4, 1000), 16)
})

t.test('an update is sent exactly retransmit-limit times, then leaves the queue', async t => {
  const q = queue()
  q.enqueue('a', 'a@1', 10)
  const sent: string[][] = []
  for (let i = 0; i < 10; i++) sent.push(q.take(5, 10, 1000))
  t.same(sent.filter(batch => batch.length > 0).length, 4, '4 × ceil(log10 6) = 4 transmissions')
  t.equal(q.size, 0)
  t.notOk(q.has('a'))
})

t.test('a newer update about the same member replaces the older one and starts fresh', async t => {
  const q = queue()
  q.enqueue('a', 'a@1', 10)
  q.take(5, 10, 1000)
  q.take(5, 10, 1000)
  q.enqueue('a', 'a@2', 10)
  t.equal(q.size, 1)
  const batches = [q.take(5, 10, 1000), q.take(5, 10, 1000), q.take(5, 10, 1000), q.take(5, 10, 1000), q.take(5, 10, 1000)]
  t.same(batches, [['a@2'], ['a@2'], ['a@2'], ['a@2'], []], 'the old update is never sent again; the new one gets a full budget')
})

t.test('the least-transmitted updates go first', async t => {
  const q = queue()
  q.enqueue('old', 'old', 10)
  t.same(q.take(5, 1, 1000), ['old'])
  q.enqueue('new', 'new', 10)
  t.same(q.take(5, 1, 1000), ['new'], 'fresh news overtakes news already sent once')
  t.same(q.take(5, 1, 1000), ['new'], 'equal counts: the most recently sent first')
  t.same(q.take(5, 1, 1000), ['old'], 'now old has fewer transmissions')
})

t.test('one take respects the count and byte bounds', async t => {
  const q = queue()
  for (const key of ['a', 'b', 'c', 'd', 'e']) q.enqueue(key, key, 100)
  t.equal(q.take(5, 3, 10_000).length, 3, 'count bound')
  const byBytes = q.take(5, 10, 250)
  t.equal(byBytes.length, 2, 'byte bound: two of 100 fit in 250')
  t.equal(q.take(5, 10, 50).length, 0, 'nothing fits in 50 bytes')
})

t.test('a large update is skipped in favour of smaller ones that fit', async t => {
  const q = queue()
  q.enqueue('small', 'small', 10)
  q.enqueue('large', 'large', 500)
  t.same(q.take(5, 10, 100), ['small'])
  t.ok(q.has('large'), 'the large update waits for a message with room')
})

t.test('past maxEntries the most transmitted update is dropped', async t => {
  const q = queue(2)
  q.enqueue('a', 'a', 10)
  q.take(5, 1, 1000)
  q.enqueue('b', 'b', 10)
  q.enqueue('c', 'c', 10)
  t.equal(q.size, 2)
  t.notOk(q.has('a'), 'a had been sent once already')
  t.ok(q.has('b'))
  t.ok(q.has('c'))
})
