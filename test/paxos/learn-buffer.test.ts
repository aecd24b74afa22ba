import t from 'tap'
import type { NodeId } from '../../lib/clock/version.js'
import { LearnBuffer } from '../../lib/paxos/learn-buffer.js'
import { FakeClock } from '../../lib/runtime/clock.js'
import type { StoredRecord } from '../../lib/store/record.js'

const P = 'aaaaaaaaaaaaaaaa' as NodeId
const rec = (hlc: number): StoredRecord => ({ value: Buffer.from(String(hlc)), version: { hlc, node: P }, strong: true })

function setUp(maxRecords = 100): { clock: FakeClock; writes: string[][]; buffer: LearnBuffer; fail: { next: boolean } } {
  const clock = new FakeClock(1000)
  const writes: string[][] = []
  const fail = { next: false }
  const buffer = new LearnBuffer({
    write: async (records) => {
      if (fail.next) {
        fail.next = false
        throw new Error('the store is closing')
      }
      writes.push(records.map(({ key }) => key))
    },
    lingerMs: 10,
    maxRecords,
    clock,
  })
  return { clock, writes, buffer, fail }
}

t.test('values learned within the linger share one write, which goes when it ends', async t => {
  const { clock, writes, buffer } = setUp()
  const first = buffer.add([{ key: 'a', record: rec(1) }])
  clock.advance(5)
  const second = buffer.add([{ key: 'b', record: rec(2) }, { key: 'c', record: rec(3) }])
  t.same(writes, [], 'nothing written before the linger ends')
  clock.advance(5)
  await Promise.all([first, second])
  t.same(writes, [['a', 'b', 'c']], 'one write of all three, when the first one\'s linger ended')
  buffer.add([{ key: 'd', record: rec(4) }])
  clock.advance(10)
  await new Promise((resolve) => setImmediate(resolve))
  t.same(writes.at(-1), ['d'], 'a later value starts a linger of its own')
})

t.test('a full buffer writes at once', async t => {
  const { writes, buffer } = setUp(2)
  await buffer.add([{ key: 'a', record: rec(1) }, { key: 'b', record: rec(2) }])
  t.same(writes, [['a', 'b']])
})

t.test('flush writes what is gathered now (shutdown), and a failed write is reported to every waiter', async t => {
  const { clock, writes, buffer, fail } = setUp()
  const pending = buffer.add([{ key: 'a', record: rec(1) }])
  await buffer.flush()
  await pending
  t.same(writes, [['a']])
  clock.advance(100)
  t.equal(writes.length, 1, 'the linger timer was cleared: no second, empty write')
  fail.next = true
  const failing = [buffer.add([{ key: 'b', record: rec(2) }]), buffer.add([{ key: 'c', record: rec(3) }])]
  clock.advance(10)
  for (const one of failing) await t.rejects(one, /the store is closing/)
  await t.resolves(buffer.flush(), 'nothing gathered: nothing to write')
})
