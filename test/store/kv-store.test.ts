import t from 'tap'
import { KvStore, type RecordChange } from '../../lib/store/kv-store.js'
import { BadRequestError } from '../../lib/errors.js'
import { MAX_KEY_BYTES } from '../../lib/store/keys.js'
import { hlcAt, NODE_A, NODE_B, openTestStore, put, TEST_MAP_SIZE_BYTES, text, tombstone, WALL_MS } from './fixture.js'

t.test('a newer version replaces the stored record and reports the previous one', async t => {
  const store = await openTestStore(t)
  t.same(await store.apply('k', put('one', hlcAt(WALL_MS))), { applied: true })
  const outcome = await store.apply('k', put('two', hlcAt(WALL_MS, 1)))
  t.equal(outcome.applied, true)
  t.equal(text(outcome.previous), 'one')
  t.equal(text(store.get('k')), 'two')
})

t.test('an older version is ignored', async t => {
  const store = await openTestStore(t)
  await store.apply('k', put('new', hlcAt(WALL_MS, 5)))
  const outcome = await store.apply('k', put('old', hlcAt(WALL_MS, 4)))
  t.equal(outcome.applied, false)
  t.equal(text(outcome.previous), 'new')
  t.equal(text(store.get('k')), 'new')
})

t.test('equal hlc readings are ordered by node id', async t => {
  const store = await openTestStore(t)
  await store.apply('k', put('from b', hlcAt(WALL_MS), NODE_B))
  t.equal((await store.apply('k', put('from a', hlcAt(WALL_MS), NODE_A))).applied, false, 'a < b')
  t.equal(text(store.get('k')), 'from b')
})

t.test('applying the same version again is an idempotent no-op', async t => {
  const store = await openTestStore(t)
  const record = put('v', hlcAt(WALL_MS))
  await store.apply('k', record)
  const again = await store.apply('k', record)
  t.equal(again.applied, false)
  t.same(store.get('k'), record)
  t.equal(store.stats().keys, 1)
})

t.test('a newer tombstone deletes and an older put cannot resurrect the key', async t => {
  const store = await openTestStore(t)
  await store.apply('k', put('v', hlcAt(WALL_MS, 1)))
  t.equal((await store.apply('k', tombstone(hlcAt(WALL_MS, 2)))).applied, true)
  t.equal((await store.apply('k', put('stale', hlcAt(WALL_MS, 1), NODE_B))).applied, false)
  t.same(store.get('k'), tombstone(hlcAt(WALL_MS, 2)), 'get returns the raw tombstone')
  t.equal((await store.apply('k', put('later', hlcAt(WALL_MS, 3)))).applied, true, 'a newer put wins over the tombstone')
  t.equal(text(store.get('k')), 'later')
})

t.test('values round-trip as bytes and versions as {hlc, node}, expiry included', async t => {
  const store = await openTestStore(t)
  const bytes = Uint8Array.from([0, 255, 1, 128, 0])
  const record = put(bytes, hlcAt(WALL_MS, 42), NODE_B, WALL_MS + 1000)
  await store.apply('bin', record)
  const stored = store.get('bin')
  t.ok(stored?.value instanceof Uint8Array)
  t.same([...(stored?.value ?? [])], [...bytes])
  t.same(stored?.version, { hlc: hlcAt(WALL_MS, 42), node: NODE_B })
  t.equal(stored?.expiresAtMs, WALL_MS + 1000)
  await store.apply('empty', put(new Uint8Array(0), hlcAt(WALL_MS)))
  t.equal(store.get('empty')?.value?.length, 0, 'an empty value is a value, not a tombstone')
})

t.test('values read earlier stay intact after later reads, large ones included', async t => {
  const store = await openTestStore(t)
  const big = Buffer.alloc(200_000, 7)
  await store.applyMany([
    { key: 'a', record: put('first', hlcAt(WALL_MS)) },
    { key: 'big', record: put(big, hlcAt(WALL_MS)) },
    { key: 'c', record: put('third', hlcAt(WALL_MS)) },
  ])
  const a = store.get('a')
  const b = store.get('big')
  store.get('c')
  const page = store.scan({ prefix: '', limit: 10, nowMs: WALL_MS })
  store.get('c')
  t.equal(text(a), 'first')
  t.ok(b?.value && Buffer.from(b.value).equals(big))
  t.same(page.items.map(item => text(item.record)), ['first', big.toString('utf8'), 'third'])
})

