import t from 'tap'
import { parseVersion } from '../../lib/clock/version.js'
import { MemoryKv, TEST_LIMITS, startApi } from './fixtures/harness.js'

interface Page { items: { key: string; value: string; version: string }[]; next: string | null }

t.test('scan pages through a prefix with the next cursor until next is null', async t => {
  const kv = new MemoryKv()
  const api = await startApi(t, { kv })
  const keys = ['user/1', 'user/2', 'user/3', 'user/4', 'user/5', 'zebra']
  for (const key of keys) await fetch(`${api.url}/kv/${encodeURIComponent(key)}`, { method: 'PUT', body: `v:${key}` })

  const seen: string[] = []
  let after = ''
  for (let pageNumber = 0; pageNumber < 10; pageNumber++) {
    const res = await fetch(`${api.url}/kv?prefix=${encodeURIComponent('user/')}&limit=2&after=${encodeURIComponent(after)}`)
    t.equal(res.status, 200)
    const page = await res.json() as Page
    for (const item of page.items) {
      seen.push(item.key)
      t.equal(Buffer.from(item.value, 'base64').toString(), `v:${item.key}`, 'values are base64 of the bytes')
      t.doesNotThrow(() => parseVersion(item.version))
    }
    if (page.next === null) break
    after = page.next
  }
  t.same(seen, keys.slice(0, 5), 'every prefixed key once, in order, and nothing else')
})

t.test('scan without limit uses the default page size', async t => {
  const api = await startApi(t)
  for (let i = 0; i < TEST_LIMITS.defaultScanLimit + 2; i++) await fetch(`${api.url}/kv/k${i}`, { method: 'PUT', body: 'v' })
  const page = await (await fetch(`${api.url}/kv`)).json() as Page
  t.equal(page.items.length, TEST_LIMITS.defaultScanLimit)
  t.type(page.next, 'string')
})

t.test('scan limits outside 1..maxScanLimit and unknown parameters answer 400', async t => {
  const api = await startApi(t)
  for (const query of ['limit=0', `limit=${TEST_LIMITS.maxScanLimit + 1}`, 'limit=ten', 'limit=-1', 'cursor=x']) {
    const res = await fetch(`${api.url}/kv?${query}`)
    t.equal(res.status, 400, query)
    t.type((await res.json() as { error: unknown }).error, 'string')
  }
  t.equal((await fetch(`${api.url}/kv?limit=${TEST_LIMITS.maxScanLimit}`)).status, 200)
})

t.test('a scan prefix longer than maxKeyBytes answers 414', async t => {
  const api = await startApi(t)
  const res = await fetch(`${api.url}/kv?prefix=${'p'.repeat(TEST_LIMITS.maxKeyBytes + 1)}`)
  t.equal(res.status, 414)
})
