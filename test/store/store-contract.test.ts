import t, { type Test } from 'tap'
import { emptyStoreState, MemoryStore, type MemoryStoreState } from '../../lib/sim/memory-store.js'
import { KvStore } from '../../lib/store/kv-store.js'
import type { RecordChange } from '../../lib/store/kv-store.js'
import type { SegmentIndexOptions } from '../../lib/store/segment-index.js'
import type { Store } from '../../lib/store/store.js'
import { hlcAt, NODE_A, NODE_B, put, TEST_MAP_SIZE_BYTES, text, tombstone, WALL_MS } from './fixture.js'

/**
 * The Store contract, run against both implementations: the daemon's KvStore (LMDB) and the
 * simulator's MemoryStore. A simulation is only worth its seeds while the two agree.
 */

/** A toy segment mapping: the key's first character code modulo 7. */
const SEGMENTS: SegmentIndexOptions = { segmentOf: (key) => key.charCodeAt(0) % 7, scheme: 'test mod 7' }

/** The stores' clock for arrival times: tests move it by hand. */
const clock = { nowMs: WALL_MS }
const nowMs = (): number => clock.nowMs

const implementations: Record<string, (t: Test) => Promise<Store>> = {
  KvStore: async (t) => {
    const store = await KvStore.open({ dataDir: t.testdir(), mapSizeBytes: TEST_MAP_SIZE_BYTES, segments: SEGMENTS, nowMs })
    t.teardown(() => store.close())
    return store
  },
  MemoryStore: async () => new MemoryStore(emptyStoreState(), SEGMENTS, nowMs),
}

for (const [name, open] of Object.entries(implementations)) {
  t.test(`${name}: keeps when a record that may be collected arrived, and forgets it when a live value replaces it`, async t => {
    const store = await open(t)
    clock.nowMs = WALL_MS + 1000
    t.equal(store.arrivalMs('never'), WALL_MS, 'unknown: counts as arrived when the store opened')
    await store.apply('gone', { value: null, version: { hlc: hlcAt(WALL_MS), node: NODE_A } })
    clock.nowMs = WALL_MS + 2000
    t.equal(store.arrivalMs('gone'), WALL_MS + 1000, 'a tombstone: when it was applied')
    await store.apply('gone', { value: new Uint8Array([1]), version: { hlc: hlcAt(WALL_MS + 1), node: NODE_A } })
    t.equal(store.arrivalMs('gone'), WALL_MS, 'overwritten by a live value: forgotten')
    await store.apply('ttl', { value: new Uint8Array([1]), version: { hlc: hlcAt(WALL_MS), node: NODE_A }, expiresAtMs: WALL_MS + 5000 })
    t.equal(store.arrivalMs('ttl'), WALL_MS + 2000, 'a record with a TTL too')
    clock.nowMs = WALL_MS
  })

  t.test(`${name}: last writer wins, ties are no-ops, change events carry the segment`, async t => {
    const store = await open(t)
    const changes: RecordChange[] = []
    store.onChange((change) => changes.push(change))
    t.match(await store.apply('k', put('one', hlcAt(WALL_MS))), { applied: true })
    t.match(await store.apply('k', put('older', hlcAt(WALL_MS - 1))), { applied: false })
    t.match(await store.apply('k', put('same', hlcAt(WALL_MS))), { applied: false }, 'an equal version is a no-op')
    t.match(await store.apply('k', put('tie', hlcAt(WALL_MS), NODE_B)), { applied: true }, 'the node id breaks ties')
    t.equal(text(store.get('k')), 'tie')
    t.same(changes.map((c) => [c.key, text(c.previous), text(c.current), c.segment]), [
      ['k', undefined, 'one', 'k'.charCodeAt(0) % 7],
      ['k', 'one', 'tie', 'k'.charCodeAt(0) % 7],
    ])
    const outcomes = await store.applyMany([{ key: 'x', record: put('1', hlcAt(WALL_MS, 2)) }, { key: 'x', record: put('0', hlcAt(WALL_MS, 1)) }])
    t.same(outcomes.map((o) => o.applied), [true, false], 'later entries of one call see earlier ones')
  })

  t.test(`${name}: scans skip dead records, rawRange keeps them, in UTF-8 byte order`, async t => {
    const store = await open(t)
    await store.applyMany([
      { key: 'a/2', record: put('2', hlcAt(WALL_MS)) },
      { key: 'a/1', record: put('1', hlcAt(WALL_MS)) },
      { key: 'a/ä', record: put('ä', hlcAt(WALL_MS)) },
      { key: 'a/gone', record: tombstone(hlcAt(WALL_MS)) },
      { key: 'a/expired', record: put('e', hlcAt(WALL_MS), NODE_A, WALL_MS - 1) },
      { key: 'b', record: put('b', hlcAt(WALL_MS)) },
    ])
    const page = store.scan({ prefix: 'a/', limit: 2, nowMs: WALL_MS })
    t.same(page.items.map((i) => i.key), ['a/1', 'a/2'])
    const rest = store.scan({ prefix: 'a/', after: page.next ?? undefined, limit: 10, nowMs: WALL_MS })
    t.same(rest.items.map((i) => i.key), ['a/ä'])
    t.equal(rest.next, null)
    t.same([...store.rawRange({ prefix: 'a/' })].map((i) => i.key), ['a/1', 'a/2', 'a/expired', 'a/gone', 'a/ä'])
    t.same([...store.rawRange({ after: 'a/gone', limit: 2 })].map((i) => i.key), ['a/ä', 'b'])
    t.equal(store.stats().keys, 6)
  })

  t.test(`${name}: deleteIfVersion removes only the version examined, and the segment entry with it`, async t => {
    const store = await open(t)
    await store.apply('k', tombstone(hlcAt(WALL_MS)))
    await store.apply('n', put('new', hlcAt(WALL_MS, 5)))
    const segment = SEGMENTS.segmentOf('k')
    t.same(store.segments?.entries(segment).map((e) => e.key), ['k'])
    t.same(await store.deleteIfVersion([{ key: 'k', version: { hlc: hlcAt(WALL_MS), node: NODE_A } }, { key: 'n', version: { hlc: hlcAt(WALL_MS), node: NODE_A } }]), [true, false])
    t.equal(store.get('k'), undefined)
    t.equal(text(store.get('n')), 'new')
    t.same(store.segments?.entries(segment), [])
  })

  t.test(`${name}: identity and meta`, async t => {
    const store = await open(t)
    const first = await store.identity.load()
    const second = await store.identity.load()
    t.equal(second.id, first.id)
    t.equal(second.incarnation, first.incarnation + 1)
    t.equal(await store.meta.update('lastPeerContactMs', () => 42), 42)
    t.equal(store.meta.read('lastPeerContactMs'), 42)
  })
}

t.test('MemoryStore: what was committed survives a crash; the dead store writes nothing more', async t => {
  const state: MemoryStoreState = emptyStoreState()
  const before = new MemoryStore(state, SEGMENTS, nowMs)
  await before.apply('k', put('kept', hlcAt(WALL_MS)))
  const { id } = await before.identity.load()
  before.crash()
  await t.rejects(before.apply('late', put('lost', hlcAt(WALL_MS))), /closed|crashed/)
  const after = new MemoryStore(state, SEGMENTS, nowMs)
  t.equal(text(after.get('k')), 'kept')
  t.equal(after.get('late'), undefined)
  t.equal((await after.identity.load()).id, id, 'the same node id after restart')
  t.same(after.segments.entries(SEGMENTS.segmentOf('k')).map((e) => e.key), ['k'])
})