t.test('writes survive closing and reopening the store', async t => {
  const dataDir = t.testdir()
  const first = await KvStore.open({ dataDir, mapSizeBytes: TEST_MAP_SIZE_BYTES })
  await first.apply('kept', put('value', hlcAt(WALL_MS)))
  await first.apply('gone', tombstone(hlcAt(WALL_MS)))
  await first.close()
  const second = await openTestStore(t, dataDir)
  t.equal(text(second.get('kept')), 'value')
  t.same(second.get('gone'), tombstone(hlcAt(WALL_MS)))
  t.equal(second.stats().keys, 2)
})

t.test('concurrent applies in one turn all land and each sees the winner so far', async t => {
  const store = await openTestStore(t)
  const outcomes = await Promise.all(Array.from({ length: 64 }, (_, i) => store.apply(`key-${i % 8}`, put(`v${i}`, hlcAt(WALL_MS, i)))))
  t.equal(outcomes.filter(o => o.applied).length, 64, 'each write was newer than the one before it for its key')
  for (let k = 0; k < 8; k++) t.equal(text(store.get(`key-${k}`)), `v${56 + k}`)
})

t.test('applyMany decides entries for the same key in order', async t => {
  const store = await openTestStore(t)
  const outcomes = await store.applyMany([
    { key: 'k', record: put('2', hlcAt(WALL_MS, 2)) },
    { key: 'k', record: put('1', hlcAt(WALL_MS, 1)) },
    { key: 'k', record: put('3', hlcAt(WALL_MS, 3)) },
  ])
  t.same(outcomes.map(o => [o.applied, text(o.previous)]), [[true, undefined], [false, '2'], [true, '2']])
  t.equal(text(store.get('k')), '3')
  t.same(await store.applyMany([]), [])
})

t.test('listeners hear each committed change with the record it replaced', async t => {
  const store = await openTestStore(t)
  const changes: RecordChange[] = []
  const unsubscribe = store.onChange(change => changes.push(change))
  await store.apply('k', put('a', hlcAt(WALL_MS, 1)))
  await store.apply('k', put('old', hlcAt(WALL_MS, 0)))
  await store.apply('k', tombstone(hlcAt(WALL_MS, 2)))
  t.same(changes.map(c => [c.key, text(c.previous), text(c.current)]), [['k', undefined, 'a'], ['k', 'a', null]])
  unsubscribe()
  await store.apply('k', put('b', hlcAt(WALL_MS, 3)))
  t.equal(changes.length, 2, 'no calls after unsubscribing')
})

t.test('keys the store cannot hold are refused with a 400 error', async t => {
  const store = await openTestStore(t)
  await t.rejects(store.apply('', put('v', hlcAt(WALL_MS))), BadRequestError)
  await t.rejects(store.apply('x'.repeat(MAX_KEY_BYTES + 1), put('v', hlcAt(WALL_MS))), BadRequestError)
  await t.rejects(store.apply('lone \uD800 surrogate', put('v', hlcAt(WALL_MS))), BadRequestError)
  await t.rejects(store.apply('\uDFFF', put('v', hlcAt(WALL_MS))), BadRequestError, 'a key of one lone surrogate')
  await store.apply('\uFFFD is fine when written', put('v', hlcAt(WALL_MS)))
  t.equal(text(store.get('\uFFFD is fine when written')), 'v', 'a real U+FFFD is a key like any other')
  t.throws(() => store.get(''), BadRequestError)
  t.equal((await store.apply('x'.repeat(MAX_KEY_BYTES), put('v', hlcAt(WALL_MS)))).applied, true, 'the longest allowed key works')
  t.equal((await store.apply('nul\u0000inside', put('v', hlcAt(WALL_MS)))).applied, true, 'NUL is an ordinary key character')
  t.equal(text(store.get('nul\u0000inside')), 'v')
})

t.test('malformed records are refused before anything is written', async t => {
  const store = await openTestStore(t)
  const bad = { value: Buffer.from('v'), version: { hlc: 1.5, node: NODE_A } }
  await t.rejects(store.applyMany([{ key: 'good', record: put('v', hlcAt(WALL_MS)) }, { key: 'bad', record: bad }]), TypeError)
  t.equal(store.get('good'), undefined)
})

t.test('stats count records, dead ones included, and the pages they use', async t => {
  const store = await openTestStore(t)
  t.same(store.stats(), { keys: 0, sizeBytes: 0 })
  await store.apply('a', put('v', hlcAt(WALL_MS)))
  await store.apply('b', tombstone(hlcAt(WALL_MS)))
  const stats = store.stats()
  t.equal(stats.keys, 2)
  t.ok(stats.sizeBytes > 0)
})

