import t from 'tap'
import { isNodeId } from '../../lib/clock/version.js'
import { HybridLogicalClock } from '../../lib/clock/hlc.js'
import { StoreHighWaterMark } from '../../lib/store/high-water.js'
import { KvStore } from '../../lib/store/kv-store.js'
import { TEST_MAP_SIZE_BYTES } from './fixture.js'
import { systemClock } from '../../lib/runtime/clock.js'

async function withStore<T>(dataDir: string, use: (store: KvStore) => Promise<T>): Promise<T> {
  const store = await KvStore.open({ dataDir, mapSizeBytes: TEST_MAP_SIZE_BYTES })
  try {
    return await use(store)
  } finally {
    await store.close()
  }
}

t.test('the node id is created once and stays the same across reopen', async t => {
  const dataDir = t.testdir()
  const first = await withStore(dataDir, store => store.identity.nodeId())
  t.ok(isNodeId(first), `${first} is 16 lowercase hex characters`)
  const again = await withStore(dataDir, async store => [await store.identity.nodeId(), await store.identity.nodeId()])
  t.same(again, [first, first])
  const other = await withStore(t.testdir(), store => store.identity.nodeId())
  t.not(other, first, 'another data dir is another node')
})

t.test('the incarnation goes up by one at every start', async t => {
  const dataDir = t.testdir()
  const loads = []
  for (let start = 0; start < 3; start++) loads.push(await withStore(dataDir, store => store.identity.load()))
  t.same(loads.map(l => l.incarnation), [1, 2, 3])
  t.equal(new Set(loads.map(l => l.id)).size, 1, 'same id each time')
})

t.test('the clock ceiling persists in meta and never goes down', async t => {
  const dataDir = t.testdir()
  await withStore(dataDir, async store => {
    const highWater = new StoreHighWaterMark(store)
    t.equal(highWater.load(), 0, 'nothing saved yet')
    await highWater.save(5_000)
    await highWater.save(3_000)
    t.equal(highWater.load(), 5_000)
    await t.rejects(highWater.save(-1), TypeError)
  })
  t.equal(await withStore(dataDir, async store => new StoreHighWaterMark(store).load()), 5_000, 'still there after reopen')
})

t.test('a clock on the store issues ticks above those of the previous run even when the wall clock went back', async t => {
  const dataDir = t.testdir()
  let wallMs = 1_717_000_000_000
  const run = (ticks: number) => withStore(dataDir, async store => {
    const clock = new HybridLogicalClock({ nowMs: () => wallMs, maxSkewMs: 500, highWater: new StoreHighWaterMark(store), clock: systemClock })
    await clock.start()
    try {
      return Array.from({ length: ticks }, () => clock.now())
    } finally {
      await clock.stop()
    }
  })
  const before = await run(10)
  // Within clock.maxSkewMs: a clock set back further refuses to issue ticks until it catches up
  // (test/clock/hlc.test.ts), rather than hand out ticks far ahead of its wall clock.
  wallMs -= 200
  const after = await run(1)
  t.ok((after[0] ?? 0) > Math.max(...before), 'first tick of the new run is above every tick of the old one')
})
