import t from 'tap'
import { FakeClock } from '../../lib/runtime/clock.js'
import { KvStore } from '../../lib/store/kv-store.js'
import { ChangeLogTrimmer, trimIntervalMs } from '../../lib/watch/trimmer.js'
import { TEST_MAP_SIZE_BYTES, WALL_MS, hlcAt, put } from '../store/fixture.js'

/** The background trim keeps the change log to watch.retention, driven by the injected clock. */

t.test('entries older than the retention are trimmed in the background, in batches', async t => {
  const clock = new FakeClock(WALL_MS)
  const store = await KvStore.open({ dataDir: t.testdir(), mapSizeBytes: TEST_MAP_SIZE_BYTES, nowMs: () => clock.nowMs() })
  t.teardown(() => store.close())
  for (let i = 0; i < 25; i++) await store.apply(`k${i}`, put('v', hlcAt(WALL_MS, i + 1)))
  const retentionMs = 10_000
  const trims: { removed: number; entries: number }[] = []
  const trimmer = new ChangeLogTrimmer({ log: store.changeLog, retentionMs, clock, batchSize: 10, onTrimmed: (removed, entries) => trims.push({ removed, entries }) })
  trimmer.start()
  t.equal(trimIntervalMs(retentionMs), 2500, 'a quarter of the retention')
  // One trim per interval of simulated time; each finishes (LMDB commits) before the next is due.
  const nextTrim = async (): Promise<void> => {
    const count = trims.length
    await clock.advance(trimIntervalMs(retentionMs))
    const deadline = Date.now() + 5000
    while (trims.length === count) {
      if (Date.now() > deadline) throw new Error('no trim ran')
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
  }
  await nextTrim()
  t.same(trims, [{ removed: 0, entries: 25 }], 'nothing is older than the retention yet')
  while (clock.nowMs() <= WALL_MS + retentionMs) await nextTrim()
  await trimmer.stop()
  t.same(trims[trims.length - 1], { removed: 25, entries: 0 }, 'everything past the retention went (in three batches of at most 10)')
  t.ok(store.changeLog.horizonMs > WALL_MS, 'the horizon moved past the trimmed entries')
  const before = trims.length
  await clock.advance(10 * retentionMs)
  t.equal(trims.length, before, 'no trim after stop')
})