t.test('a closed store refuses further use and can be closed twice', async t => {
  const store = await KvStore.open({ dataDir: t.testdir(), mapSizeBytes: TEST_MAP_SIZE_BYTES })
  await store.close()
  await store.close()
  t.throws(() => store.get('k'))
  await t.rejects(store.apply('k', put('v', hlcAt(WALL_MS))))
})

t.test('applies from separate calls in one turn share one LMDB transaction, each with its own outcome (issue 15)', async t => {
  const store = await openTestStore(t)
  const kv = (store as unknown as { kv: { transaction: (action: () => unknown) => Promise<unknown> } }).kv
  let transactions = 0
  const transaction0 = kv.transaction.bind(kv)
  kv.transaction = (action) => { transactions++; return transaction0(action) }
  await store.apply('k', put('old', hlcAt(WALL_MS, 5)))
  transactions = 0
  const [first, second, third] = await Promise.all([
    store.apply('k', put('older', hlcAt(WALL_MS, 4))),
    store.applyMany([{ key: 'a', record: put('a', hlcAt(WALL_MS)) }, { key: 'k', record: put('new', hlcAt(WALL_MS, 6)) }]),
    store.apply('k', put('newest', hlcAt(WALL_MS, 7))),
  ])
  t.equal(transactions, 1, 'one transaction for the three calls')
  t.same([first?.applied, text(first?.previous)], [false, 'old'])
  t.same(second?.map(o => [o.applied, text(o.previous)]), [[true, undefined], [true, 'old']])
  t.same([third?.applied, text(third?.previous)], [true, 'new'], 'a later call in the turn sees what an earlier one wrote')
  t.equal(text(store.get('k')), 'newest')
})

t.test('a call that fails in a shared transaction fails alone and writes nothing', async t => {
  const store = await openTestStore(t)
  await store.apply('corrupt', put('v', hlcAt(WALL_MS)))
  const kv = (store as unknown as { kv: { put: (key: Uint8Array, value: Uint8Array) => Promise<boolean> } }).kv
  await kv.put(Buffer.from('corrupt'), Buffer.from([0xc1]))
  const [good, bad] = await Promise.allSettled([
    store.apply('good', put('v', hlcAt(WALL_MS))),
    store.applyMany([{ key: 'fine', record: put('v', hlcAt(WALL_MS)) }, { key: 'corrupt', record: put('w', hlcAt(WALL_MS, 1)) }]),
  ])
  t.equal(good?.status, 'fulfilled')
  t.equal(bad?.status, 'rejected')
  t.match((bad as PromiseRejectedResult).reason.message, /corrupt/)
  t.equal(text(store.get('good')), 'v')
  t.equal(store.get('fine'), undefined, 'nothing of the failed call was written')
})

t.test('an apply accepted before close still commits', async t => {
  const store = await KvStore.open({ dataDir: t.testdir(), mapSizeBytes: TEST_MAP_SIZE_BYTES })
  const applied = store.apply('k', put('v', hlcAt(WALL_MS)))
  await store.close()
  t.same(await applied, { applied: true })
  const reopened = await openTestStore(t, store.dataDir)
  t.equal(text(reopened.get('k')), 'v')
})

t.test('a change listener that throws fails the call it was told of, not the others of its turn', async t => {
  const store = await openTestStore(t)
  store.onChange(change => { if (change.key === 'bad') throw new Error('listener broke') })
  const [good, bad] = await Promise.allSettled([store.apply('good', put('v', hlcAt(WALL_MS))), store.apply('bad', put('v', hlcAt(WALL_MS)))])
  t.same(good?.status === 'fulfilled' ? good.value : undefined, { applied: true })
  t.match(bad?.status === 'rejected' ? (bad.reason as Error).message : '', /listener broke/)
  t.equal(text(store.get('bad')), 'v', 'the record itself was committed, as before')
})

t.test('isStrong tells a strong record from a plain one (and from none) without a decode', async t => {
  const store = await openTestStore(t)
  await store.applyMany([
    { key: 'plain', record: put('p', hlcAt(WALL_MS)) },
    { key: 'strong', record: { ...put('s', hlcAt(WALL_MS)), strong: true } },
    { key: 'gone', record: tombstone(hlcAt(WALL_MS)) },
  ])
  t.same(['plain', 'strong', 'gone', 'absent', 'é/ü'].map((key) => store.isStrong(key)), [false, true, false, false, false])
  t.equal(store.get('strong')?.strong, true, 'as get() says')
})
