import t from 'tap'
import { MEMBERS, NODE_ID, startApi } from './fixtures/harness.js'

t.test('/health answers 200 only while the node is ok', async t => {
  let status: 'starting' | 'ok' | 'leaving' = 'starting'
  const api = await startApi(t, { health: () => ({ status, id: NODE_ID, name: 'alpha' }) })
  const starting = await fetch(`${api.url}/health`)
  t.equal(starting.status, 503)
  t.same(await starting.json(), { status: 'starting', id: NODE_ID, name: 'alpha' })
  status = 'ok'
  const ok = await fetch(`${api.url}/health`)
  t.equal(ok.status, 200)
  t.same(await ok.json(), { status: 'ok', id: NODE_ID, name: 'alpha' })
  status = 'leaving'
  t.equal((await fetch(`${api.url}/health`)).status, 503)
})

t.test('/health passes on the reasons a node is not ok and its storage', async t => {
  const storage = { keys: 3, bytesUsed: 8192, mapBytes: 1 << 20, mapFreeBytes: (1 << 20) - 8192, diskFreeBytes: 5e9 }
  const api = await startApi(t, { health: () => ({ status: 'repairing', id: NODE_ID, name: 'alpha', reasons: ['repairing: away too long'], storage }) })
  const res = await fetch(`${api.url}/health`)
  t.equal(res.status, 503)
  t.same(await res.json(), { status: 'repairing', id: NODE_ID, name: 'alpha', reasons: ['repairing: away too long'], storage })
})

t.test('/members lists every member with its state and incarnation', async t => {
  const api = await startApi(t)
  const res = await fetch(`${api.url}/members`)
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /^application\/json/)
  t.same(await res.json(), MEMBERS)
})

t.test('/status answers what the node reports, sync or async', async t => {
  const api = await startApi(t, { status: async () => ({ id: NODE_ID, keys: 7, digest: 'abc' }) })
  const res = await fetch(`${api.url}/status`)
  t.equal(res.status, 200)
  t.same(await res.json(), { id: NODE_ID, keys: 7, digest: 'abc' })
})

t.test('/metrics serves Prometheus text of hearsay_ metrics with route templates as labels', async t => {
  const api = await startApi(t)
  await fetch(`${api.url}/kv/some-key`, { method: 'PUT', body: 'v' })
  await fetch(`${api.url}/kv/some-key`)
  await fetch(`${api.url}/no-such-thing`)
  const res = await fetch(`${api.url}/metrics`)
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /^text\/plain/)
  const text = await res.text()
  t.match(text, /hearsay_process_cpu_seconds_total/)
  t.match(text, /hearsay_http_requests_total\{route="\/kv\/:key",method="PUT",status="200"\} 1/)
  t.match(text, /hearsay_http_requests_total\{route="\/kv\/:key",method="GET",status="200"\} 1/)
  t.match(text, /hearsay_http_requests_total\{route="unmatched",method="GET",status="404"\} 1/)
  t.match(text, /hearsay_http_request_duration_seconds_bucket\{le="0.0001",route="\/kv\/:key",method="PUT"\}/)
  t.match(text, /hearsay_kv_writes_total\{op="put"\} 1/)
  t.notMatch(text, /some-key|no-such-thing/, 'raw paths never become labels')
  const names = text.split('\n').filter(line => line.startsWith('# TYPE ')).map(line => line.split(' ')[2]!)
  t.ok(names.length > 10)
  t.same(names.filter(name => !name.startsWith('hearsay_')), [], 'every metric name starts with hearsay_')
})

t.test('POST /admin/sync runs a round and answers its summary', async t => {
  let rounds = 0
  const api = await startApi(t, { sync: async () => ({ rounds: ++rounds, pulled: 3 }) })
  const res = await fetch(`${api.url}/admin/sync`, { method: 'POST' })
  t.equal(res.status, 200)
  t.same(await res.json(), { rounds: 1, pulled: 3 })
})

t.test('POST /admin/sync without anti-entropy answers 503 saying so', async t => {
  const api = await startApi(t)
  const res = await fetch(`${api.url}/admin/sync`, { method: 'POST' })
  t.equal(res.status, 503)
  t.same(await res.json(), { error: 'anti-entropy is not running on this node' })
})
