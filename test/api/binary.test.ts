import { Packr } from 'msgpackr'
import t, { type Test } from 'tap'
import { WebSocket } from 'ws'
import { parseVersion, type NodeId } from '../../lib/clock/version.js'
import { QuorumNotMetError } from '../../lib/errors.js'
import { MemoryKv, TEST_LIMITS, startApi, type Harness } from './fixtures/harness.js'
import { rawExchange } from './fixtures/raw-http.js'

/**
 * The stream protocol on the wire (docs/client-protocol.md), spoken by hand with msgpackr so the
 * layout itself is specified here, not just whatever the client library happens to send.
 */

const packr = new Packr({ useRecords: false })
/** Bound on every wait for frames or a close; a hang fails the test instead of stalling the run. */
const WAIT_MS = 5000

type Frame = unknown[]

/** A raw stream connection that records every answer frame and how the socket closed. */
class RawStream {
  readonly frames: Frame[] = []
  readonly closed: Promise<{ code: number; reason: string }>
  #onFrame: (() => void) | undefined

  private constructor(readonly socket: WebSocket, readonly maxInFlight: number) {
    socket.on('message', (data: Buffer) => {
      packr.unpackMultiple(data, (frame: unknown) => { this.frames.push(frame as Frame) })
      this.#onFrame?.()
    })
    this.closed = new Promise(resolve => socket.on('close', (code, reason) => resolve({ code, reason: reason.toString() })))
  }

  static open(api: Harness, headers: Record<string, string> = {}): Promise<RawStream> {
    const socket = new WebSocket(`ws://${api.host}:${api.port}/v1/stream`, { headers })
    return new Promise((resolve, reject) => {
      let maxInFlight = 0
      socket.once('upgrade', response => { maxInFlight = Number(response.headers['hearsay-stream-max-in-flight']) })
      socket.once('open', () => resolve(new RawStream(socket, maxInFlight)))
      socket.once('unexpected-response', (_request, response) => {
        let body = ''
        response.setEncoding('utf8').on('data', (chunk: string) => { body += chunk })
        response.on('end', () => reject(Object.assign(new Error(`upgrade refused: ${response.statusCode}`), { status: response.statusCode, body: JSON.parse(body) as unknown })))
      })
      socket.once('error', reject)
    })
  }

  /** Sends the frames as one message. */
  send(...frames: Frame[]): void {
    this.socket.send(Buffer.concat(frames.map(frame => packr.pack(frame))))
  }

  /** Resolves once `count` answer frames arrived in total. */
  async answers(count: number): Promise<Frame[]> {
    const deadline = Date.now() + WAIT_MS
    while (this.frames.length < count) {
      if (Date.now() > deadline) throw new Error(`only ${this.frames.length} of ${count} answers within ${WAIT_MS} ms`)
      await new Promise<void>(resolve => {
        const timer = setTimeout(resolve, 50)
        this.#onFrame = () => { clearTimeout(timer); resolve() }
      })
    }
    return this.frames.slice(0, count)
  }

  /** The answer to request `id`. */
  async answer(id: number): Promise<Frame> {
    const deadline = Date.now() + WAIT_MS
    for (;;) {
      const found = this.frames.find(frame => frame[0] === id)
      if (found !== undefined) return found
      if (Date.now() > deadline) throw new Error(`no answer to request ${id} within ${WAIT_MS} ms`)
      await new Promise(resolve => setTimeout(resolve, 10))
    }
  }

  async closeCode(): Promise<{ code: number; reason: string }> {
    const timeout = new Promise<never>((_resolve, reject) => setTimeout(() => reject(new Error(`socket still open after ${WAIT_MS} ms`)), WAIT_MS).unref())
    return Promise.race([this.closed, timeout])
  }

  end(): void {
    this.socket.terminate()
  }
}

async function openStream(t: Test, api: Harness, headers: Record<string, string> = {}): Promise<RawStream> {
  const stream = await RawStream.open(api, headers)
  t.teardown(() => stream.end())
  return stream
}

