import t from 'tap'
import { BadRequestError, QuorumNotMetError } from '../../lib/errors.js'
import { MemoryKv, NODE_ID, TEST_LIMITS, startApi } from './fixtures/harness.js'
import { parseRawAnswer, rawExchange } from './fixtures/raw-http.js'

t.test('an unknown path answers 404 JSON', async t => {
  const api = await startApi(t)
  for (const path of ['/nope', '/kvx', '/health/', '/admin']) {
    const res = await fetch(`${api.url}${path}`)
    t.equal(res.status, 404, path)
    t.match(await res.json(), { error: /no endpoint/ })
  }
})

t.test('a known path with the wrong method answers 405 with an Allow header', async t => {
  const api = await startApi(t)
  const cases: [string, string, string][] = [
    ['/kv/k', 'POST', 'GET, HEAD, PUT, DELETE, POST'],
    ['/kv', 'PUT', 'GET, HEAD'],
    ['/batch', 'GET', 'POST'],
    ['/health', 'DELETE', 'GET, HEAD'],
    ['/admin/sync', 'GET', 'POST'],
    ['/kv/k', 'PATCH', 'GET, HEAD, PUT, DELETE, POST'],
  ]
  for (const [path, method, allow] of cases) {
    const res = await fetch(`${api.url}${path}`, { method })
    t.equal(res.status, 405, `${method} ${path}`)
    t.equal(res.headers.get('allow'), allow)
    t.match(await res.json(), { error: /not allowed/, allow: allow.split(', ') })
  }
})

t.test('with a token, every route but /health and the dashboard shell needs the bearer token', async t => {
  const api = await startApi(t, { token: 's3cret' })
  for (const path of ['/kv/k', '/kv', '/members', '/status', '/metrics', '/dashboard/events', '/admin/replicas?key=k']) {
    const res = await fetch(`${api.url}${path}`)
    t.equal(res.status, 401, `${path} without a token`)
    t.match(res.headers.get('www-authenticate'), /^Bearer/)
    t.match(await res.json(), { error: /bearer token/ })
  }
  t.equal((await fetch(`${api.url}/health`)).status, 200, '/health stays open for load balancers')
  for (const path of ['/', '/dashboard.js', '/dashboard.css']) t.equal((await fetch(`${api.url}${path}`)).status, 200, `${path} carries no data: the page asks for the token`)
  t.equal((await fetch(`${api.url}/status`, { headers: { authorization: 'Bearer wrong' } })).status, 401)
  t.equal((await fetch(`${api.url}/status`, { headers: { authorization: 'Bearer s3cret-and-more' } })).status, 401)
  t.equal((await fetch(`${api.url}/status`, { headers: { authorization: 'Basic czNjcmV0' } })).status, 401)
  t.equal((await fetch(`${api.url}/status`, { headers: { authorization: 'Bearer s3cret' } })).status, 200)
  t.equal((await fetch(`${api.url}/kv/k`, { method: 'PUT', body: 'v', headers: { authorization: 'bearer s3cret' } })).status, 200)
})

t.test('an unexpected exception answers 500 "internal error" and logs the stack, never sends it', async t => {
  const kv = new MemoryKv()
  kv.get = async () => { throw new Error('disk on fire at /secret/path') }
  const api = await startApi(t, { kv })
  const res = await fetch(`${api.url}/kv/k`)
  t.equal(res.status, 500)
  const text = await res.text()
  t.same(JSON.parse(text), { error: 'internal error' })
  t.notMatch(text, /fire|secret|at /)
  const logged = api.logLines.find(line => line.msg === 'request failed with an unexpected error')
  t.ok(logged, 'the failure is logged')
  t.match(logged, { level: 50, route: '/kv/:key', method: 'GET', err: { message: 'disk on fire at /secret/path', stack: /Error: disk on fire/ } })
})

t.test('a write that misses its quorum answers 503 with needed, acks, version and outcome unknown', async t => {
  const kv = new MemoryKv()
  kv.put = async () => { throw new QuorumNotMetError('write', 2, 1, { version: { hlc: 42, node: NODE_ID } }) }
  const api = await startApi(t, { kv })
  const res = await fetch(`${api.url}/kv/k`, { method: 'PUT', body: 'v' })
  t.equal(res.status, 503)
  t.equal(res.headers.get('retry-after'), '1')
  t.same(await res.json(), {
    error: 'write needed 2 replica acknowledgements but got 1 in time',
    needed: 2,
    acks: 1,
    outcome: 'unknown',
    version: `0000000000000042-${NODE_ID}`,
  })
})

