import t from 'tap'
import { MemoryKv, TEST_LIMITS, startApi } from './fixtures/harness.js'

const b64 = (text: string | Uint8Array) => Buffer.from(text).toString('base64')

async function postBatch(url: string, body: unknown, query = ''): Promise<Response> {
  return fetch(`${url}/batch${query}`, { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body), headers: { 'content-type': 'application/json' } })
}

t.test('a batch applies puts and deletes and answers one result per operation', async t => {
  const kv = new MemoryKv()
  const api = await startApi(t, { kv })
  await fetch(`${api.url}/kv/old`, { method: 'PUT', body: 'x' })
  const binary = Uint8Array.from({ length: 256 }, (_, i) => 255 - i)
  const res = await postBatch(api.url, {
    ops: [
      { op: 'put', key: 'a', value: b64('alpha') },
      { op: 'put', key: 'bin', value: b64(binary), ttl: 30 },
      { op: 'delete', key: 'old' },
    ],
    w: 'all',
  })
  t.equal(res.status, 200)
  const { results } = await res.json() as { results: { key: string; version: string; acks: number; w: number }[] }
  t.same(results.map(r => [r.key, r.acks, r.w]), [['a', 3, 3], ['bin', 3, 3], ['old', 3, 3]])
  t.same(kv.batches[0]?.options, { w: 'all' })
  t.same(kv.batches[0]?.operations[1], { op: 'put', key: 'bin', value: Buffer.from(binary), ttlSeconds: 30 })
  t.same(new Uint8Array(await (await fetch(`${api.url}/kv/bin`)).arrayBuffer()), binary)
  t.equal((await fetch(`${api.url}/kv/old`)).status, 404)
})

t.test('w may come in the query or the body, not both', async t => {
  const kv = new MemoryKv()
  const api = await startApi(t, { kv })
  const ops = [{ op: 'delete', key: 'k' }]
  t.equal((await postBatch(api.url, { ops }, '?w=one')).status, 200)
  t.equal((await postBatch(api.url, { ops, w: 2 })).status, 200)
  t.same(kv.batches.map(b => b.options), [{ w: 'one' }, { w: 2 }])
  const both = await postBatch(api.url, { ops, w: 'all' }, '?w=one')
  t.equal(both.status, 400)
  t.match(await both.json(), { error: /not both/, param: 'w' })
})

t.test('any invalid operation rejects the whole batch before anything is applied', async t => {
  const kv = new MemoryKv()
  const api = await startApi(t, { kv })
  const good = { op: 'put', key: 'fine', value: b64('v') }
  const cases: [string, unknown, RegExp][] = [
    ['bad JSON', '{"ops": [', /not valid JSON/],
    ['not an object', '[1,2]', /JSON object/],
    ['no ops', {}, /"ops" array/],
    ['empty ops', { ops: [] }, /at least one/],
    ['unknown top-level field', { ops: [good], wait: true }, /unknown field "wait"/],
    ['bad op name', { ops: [good, { op: 'upsert', key: 'k' }] }, /ops\[1\]\.op/],
    ['missing key', { ops: [good, { op: 'delete' }] }, /ops\[1\]\.key must be a string/],
    ['empty key', { ops: [good, { op: 'delete', key: '' }] }, /ops\[1\]\.key must not be empty/],
    ['long key', { ops: [good, { op: 'delete', key: 'k'.repeat(TEST_LIMITS.maxKeyBytes + 1) }] }, /bytes of UTF-8/],
    ['bad base64', { ops: [good, { op: 'put', key: 'k', value: 'not base64!' }] }, /ops\[1\]\.value is not valid base64/],
    ['unpadded base64', { ops: [good, { op: 'put', key: 'k', value: 'YWI' }] }, /not valid base64/],
    ['value not a string', { ops: [good, { op: 'put', key: 'k', value: [1, 2] }] }, /must be a base64 string/],
    ['bad ttl', { ops: [good, { op: 'put', key: 'k', value: '', ttl: 0 }] }, /ttl must be a whole number/],
    ['ttl on a delete', { ops: [good, { op: 'delete', key: 'k', ttl: 5 }] }, /unknown field "ttl" for a delete/],
    ['repeated key', { ops: [good, { op: 'delete', key: 'fine' }] }, /repeats key "fine"/],
    ['bad w', { ops: [good], w: 'most' }, /w must be one, quorum, all/],
  ]
  for (const [name, body, error] of cases) {
    const res = await postBatch(api.url, body)
    t.equal(res.status, 400, name)
    t.match(await res.json(), { error }, name)
  }
  const longKey = await postBatch(api.url, { ops: [good, { op: 'delete', key: 'k'.repeat(TEST_LIMITS.maxKeyBytes + 1) }] })
  t.match(await longKey.json(), { index: 1, maxKeyBytes: TEST_LIMITS.maxKeyBytes }, 'the failing operation is named by index')
  t.equal(kv.batches.length, 0, 'the service never saw a batch')
  t.equal(kv.records.size, 0)
})

t.test('too many operations, a too large value or a too large body answer 413', async t => {
  const kv = new MemoryKv()
  const api = await startApi(t, { kv })
  const tooMany = Array.from({ length: TEST_LIMITS.maxBatchOps + 1 }, (_, i) => ({ op: 'delete', key: `k${i}` }))
  const many = await postBatch(api.url, { ops: tooMany })
  t.equal(many.status, 413)
  t.match(await many.json(), { error: /operations, more than the limit/, maxBatchOps: TEST_LIMITS.maxBatchOps })

  const bigValue = await postBatch(api.url, { ops: [{ op: 'put', key: 'k', value: b64(new Uint8Array(TEST_LIMITS.maxValueBytes + 1)) }] })
  t.equal(bigValue.status, 413)
  t.match(await bigValue.json(), { error: /ops\[0\]\.value is larger/, index: 0 })

  const bigBody = await postBatch(api.url, `{"ops":[],"pad":"${'x'.repeat(TEST_LIMITS.maxBatchBodyBytes)}"}`)
  t.equal(bigBody.status, 413)
  t.match(await bigBody.json(), { error: /batch body is larger/ })
  t.equal(kv.batches.length, 0)
})