/** The node is still serving after whatever a test threw at it. */
async function healthy(api: Harness): Promise<boolean> {
  return (await fetch(`${api.url}/health`)).status === 200
}

/**
 * A KvService whose gets wait until released, then answer in the reverse order they arrived;
 * gets after the release answer at once.
 */
function reversingKv(): { kv: MemoryKv; release: () => void } {
  const kv = new MemoryKv()
  const waiting: (() => void)[] = []
  let released = false
  const get = kv.get.bind(kv)
  kv.get = (key, options) => released ? get(key, options) : new Promise(resolve => waiting.push(() => resolve(get(key, options))))
  return {
    kv,
    release: () => {
      released = true
      for (const answer of waiting.splice(0).reverse()) answer()
    },
  }
}

t.test('put, get, delete and batch round-trip with the HTTP API\'s results', async t => {
  const api = await startApi(t)
  const stream = await openStream(t, api)
  t.equal(stream.maxInFlight, 1024, 'the upgrade answer names the in-flight bound')
  const value = Uint8Array.from({ length: 256 }, (_, i) => i)

  stream.send([1, 2, 'bytes', value])
  const [, putStatus, version, acks, w] = await stream.answer(1)
  t.equal(putStatus, 200)
  t.doesNotThrow(() => parseVersion(version as string), 'the version is in its string form')
  t.equal(acks, 3)
  t.equal(w, 2, 'the default level is quorum of 3')

  stream.send([2, 1, 'bytes'])
  const [, getStatus, got, gotVersion] = await stream.answer(2)
  t.equal(getStatus, 200)
  t.same(new Uint8Array(got as Uint8Array), value, 'every byte value comes back')
  t.equal(gotVersion, version, 'get reports the version put returned')

  stream.send([3, 3, 'bytes', 'all'])
  const deleted = await stream.answer(3)
  t.equal(deleted[1], 200)
  t.equal(deleted[4], 3, 'w=all of 3 replicas')
  stream.send([4, 1, 'bytes'])
  t.same(await stream.answer(4), [4, 404, { key: 'bytes', error: 'key "bytes" not found' }], 'the same 404 body as GET /kv/bytes')

  stream.send([5, 4, [[2, 'x', Buffer.from('1'), 60], [2, 'y', Buffer.from('2')], [3, 'z']], 1])
  const [, batchStatus, results] = await stream.answer(5)
  t.equal(batchStatus, 200)
  t.equal((results as Frame[]).length, 3, 'one result per operation')
  t.ok((results as Frame[]).every(([v, a]) => typeof v === 'string' && a === 3))
  const batch = (api.kv as MemoryKv).batches[0]
  t.same(batch?.options, { w: 1 })
  t.same(batch?.operations.map(op => [op.op, op.key, op.op === 'put' ? op.ttlSeconds : undefined]), [['put', 'x', 60], ['put', 'y', undefined], ['delete', 'z', undefined]])
})

t.test('levels and ttl reach the KvService as the HTTP query parameters would', async t => {
  const kv = new MemoryKv()
  const api = await startApi(t, { kv })
  const stream = await openStream(t, api)
  stream.send([1, 2, 'k', Buffer.from('v'), 'all', 60], [2, 1, 'k', 2], [3, 2, 'k2', Buffer.from('v'), null, 5], [4, 3, 'k', 'one'])
  await stream.answers(4)
  t.same(kv.writes.map(write => write.options), [{ w: 'all', ttlSeconds: 60 }, { ttlSeconds: 5 }, { w: 'one' }])
  t.same(kv.reads, [{ r: 2 }])
})

