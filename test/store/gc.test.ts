import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { TombstoneCollector, type CollectedKind, type TombstoneCollectorOptions } from '../../lib/store/gc.js'
import type { KvStore } from '../../lib/store/kv-store.js'
import { hlcAt, openTestStore, put, text, tombstone, WALL_MS } from './fixture.js'

const GRACE_MS = 60_000

function collector(store: KvStore, options: Partial<TombstoneCollectorOptions> = {}): TombstoneCollector {
  return new TombstoneCollector(store, { intervalMs: 60_000, batchSize: 100, tombstoneGraceMs: GRACE_MS, nowMs: () => WALL_MS, heldByEveryReplica: () => true, ...options })
}

t.test('tombstones are collected once older than the grace period, and only then', async t => {
  const store = await openTestStore(t)
  await store.applyMany([
    { key: 'old', record: tombstone(hlcAt(WALL_MS - GRACE_MS)) },
    { key: 'young', record: tombstone(hlcAt(WALL_MS - GRACE_MS + 1)) },
    { key: 'live', record: put('v', hlcAt(WALL_MS - 10 * GRACE_MS)) },
  ])
  const gc = collector(store)
  t.same(await gc.sweepOnce(WALL_MS), { tombstones: 1, expired: 0, waiting: 0 })
  t.equal(store.get('old'), undefined)
  t.ok(store.get('young'), 'a tombstone inside the grace period is kept')
  t.equal(text(store.get('live')), 'v', 'an old live record is never collected')
  t.same(await gc.sweepOnce(WALL_MS + 1), { tombstones: 1, expired: 0, waiting: 0 })
  t.equal(store.get('young'), undefined)
  t.same(gc.totals(), { tombstones: 2, expired: 0, waiting: 0 })
})

t.test('a tombstone past the grace stays until every replica is known to hold it', async t => {
  const store = await openTestStore(t)
  await store.applyMany([
    { key: 'held-everywhere', record: tombstone(hlcAt(WALL_MS - 2 * GRACE_MS)) },
    { key: 'not-yet', record: tombstone(hlcAt(WALL_MS - 2 * GRACE_MS)) },
    { key: 'expired-not-yet', record: { ...put('v', hlcAt(WALL_MS - 3 * GRACE_MS)), expiresAtMs: WALL_MS - 2 * GRACE_MS } },
  ])
  const asked: string[] = []
  const gc = collector(store, {
    heldByEveryReplica: (key) => { asked.push(key); return key === 'held-everywhere' },
    recordHash: (key) => BigInt(key.length),
  })
  t.same(await gc.sweepOnce(WALL_MS), { tombstones: 1, expired: 0, waiting: 2 })
  t.equal(gc.waitingDigest(), BigInt('not-yet'.length) ^ BigInt('expired-not-yet'.length), 'the waiting records\' hashes, for a digest of what replicas will agree on')
  t.equal(store.get('held-everywhere'), undefined)
  t.ok(store.get('not-yet'), 'however old, kept while a replica may lack it')
  t.ok(store.get('expired-not-yet'), 'an expired record likewise')
  t.same(asked.sort(), ['expired-not-yet', 'held-everywhere', 'not-yet'], 'asked only about records past their grace')
})

t.test('expired records are collected once the grace period has passed after their expiry', async t => {
  const store = await openTestStore(t)
  await store.applyMany([
    { key: 'long-expired', record: put('v', hlcAt(WALL_MS - 2 * GRACE_MS), undefined, WALL_MS - GRACE_MS) },
    { key: 'just-expired', record: put('v', hlcAt(WALL_MS - 2 * GRACE_MS), undefined, WALL_MS - 1) },
  ])
  const gc = collector(store)
  t.same(await gc.sweepOnce(WALL_MS), { tombstones: 0, expired: 1, waiting: 0 })
  t.equal(store.get('long-expired'), undefined)
  t.ok(store.get('just-expired'), 'kept through the grace period so it keeps hiding older versions elsewhere')
})

t.test('a newer write that lands between the walk and the delete survives', async t => {
  const store = await openTestStore(t)
  await store.apply('k', tombstone(hlcAt(WALL_MS - 2 * GRACE_MS)))
  const deleteIfVersion = store.deleteIfVersion.bind(store)
  store.deleteIfVersion = async candidates => {
    await store.apply('k', put('rewritten', hlcAt(WALL_MS)))
    return deleteIfVersion(candidates)
  }
  const gc = collector(store)
  t.same(await gc.sweepOnce(WALL_MS), { tombstones: 0, expired: 0, waiting: 0 })
  t.equal(text(store.get('k')), 'rewritten')
})

t.test('deleteIfVersion removes only records still at the given version', async t => {
  const store = await openTestStore(t)
  const old = tombstone(hlcAt(WALL_MS, 1))
  await store.apply('k', old)
  await store.apply('k', put('newer', hlcAt(WALL_MS, 2)))
  await store.apply('gone', old)
  t.same(await store.deleteIfVersion([{ key: 'k', version: old.version }, { key: 'gone', version: old.version }, { key: 'missing', version: old.version }]), [false, true, false])
  t.equal(text(store.get('k')), 'newer')
  t.equal(store.get('gone'), undefined)
})

t.test('steps walk at most batchSize records and resume where they left off', async t => {
  const store = await openTestStore(t)
  await store.applyMany(['a', 'b', 'c', 'd', 'e'].map(key => ({ key, record: tombstone(hlcAt(WALL_MS - 2 * GRACE_MS)) })))
  const gc = collector(store, { batchSize: 2 })
  const steps = [await gc.step(WALL_MS), await gc.step(WALL_MS), await gc.step(WALL_MS)]
  t.same(steps.map(s => [s.scanned, s.tombstones, s.wrapped]), [[2, 2, false], [2, 2, false], [1, 1, true]])
  t.equal(store.stats().keys, 0)
})

t.test('collections are reported per kind for metrics', async t => {
  const store = await openTestStore(t)
  await store.applyMany([
    { key: 't1', record: tombstone(hlcAt(WALL_MS - 2 * GRACE_MS)) },
    { key: 't2', record: tombstone(hlcAt(WALL_MS - 2 * GRACE_MS)) },
    { key: 'x1', record: put('v', hlcAt(WALL_MS - 3 * GRACE_MS), undefined, WALL_MS - 2 * GRACE_MS) },
  ])
  const reported: [CollectedKind, number][] = []
  const gc = collector(store, { onCollected: (kind, count) => reported.push([kind, count]) })
  await gc.sweepOnce(WALL_MS)
  t.same(reported, [['tombstone', 2], ['expired', 1]])
})

t.test('the background sweep collects on its own and stops when asked', async t => {
  const store = await openTestStore(t)
  await store.apply('old', tombstone(hlcAt(WALL_MS - 2 * GRACE_MS)))
  const gc = collector(store, { intervalMs: 10, batchSize: 1 })
  gc.start()
  t.teardown(() => gc.stop())
  for (let i = 0; i < 500 && store.get('old') !== undefined; i++) await sleep(10)
  t.equal(store.get('old'), undefined)
  await gc.stop()
  await store.apply('later', tombstone(hlcAt(WALL_MS - 2 * GRACE_MS)))
  await sleep(50)
  t.ok(store.get('later'), 'nothing is collected after stop()')
})

t.test('limits must be positive', async t => {
  const store = await openTestStore(t)
  t.throws(() => collector(store, { batchSize: 0 }), RangeError)
  t.throws(() => collector(store, { intervalMs: 0 }), RangeError)
  t.throws(() => collector(store, { tombstoneGraceMs: -1 }), RangeError)
})
