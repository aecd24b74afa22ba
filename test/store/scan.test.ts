import t from 'tap'
import type { KvStore } from '../../lib/store/kv-store.js'
import { MAX_SKIPPED_PER_PAGE } from '../../lib/store/kv-store.js'
import { BadRequestError } from '../../lib/errors.js'
import { hlcAt, openTestStore, put, tombstone, WALL_MS } from './fixture.js'

/** Keys that trip up naive encodings: spaces, slashes, emoji, escapes, digits, high code points. */
const ODD_KEYS = [
  'a', 'a b', 'a/b', 'a/b/c', 'a\u0000', 'a\u007f', 'aa', 'a é', 'a 😀', 'a 😀/x',
  '0x00ff', '\\x00', '%2F', '10', '9', 'z', '\uFFFD', '\uE000', '😀', '😀😀', ' leading', 'trailing ',
]

/** UTF-8 byte order, which is what the store promises (not JS UTF-16 string order). */
function byteOrder(keys: readonly string[]): string[] {
  return [...keys].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)))
}

async function fill(store: KvStore, keys: readonly string[]): Promise<void> {
  await store.applyMany(keys.map((key, i) => ({ key, record: put(`v:${key}`, hlcAt(WALL_MS, i)) })))
}

function scanAll(store: KvStore, prefix: string, limit: number): { keys: string[]; pages: number } {
  const keys: string[] = []
  let after: string | undefined
  let pages = 0
  for (; pages < 1000; pages++) {
    const page = store.scan({ prefix, limit, nowMs: WALL_MS, ...(after === undefined ? {} : { after }) })
    keys.push(...page.items.map(item => item.key))
    if (page.next === null) return { keys, pages: pages + 1 }
    after = page.next
  }
  throw new Error('scan did not finish within 1000 pages')
}

t.test('a scan returns every key once in UTF-8 byte order, page by page', async t => {
  const store = await openTestStore(t)
  await fill(store, ODD_KEYS)
  const expected = byteOrder(ODD_KEYS)
  t.not(expected.join('|'), [...ODD_KEYS].sort().join('|'), 'byte order differs from UTF-16 order for these keys')
  for (const limit of [1, 3, 7, ODD_KEYS.length, 100]) {
    t.same(scanAll(store, '', limit).keys, expected, `limit ${limit}`)
  }
})

t.test('a prefix scan returns exactly the keys with that prefix', async t => {
  const store = await openTestStore(t)
  await fill(store, ODD_KEYS)
  for (const prefix of ['a', 'a ', 'a/', 'a 😀', '😀', '\\', 'nothing']) {
    const expected = byteOrder(ODD_KEYS.filter(key => key.startsWith(prefix)))
    t.same(scanAll(store, prefix, 2).keys, expected, `prefix ${JSON.stringify(prefix)}`)
  }
})

t.test('the after cursor is exclusive and may name a key that does not exist', async t => {
  const store = await openTestStore(t)
  await fill(store, ODD_KEYS)
  const all = byteOrder(ODD_KEYS)
  const page = store.scan({ prefix: '', after: 'a/b', limit: 3, nowMs: WALL_MS })
  t.same(page.items.map(item => item.key), all.slice(all.indexOf('a/b') + 1, all.indexOf('a/b') + 4))
  const between = store.scan({ prefix: 'a', after: 'a/bb', limit: 100, nowMs: WALL_MS })
  t.same(between.items.map(item => item.key), all.filter(key => key.startsWith('a') && Buffer.compare(Buffer.from(key), Buffer.from('a/bb')) > 0))
  const beforePrefix = store.scan({ prefix: 'a/', after: '0', limit: 100, nowMs: WALL_MS })
  t.same(beforePrefix.items.map(item => item.key), ['a/b', 'a/b/c'], 'a cursor before the prefix starts at the prefix')
  t.same(store.scan({ prefix: '', after: '😀😀', limit: 5, nowMs: WALL_MS }), { items: [], next: null })
})