t.test('bad requests are answered with the HTTP API\'s status and error body, and the connection stays usable', async t => {
  const api = await startApi(t)
  const stream = await openStream(t, api)
  const cases: [frame: Frame, status: number, error: RegExp, details?: Record<string, unknown>][] = [
    [[1, 1, ''], 400, /^key must not be empty$/],
    [[2, 1, 'k'.repeat(TEST_LIMITS.maxKeyBytes + 1)], 400, /^key is 65 bytes of UTF-8, more than the limit of 64$/, { maxKeyBytes: 64 }],
    [[3, 1, 42], 400, /^key must be a string$/],
    [[4, 2, 'k', 'text, not bytes'], 400, /^value must be a byte string/],
    [[5, 2, 'k', Buffer.alloc(TEST_LIMITS.maxValueBytes + 1)], 413, /^value is larger than the limit of 4096 bytes$/, { maxBytes: 4096 }],
    [[6, 2, 'k', Buffer.from('v'), 'most'], 400, /^w must be one, quorum, all or a number/, { param: 'w' }],
    [[7, 2, 'k', Buffer.from('v'), null, 1.5], 400, /^ttl must be a whole number of seconds/, { param: 'ttl' }],
    [[8, 1, 'k', 4], 400, /^r=4 exceeds the replication factor/],
    [[9, 12, 'k'], 400, /^unknown op 12/],
    [[10, 1], 400, /^a frame of 2 entries: a get is \[id, 1, key, r\?\]$/],
    [[11, 4, []], 400, /at least one operation/],
    [[12, 4, Array.from({ length: 6 }, (_, i) => [3, `k${i}`])], 413, /^batch has 6 operations, more than the limit of 5; split it$/, { maxBatchOps: 5 }],
    [[13, 4, [[3, 'a'], [3, 'a']]], 400, /^ops\[1\] repeats key "a"/, { index: 1 }],
    [[14, 4, [[2, 'a', Buffer.alloc(TEST_LIMITS.maxValueBytes + 1)]]], 413, /^ops\[0\]\.value is larger than the limit of 4096 bytes$/, { index: 0, maxValueBytes: 4096 }],
    [[15, 4, [['put', 'a', Buffer.from('v')]]], 400, /^ops\[0\] must be \[2, key, value, ttl\?\] \(put\) or \[3, key\] \(delete\)$/, { index: 0 }],
  ]
  stream.send(...cases.map(([frame]) => frame))
  for (const [frame, status, error, details] of cases) {
    const [, answeredStatus, body] = await stream.answer(frame[0] as number)
    t.equal(answeredStatus, status, `request ${String(frame[0])} answers ${status}`)
    t.match((body as { error: string }).error, error)
    if (details !== undefined) t.match(body, details, `request ${String(frame[0])} carries the HTTP API's details`)
  }
  stream.send([99, 2, 'fine', Buffer.from('v')])
  t.equal((await stream.answer(99))[1], 200, 'the connection still serves requests after errors')
})

t.test('a missed write quorum answers 503 with the same body as HTTP', async t => {
  const kv = new MemoryKv()
  kv.put = async () => { throw new QuorumNotMetError('write', 2, 1, { version: { hlc: 1_700_000_000_000_000, node: '00000000000000a1' as NodeId } }) }
  const api = await startApi(t, { kv })
  const stream = await openStream(t, api)
  stream.send([1, 2, 'k', Buffer.from('v')])
  const http = await fetch(`${api.url}/kv/k`, { method: 'PUT', body: 'v' })
  t.same(await stream.answer(1), [1, 503, await http.json()], 'identical error body')
  t.equal(http.status, 503)
  t.match((await stream.answer(1))[2], { needed: 2, acks: 1, version: '1700000000000000-00000000000000a1' })
})

t.test('many requests are in flight on one connection and answers come back out of order', async t => {
  const { kv, release } = reversingKv()
  const api = await startApi(t, { kv })
  for (let i = 0; i < 200; i++) await kv.put(`k${i}`, Buffer.from(`value ${i}`), {})
  const stream = await openStream(t, api)
  stream.send(...Array.from({ length: 200 }, (_, i) => [i + 1, 1, `k${i}`]))
  for (let attempt = 0; attempt < 200 && api.server.inFlight < 200; attempt++) await new Promise(resolve => setTimeout(resolve, 10))
  t.equal(api.server.inFlight, 200, 'all 200 requests are in flight at once')
  release()
  const answers = await stream.answers(200)
  t.equal(answers[0]?.[0], 200, 'the last request was answered first')
  t.same(answers.map(answer => answer[0]).sort((a, b) => (a as number) - (b as number)), Array.from({ length: 200 }, (_, i) => i + 1), 'every request answered once')
  t.ok(answers.every(([id, status, value]) => status === 200 && Buffer.from(value as Uint8Array).toString() === `value ${(id as number) - 1}`), 'each answer carries its own request\'s value')
})

