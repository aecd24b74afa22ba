import http from 'node:http'
import t from 'tap'
import { parseVersion } from '../../lib/clock/version.js'
import { MAX_TTL_SECONDS } from '../../lib/api/limits.js'
import { MemoryKv, TEST_LIMITS, startApi } from './fixtures/harness.js'
import { parseRawAnswer, rawExchange } from './fixtures/raw-http.js'

t.test('a value of every byte from 0 to 255 comes back byte for byte with its version', async t => {
  const api = await startApi(t)
  const value = Uint8Array.from({ length: 256 }, (_, i) => i)
  const put = await fetch(`${api.url}/kv/bytes`, { method: 'PUT', body: value, headers: { 'content-type': 'text/plain' } })
  t.equal(put.status, 200)
  const written = await put.json() as { key: string; version: string; acks: number; w: number }
  t.equal(written.key, 'bytes')
  t.equal(written.acks, 3)
  t.equal(written.w, 2, 'the default level is quorum of 3')
  t.doesNotThrow(() => parseVersion(written.version), 'the version is in its string form')

  const got = await fetch(`${api.url}/kv/bytes`)
  t.equal(got.status, 200)
  t.equal(got.headers.get('content-type'), 'application/octet-stream')
  t.equal(got.headers.get('hearsay-version'), written.version)
  t.same(new Uint8Array(await got.arrayBuffer()), value)
})

t.test('an empty value is a value, not an absence', async t => {
  const api = await startApi(t)
  t.equal((await fetch(`${api.url}/kv/empty`, { method: 'PUT', body: '' })).status, 200)
  const got = await fetch(`${api.url}/kv/empty`)
  t.equal(got.status, 200)
  t.equal((await got.arrayBuffer()).byteLength, 0)
})

t.test('keys with spaces, slashes, emoji and percent signs round-trip through the URL', async t => {
  const kv = new MemoryKv()
  const api = await startApi(t, { kv })
  const keys = ['with space', 'a/b/c', 'slash/', '🔑 key', '100%', '%2F literally', 'a/../b', 'ünïcödé', '?&=#']
  for (const key of keys) {
    const put = await fetch(`${api.url}/kv/${encodeURIComponent(key)}`, { method: 'PUT', body: key })
    t.equal(put.status, 200, `PUT ${key}`)
    t.equal(((await put.json()) as { key: string }).key, key)
    const got = await fetch(`${api.url}/kv/${encodeURIComponent(key)}`)
    t.equal(await got.text(), key, `GET ${key}`)
  }
  t.same([...kv.records.keys()].sort(), [...keys].sort(), 'the service saw exactly the decoded keys')
})

t.test('a raw slash in the path is part of the key', async t => {
  const kv = new MemoryKv()
  const api = await startApi(t, { kv })
  t.equal((await fetch(`${api.url}/kv/a/b`, { method: 'PUT', body: 'x' })).status, 200)
  t.ok(kv.records.has('a/b'))
  t.equal(await (await fetch(`${api.url}/kv/a%2Fb`)).text(), 'x', 'encoded and raw slash name the same key')
})

t.test('dot segments are keys too: the server never resolves . or ..', async t => {
  const kv = new MemoryKv()
  const api = await startApi(t, { kv })
  // fetch() resolves dot segments (WHATWG URL) even when percent-encoded; node:http sends the path as is.
  for (const path of ['/kv/..', '/kv/.', '/kv/a/../b', '/kv/%2E%2E']) {
    const status = await new Promise<number | undefined>((resolve, reject) => {
      const req = http.request({ host: api.host, port: api.port, path, method: 'PUT' }, res => {
        res.resume()
        resolve(res.statusCode)
      })
      req.on('error', reject)
      req.end('v')
    })
    t.equal(status, 200, path)
  }
  t.same([...kv.records.keys()].sort(), ['.', '..', 'a/../b'])
})

t.test('a missing or deleted key answers 404 JSON', async t => {
  const api = await startApi(t)
  const missing = await fetch(`${api.url}/kv/nothing`)
  t.equal(missing.status, 404)
  t.match(await missing.json(), { error: /not found/, key: 'nothing' })

  await fetch(`${api.url}/kv/gone`, { method: 'PUT', body: 'x' })
  const deleted = await fetch(`${api.url}/kv/gone?w=all`, { method: 'DELETE' })
  t.equal(deleted.status, 200)
  t.match(await deleted.json(), { key: 'gone', acks: 3, w: 3 })
  t.equal((await fetch(`${api.url}/kv/gone`)).status, 404)
})