t.test('beyond maxInFlightRequests, new requests answer 503 until the load drops', async t => {
  const kv = new MemoryKv()
  let release: () => void = () => {}
  const blocked = new Promise<void>(resolve => { release = resolve })
  kv.get = async () => { await blocked; return undefined }
  const api = await startApi(t, { kv, limits: { ...TEST_LIMITS, maxInFlightRequests: 1 } })
  const first = fetch(`${api.url}/kv/slow`)
  await waitFor(() => api.server.inFlight === 1)
  const second = await fetch(`${api.url}/kv/other`)
  t.equal(second.status, 503)
  t.match(await second.json(), { error: /too many requests/ })
  release()
  t.equal((await first).status, 404)
  t.equal((await fetch(`${api.url}/kv/other`)).status, 404, 'served again once the first finished')
})

t.test('a paused server answers 503 until resumed', async t => {
  const api = await startApi(t)
  api.server.pauseAccepting()
  t.equal((await fetch(`${api.url}/kv/k`)).status, 503)
  api.server.resumeAccepting()
  t.equal((await fetch(`${api.url}/kv/k`)).status, 404)
})

t.test('a 100 KB key is refused by the parser with 431 JSON and the node stays healthy', async t => {
  const api = await startApi(t)
  const answer = await rawExchange(api.host, api.port, `GET /kv/${'k'.repeat(100 * 1024)} HTTP/1.1\r\nhost: x\r\n\r\n`)
  const { status, body } = parseRawAnswer(answer)
  t.equal(status, 431)
  t.match(body, { error: new RegExp(`exceed ${TEST_LIMITS.maxHeaderBytes} bytes`), code: 'HPE_HEADER_OVERFLOW' })
  t.equal((await fetch(`${api.url}/health`)).status, 200)
  t.match(await (await fetch(`${api.url}/metrics`)).text(), /hearsay_http_client_errors_total\{code="HPE_HEADER_OVERFLOW"\} 1/)
})

t.test('a malformed request line answers 400 JSON over the raw socket', async t => {
  const api = await startApi(t)
  for (const request of ['GARBAGE\r\n\r\n', 'GET /health HTTP/9.9\r\n\r\n', 'PUT /kv/k HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n']) {
    const { status, body } = parseRawAnswer(await rawExchange(api.host, api.port, request))
    t.equal(status, 400, JSON.stringify(request))
    t.match(body, { error: 'malformed HTTP request', code: /^HPE_/ })
  }
  t.equal((await fetch(`${api.url}/health`)).status, 200)
})

t.test('a request without a Host header is still answered', async t => {
  const api = await startApi(t)
  const answer = await rawExchange(api.host, api.port, 'GET /health HTTP/1.1\r\nconnection: close\r\n\r\n')
  t.match(parseRawAnswer(answer), { status: 200, body: { status: 'ok' } })
})

/** Polls a condition a bounded number of times. */
async function waitFor(condition: () => boolean): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    if (condition()) return
    await new Promise(resolve => setTimeout(resolve, 10))
  }
  throw new Error('condition not met within 2 s')
}

t.test('an error whose details cannot be encoded still never crashes the node', async t => {
  const kv = new MemoryKv()
  kv.get = async () => { throw new BadRequestError('odd', { size: 1n }) }
  const api = await startApi(t, { kv })
  await t.rejects(fetch(`${api.url}/kv/k`), 'the connection is cut')
  t.ok(api.logLines.some(line => line.msg === 'could not send an error answer'))
  t.equal((await fetch(`${api.url}/health`)).status, 200)
})

t.test('CONNECT and an unsupported Expect get JSON answers (issue 17)', async t => {
  const api = await startApi(t)
  const { hostname, port } = new URL(api.url)
  const connect = parseRawAnswer(await rawExchange(hostname, Number(port), 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n'))
  t.equal(connect.status, 405)
  t.match(connect.body, { error: /CONNECT is not supported/ })
  const expect = parseRawAnswer(await rawExchange(hostname, Number(port), 'PUT /kv/k HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\n'))
  t.equal(expect.status, 417)
  t.match(expect.body, { error: /Expect: 200-ok is not supported/ })
})