t.test('a connection at its in-flight bound is not read until answers go out', async t => {
  const { kv, release } = reversingKv()
  const api = await startApi(t, { kv })
  const stream = await openStream(t, api)
  const max = stream.maxInFlight
  stream.send(...Array.from({ length: max }, (_, i) => [i + 1, 1, `k${i}`]))
  for (let attempt = 0; attempt < 500 && api.server.inFlight < max; attempt++) await new Promise(resolve => setTimeout(resolve, 10))
  t.equal(api.server.inFlight, max, 'the bound is reached')
  stream.send(...Array.from({ length: 3 }, (_, i) => [max + i + 1, 1, 'more']))
  await new Promise(resolve => setTimeout(resolve, 100))
  t.equal(stream.frames.length, 0, 'the requests past the bound wait unread (neither run nor refused)')
  t.equal(api.server.inFlight, max)
  release()
  const all = await stream.answers(max + 3)
  t.ok(all.every(answer => answer[1] === 404), 'once answers went out, every request was served')
})

t.test('past the node-wide in-flight bound stream requests are answered 503', async t => {
  const { kv, release } = reversingKv()
  t.teardown(release)
  const api = await startApi(t, { kv, limits: { ...TEST_LIMITS, maxInFlightRequests: 4 } })
  const stream = await openStream(t, api)
  stream.send(...Array.from({ length: 7 }, (_, i) => [i + 1, 1, `k${i}`]))
  const refused = await stream.answers(3)
  t.same(refused.map(answer => answer.slice(0, 2)), [[5, 503], [6, 503], [7, 503]], 'the requests past the bound are refused at once')
  t.match(refused[0]?.[2], { error: 'this node has too many requests in flight; retry shortly' }, 'as HTTP words it')
  const http = await fetch(`${api.url}/kv/k`)
  t.equal(http.status, 503, 'HTTP requests count against the same bound')
  release()
  t.ok((await stream.answers(7)).slice(3).every(answer => answer[1] === 404), 'the others are answered')
})

t.test('malformed messages close the connection with a reason; the node keeps serving', async t => {
  const api = await startApi(t)
  const cases: [what: string, send: (stream: RawStream) => void, code: number, reason: RegExp][] = [
    ['bytes that are not MessagePack', s => s.socket.send(Buffer.from([0xdc, 0xff, 0xff, 0x01])), 1007, /not MessagePack/],
    ['MessagePack that is not a frame', s => s.socket.send(Buffer.from([0xc1, 0xff, 0x00, 0x13])), 1002, /not an array/],
    ['a text message', s => s.socket.send('[1, 1, "k"]'), 1003, /text message/],
    ['a frame that is not an array', s => s.send({ id: 1 } as unknown as Frame), 1002, /not an array/],
    ['a requestId of 0', s => s.send([0, 1, 'k']), 1002, /requestId is 0/],
    ['a requestId that is a string', s => s.send(['1', 1, 'k']), 1002, /requestId is not a non-negative integer/],
    ['more frames in one message than may be in flight', s => s.send(...Array.from({ length: 1025 }, (_, i) => [i + 1, 1, 'k'])), 1007, /more than 1024 frames/],
  ]
  for (const [what, send, code, reason] of cases) {
    const stream = await openStream(t, api)
    send(stream)
    const closed = await stream.closeCode()
    t.equal(closed.code, code, `${what}: close code ${code}`)
    t.match(closed.reason, reason, `${what}: the reason says what was wrong`)
    t.ok(await healthy(api), `${what}: the node still answers /health`)
  }
  const stream = await openStream(t, api)
  stream.send([1, 2, 'k', Buffer.from('v')])
  t.equal((await stream.answer(1))[1], 200, 'a new connection works')
})

