import t from 'tap'
import { ByteBudget } from '../../lib/api/binary/budget.js'

t.test('a connection budget reserves in its node budget too, and fits only within both', async t => {
  const node = new ByteBudget(100)
  const a = new ByteBudget(60, node)
  const b = new ByteBudget(60, node)
  t.ok(a.tryReserve(60))
  t.notOk(a.tryReserve(1), 'a is full')
  t.ok(b.tryReserve(40))
  t.notOk(b.tryReserve(1), 'b has room of its own but the node is full')
  t.notOk(b.parentFits(1))
  t.equal(node.usedBytes, 100)
  a.release(10)
  t.ok(b.parentFits(10))
  t.equal(node.usedBytes, 90)
})

t.test('reserve goes over the limit for memory already held; close gives everything back once', async t => {
  const node = new ByteBudget(100)
  const a = new ByteBudget(10, node)
  a.reserve(50)
  t.equal(a.usedBytes, 50)
  t.notOk(a.fits(0), 'over its limit, it fits nothing')
  a.close()
  t.equal(node.usedBytes, 0)
  a.release(50)
  a.reserve(5)
  t.equal(node.usedBytes, 0, 'a closed budget ignores later calls')
})

t.test('waiters are called once, after a release, outside the releasing call', async t => {
  const node = new ByteBudget(100)
  const a = new ByteBudget(100, node)
  let calls = 0
  node.whenReleased(() => calls++)
  a.reserve(10)
  a.release(5)
  t.equal(calls, 0, 'not within release')
  await Promise.resolve()
  t.equal(calls, 1)
  a.release(5)
  await Promise.resolve()
  t.equal(calls, 1, 'once only')
  t.throws(() => a.release(1), RangeError, 'releasing more than is held is a bug')
})