t.test('HEAD answers like GET without a body', async t => {
  const api = await startApi(t)
  await fetch(`${api.url}/kv/h`, { method: 'PUT', body: 'hello' })
  const head = await fetch(`${api.url}/kv/h`, { method: 'HEAD' })
  t.equal(head.status, 200)
  t.equal(head.headers.get('content-length'), '5')
  t.ok(head.headers.get('hearsay-version'))
  t.equal((await head.arrayBuffer()).byteLength, 0)
  t.equal((await fetch(`${api.url}/kv/absent`, { method: 'HEAD' })).status, 404)
})

t.test('w, r and ttl reach the service parsed', async t => {
  const kv = new MemoryKv()
  const api = await startApi(t, { kv })
  t.equal((await fetch(`${api.url}/kv/k?w=all&ttl=60`, { method: 'PUT', body: 'v' })).status, 200)
  t.equal((await fetch(`${api.url}/kv/k?w=2`, { method: 'PUT', body: 'v' })).status, 200)
  t.equal((await fetch(`${api.url}/kv/k?ttl=${MAX_TTL_SECONDS}`, { method: 'PUT', body: 'v' })).status, 200)
  t.equal((await fetch(`${api.url}/kv/k?r=one`)).status, 200)
  t.same(kv.writes.map(w => w.options), [{ w: 'all', ttlSeconds: 60 }, { w: 2 }, { ttlSeconds: MAX_TTL_SECONDS }])
  t.same(kv.reads, [{ r: 'one' }])
})

t.test('bad w, r, ttl or unknown parameters answer 400 naming the parameter, before anything is written', async t => {
  const kv = new MemoryKv()
  const api = await startApi(t, { kv })
  const cases: [string, RequestInit, string][] = [
    ['/kv/k?w=most', { method: 'PUT', body: 'v' }, 'w'],
    ['/kv/k?w=0', { method: 'PUT', body: 'v' }, 'w'],
    ['/kv/k?w=65', { method: 'PUT', body: 'v' }, 'w'],
    ['/kv/k?ttl=0', { method: 'PUT', body: 'v' }, 'ttl'],
    ['/kv/k?ttl=-5', { method: 'PUT', body: 'v' }, 'ttl'],
    ['/kv/k?ttl=1.5', { method: 'PUT', body: 'v' }, 'ttl'],
    [`/kv/k?ttl=${MAX_TTL_SECONDS + 1}`, { method: 'PUT', body: 'v' }, 'ttl'],
    ['/kv/k?tll=60', { method: 'PUT', body: 'v' }, 'tll'],
    ['/kv/k?w=one&w=all', { method: 'PUT', body: 'v' }, 'w'],
    ['/kv/k?ttl=5', { method: 'DELETE' }, 'ttl'],
    ['/kv/k?r=several', { method: 'GET' }, 'r'],
    ['/kv/k?w=one', { method: 'GET' }, 'w'],
  ]
  for (const [path, init, param] of cases) {
    const res = await fetch(`${api.url}${path}`, init)
    t.equal(res.status, 400, `${init.method} ${path}`)
    const body = await res.json() as { error: string; param: string }
    t.equal(body.param, param, `${path} names ${param}`)
    t.type(body.error, 'string')
  }
  t.equal(kv.writes.length, 0)
})

t.test('a numeric level above the replica count is the client\'s error', async t => {
  const api = await startApi(t)
  const res = await fetch(`${api.url}/kv/k?w=5`, { method: 'PUT', body: 'v' })
  t.equal(res.status, 400)
  t.match(await res.json(), { error: /exceeds the replication factor/ })
})

t.test('empty keys and malformed percent-encoding answer 400', async t => {
  const api = await startApi(t)
  t.equal((await fetch(`${api.url}/kv/`, { method: 'PUT', body: 'v' })).status, 400)
  const malformed = await fetch(`${api.url}/kv/bad%E0%A4%A`)
  t.equal(malformed.status, 400)
  t.match(await malformed.json(), { error: /percent-encoded/ })
  t.equal((await fetch(`${api.url}/kv/%ED%A0%80`)).status, 400, 'an encoded lone surrogate is not UTF-8')
})