t.test('reusing a requestId that is still in flight closes the connection', async t => {
  const { kv, release } = reversingKv()
  t.teardown(release)
  const api = await startApi(t, { kv })
  const stream = await openStream(t, api)
  stream.send([7, 1, 'a'], [7, 1, 'b'])
  const closed = await stream.closeCode()
  t.equal(closed.code, 1002)
  t.match(closed.reason, /requestId 7 is already in flight/)
})

t.test('an oversized message closes the connection (1009) without reading it', async t => {
  const api = await startApi(t)
  const stream = await openStream(t, api)
  // TEST_LIMITS: the largest message is maxBatchBodyBytes (16 KiB).
  stream.send([1, 2, 'k', Buffer.alloc(TEST_LIMITS.maxBatchBodyBytes + 1)])
  t.equal((await stream.closeCode()).code, 1009)
  t.ok(await healthy(api))
})

t.test('a client that stops answering pings is cut off', async t => {
  const api = await startApi(t, { streamLimits: { keepaliveIntervalMs: 50 } })
  const silent = new WebSocket(`ws://${api.host}:${api.port}/v1/stream`, { autoPong: false })
  t.teardown(() => silent.terminate())
  const closed = new Promise<number>(resolve => silent.on('close', code => resolve(code)))
  const timeout = new Promise<string>(resolve => setTimeout(() => resolve('still open'), WAIT_MS).unref())
  t.equal(await Promise.race([closed, timeout]), 1006, 'the server cut the connection without a close handshake')
  t.ok(await healthy(api))
})

t.test('with api.token set the upgrade needs the bearer token', async t => {
  const api = await startApi(t, { token: 's3cret' })
  const refusal = (headers: Record<string, string> = {}): Promise<{ status?: number; body?: unknown }> =>
    RawStream.open(api, headers).then(stream => { stream.end(); return {} }, (error: { status: number; body: unknown }) => error)
  const refused = await refusal()
  t.equal(refused.status, 401, 'no token: 401')
  t.match(refused.body, { error: /missing or wrong bearer token/ })
  t.equal((await refusal({ authorization: 'Bearer nope' })).status, 401, 'wrong token: 401')
  const stream = await openStream(t, api, { authorization: 'Bearer s3cret' })
  stream.send([1, 2, 'k', Buffer.from('v')])
  t.equal((await stream.answer(1))[1], 200, 'the right token opens the stream')
})