t.test('next is null on the last page and a cursor otherwise', async t => {
  const store = await openTestStore(t)
  await fill(store, ['k1', 'k2', 'k3', 'k4'])
  t.equal(store.scan({ prefix: '', limit: 4, nowMs: WALL_MS }).next, null, 'a page that ends the range exactly')
  t.equal(store.scan({ prefix: '', limit: 3, nowMs: WALL_MS }).next, 'k3')
  t.same(store.scan({ prefix: 'none', limit: 3, nowMs: WALL_MS }), { items: [], next: null })
})

t.test('tombstones and expired records read as absent in a scan', async t => {
  const store = await openTestStore(t)
  await store.applyMany([
    { key: 'alive', record: put('v', hlcAt(WALL_MS)) },
    { key: 'deleted', record: tombstone(hlcAt(WALL_MS)) },
    { key: 'expired', record: put('v', hlcAt(WALL_MS), undefined, WALL_MS - 1) },
    { key: 'expiring', record: put('v', hlcAt(WALL_MS), undefined, WALL_MS + 1) },
  ])
  t.same(store.scan({ prefix: '', limit: 10, nowMs: WALL_MS }).items.map(item => item.key), ['alive', 'expiring'])
  t.same(store.scan({ prefix: '', limit: 10, nowMs: WALL_MS + 1 }).items.map(item => item.key), ['alive'], 'expiry is exclusive: at expiresAtMs it is gone')
  t.ok(store.get('deleted') && store.get('expired'), 'get still returns the raw records')
})

t.test('a page over many dead records returns early with a cursor instead of reading on', async t => {
  const store = await openTestStore(t)
  const dead = Array.from({ length: MAX_SKIPPED_PER_PAGE + 5 }, (_, i) => ({ key: `d${String(i).padStart(6, '0')}`, record: tombstone(hlcAt(WALL_MS)) }))
  await store.applyMany([...dead, { key: 'z', record: put('v', hlcAt(WALL_MS)) }])
  const first = store.scan({ prefix: '', limit: 10, nowMs: WALL_MS })
  t.same(first.items, [])
  t.equal(first.next, dead[MAX_SKIPPED_PER_PAGE - 1]?.key)
  const second = store.scan({ prefix: '', after: first.next ?? undefined, limit: 10, nowMs: WALL_MS })
  t.same(second.items.map(item => item.key), ['z'])
  t.equal(second.next, null)
})

t.test('rawRange walks every record, dead ones included, from a cursor', async t => {
  const store = await openTestStore(t)
  await store.applyMany([
    { key: 'p/1', record: put('v', hlcAt(WALL_MS)) },
    { key: 'p/2', record: tombstone(hlcAt(WALL_MS)) },
    { key: 'p/3', record: put('v', hlcAt(WALL_MS), undefined, WALL_MS - 1) },
    { key: 'q', record: put('v', hlcAt(WALL_MS)) },
  ])
  t.same([...store.rawRange()].map(entry => entry.key), ['p/1', 'p/2', 'p/3', 'q'])
  t.same([...store.rawRange({ prefix: 'p/', after: 'p/1', limit: 1 })].map(entry => entry.key), ['p/2'])
  t.same([...store.rawRange({ prefix: 'p/', after: 'p/1' })].map(entry => entry.key), ['p/2', 'p/3'])
})

t.test('bad scan arguments are refused with a 400 error', async t => {
  const store = await openTestStore(t)
  t.throws(() => store.scan({ prefix: '', limit: 0, nowMs: WALL_MS }), BadRequestError)
  t.throws(() => store.scan({ prefix: '', limit: 1.5, nowMs: WALL_MS }), BadRequestError)
  t.throws(() => store.scan({ prefix: '\uDC00', limit: 1, nowMs: WALL_MS }), BadRequestError)
})