t.test('a key longer than maxKeyBytes in UTF-8 answers 414', async t => {
  const api = await startApi(t)
  const atLimit = 'k'.repeat(TEST_LIMITS.maxKeyBytes)
  t.equal((await fetch(`${api.url}/kv/${atLimit}`, { method: 'PUT', body: 'v' })).status, 200)
  const overByBytes = '€'.repeat(Math.ceil(TEST_LIMITS.maxKeyBytes / 3) + 1)
  t.ok(overByBytes.length < TEST_LIMITS.maxKeyBytes, 'under the limit in characters, over it in bytes')
  const res = await fetch(`${api.url}/kv/${encodeURIComponent(overByBytes)}`, { method: 'PUT', body: 'v' })
  t.equal(res.status, 414)
  t.match(await res.json(), { error: /bytes of UTF-8/, maxKeyBytes: TEST_LIMITS.maxKeyBytes })
})

t.test('a value larger than maxValueBytes answers 413 and is not stored', async t => {
  const kv = new MemoryKv()
  const api = await startApi(t, { kv })
  const atLimit = new Uint8Array(TEST_LIMITS.maxValueBytes)
  t.equal((await fetch(`${api.url}/kv/fits`, { method: 'PUT', body: atLimit })).status, 200)
  const res = await fetch(`${api.url}/kv/big`, { method: 'PUT', body: new Uint8Array(TEST_LIMITS.maxValueBytes + 1) })
  t.equal(res.status, 413)
  t.match(await res.json(), { error: /larger than the limit/, maxBytes: TEST_LIMITS.maxValueBytes })
  t.equal(res.headers.get('connection'), 'close')
  t.notOk(kv.records.has('big'))
})

t.test('a streamed value without Content-Length is cut off at the limit with 413', async t => {
  const kv = new MemoryKv()
  const api = await startApi(t, { kv })
  const chunk = new Uint8Array(1024)
  const chunkCount = 64
  let sent = 0
  // Pull-based: the client only produces chunks the server reads, so a refused body stops early.
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent === chunkCount) controller.close()
      else {
        sent += 1
        controller.enqueue(chunk)
      }
    },
  })
  const res = await fetch(`${api.url}/kv/streamed`, { method: 'PUT', body, duplex: 'half' } as RequestInit)
  t.equal(res.status, 413)
  t.notOk(kv.records.has('streamed'))
  t.equal((await fetch(`${api.url}/health`)).status, 200, 'the node keeps serving')
})

t.test('an oversized body announced with Expect: 100-continue is refused before it is sent', async t => {
  const api = await startApi(t)
  const answer = await new Promise<{ status: number | undefined; continued: boolean }>((resolve, reject) => {
    let continued = false
    const req = http.request({
      host: api.host, port: api.port, path: '/kv/big', method: 'PUT',
      headers: { expect: '100-continue', 'content-length': String(TEST_LIMITS.maxValueBytes + 1) },
    }, res => {
      res.resume()
      resolve({ status: res.statusCode, continued })
    })
    req.on('continue', () => { continued = true })
    req.on('error', reject)
    req.flushHeaders()
  })
  t.same(answer, { status: 413, continued: false })
})

t.test('a body announced with Expect: 100-continue within the limit is accepted', async t => {
  const kv = new MemoryKv()
  const api = await startApi(t, { kv })
  const status = await new Promise<number | undefined>((resolve, reject) => {
    const req = http.request({ host: api.host, port: api.port, path: '/kv/small', method: 'PUT', headers: { expect: '100-continue', 'content-length': '5' } }, res => {
      res.resume()
      resolve(res.statusCode)
    })
    req.on('continue', () => req.end('hello'))
    req.on('error', reject)
    req.flushHeaders()
  })
  t.equal(status, 200)
  t.same(kv.records.get('small')?.value, Buffer.from('hello'))
})

t.test('raw UTF-8 bytes in the path answer 400 JSON asking for percent-encoding', async t => {
  const api = await startApi(t)
  const request = (path: Buffer) => Buffer.concat([Buffer.from('PUT '), path, Buffer.from(' HTTP/1.1\r\nhost: x\r\ncontent-length: 1\r\n\r\nv')])
  for (const path of ['/kv/héllo-🔑', '/kv/🔑']) {
    const answer = parseRawAnswer(await rawExchange(api.host, api.port, request(Buffer.from(path, 'utf8'))))
    t.match(answer, { status: 400, body: { error: /must be percent-encoded/, code: 'HPE_INVALID_URL' } }, path)
  }
  t.equal((await fetch(`${api.url}/health`)).status, 200)
})