t.test('upgrades anywhere but /v1/stream are refused with a JSON error', async t => {
  const api = await startApi(t)
  const answer = await rawExchange(api.host, api.port,
    'GET /kv/k HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n')
  t.match(answer, /^HTTP\/1\.1 400 Bad Request\r\n/)
  t.match(answer, /"error":"this API upgrades only to WebSocket at \/v1\/stream/)
  t.ok(await healthy(api))
})

t.test('every HTTP answer advertises the stream path', async t => {
  const api = await startApi(t)
  t.equal((await fetch(`${api.url}/health`)).headers.get('hearsay-stream'), '/v1/stream')
  t.equal((await fetch(`${api.url}/kv/absent`)).headers.get('hearsay-stream'), '/v1/stream', 'error answers too')
})

t.test('graceful close answers requests in flight, refuses new ones, then closes the connection', async t => {
  const { kv, release } = reversingKv()
  const api = await startApi(t, { kv })
  const stream = await openStream(t, api)
  stream.send([1, 1, 'k'])
  for (let attempt = 0; attempt < 200 && api.server.inFlight < 1; attempt++) await new Promise(resolve => setTimeout(resolve, 10))
  const closing = api.server.close(WAIT_MS)
  await new Promise(resolve => setTimeout(resolve, 50))
  stream.send([2, 1, 'k'])
  t.match(await stream.answer(2), [2, 503, { error: /shutting down/ }], 'a request after close began is refused')
  release()
  t.equal((await stream.answer(1))[1], 404, 'the request in flight got its answer')
  t.same(await stream.closeCode(), { code: 1001, reason: 'this node is shutting down; retry on another node' })
  await closing
  t.equal(api.server.inFlight, 0)
})

t.test('stream requests are counted in the metrics', async t => {
  const api = await startApi(t)
  const stream = await openStream(t, api)
  stream.send([1, 2, 'k', Buffer.from('v')], [2, 1, 'k'], [3, 1, 'absent'], [4, 3, 'k'])
  await stream.answers(4)
  stream.socket.send('not binary')
  await stream.closeCode()
  const oversized = await openStream(t, api)
  oversized.send([1, 2, 'k', Buffer.alloc(TEST_LIMITS.maxBatchBodyBytes + 1)])
  await oversized.closeCode()
  // Counts reach Prometheus once a second.
  let text = ''
  for (let attempt = 0; attempt < 40 && !(text.includes('stream_text') && text.includes('stream_oversized')); attempt++) {
    await new Promise(resolve => setTimeout(resolve, 100))
    text = await (await fetch(`${api.url}/metrics`)).text()
  }
  t.match(text, /hearsay_http_requests_total\{route="\/v1\/stream",method="PUT",status="200"\} 1/)
  t.match(text, /hearsay_http_requests_total\{route="\/v1\/stream",method="GET",status="404"\} 1/)
  t.match(text, /hearsay_kv_writes_total\{op="delete"\} 1/)
  t.match(text, /hearsay_http_client_errors_total\{code="stream_text"\} 1/)
  t.match(text, /hearsay_http_client_errors_total\{code="stream_oversized"\} 1/)
})

/** Counts the messages the server's stream sockets write (client sockets have a url, the server's do not). */
function countServerSends(t: Test): { readonly count: number } {
  const counter = { count: 0 }
  const original = WebSocket.prototype.send
  WebSocket.prototype.send = function (this: WebSocket, ...args: Parameters<WebSocket['send']>) {
    if (!this.url) counter.count++
    return original.apply(this, args)
  } as WebSocket['send']
  t.teardown(() => { WebSocket.prototype.send = original })
  return counter
}

t.test('the answer to the only request in flight is written at once, not at the end of the turn', async t => {
  const kv = new MemoryKv()
  await kv.put('k', Buffer.from('v'), {})
  const api = await startApi(t, { kv })
  const stream = await openStream(t, api)
  let answerGet: (() => void) | undefined
  const get = kv.get.bind(kv)
  kv.get = (key, options) => new Promise(resolve => { answerGet = () => resolve(get(key, options)) })
  stream.send([1, 1, 'k'])
  for (let attempt = 0; attempt < 500 && answerGet === undefined; attempt++) await new Promise(resolve => setTimeout(resolve, 10))
  const sends = countServerSends(t)
  // An answer left for the end-of-turn flush would be written after this marker, scheduled first.
  const sentByTurnEnd = new Promise<number>(resolve => setImmediate(() => resolve(sends.count)))
  answerGet?.()
  t.equal(await sentByTurnEnd, 1, 'written as soon as the request finished')
  const [answer] = await stream.answers(1)
  t.same([answer?.[0], answer?.[1], Buffer.from(answer?.[2] as Uint8Array).toString()], [1, 200, 'v'])
})

t.test('answers that finish in one turn while others are in flight leave together', async t => {
  const { kv, release } = reversingKv()
  const api = await startApi(t, { kv })
  for (let i = 0; i < 3; i++) await kv.put(`k${i}`, Buffer.from(`value ${i}`), {})
  const stream = await openStream(t, api)
  stream.send([1, 1, 'k0'], [2, 1, 'k1'], [3, 1, 'k2'])
  for (let attempt = 0; attempt < 500 && api.server.inFlight < 3; attempt++) await new Promise(resolve => setTimeout(resolve, 10))
  const sends = countServerSends(t)
  release()
  t.equal((await stream.answers(3)).length, 3)
  t.equal(sends.count, 1, 'three answers, one message')
})
