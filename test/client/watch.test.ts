import { once } from 'node:events'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { HearsayClient, HearsayClientError, WatchHistoryGoneError, type WatchEvent, type WatchReconnect } from '../../lib/client/client.js'
import { closedPort } from './fixtures/fake-node.js'

const NODE_ID = '00000000000000aa'
const version = (n: number): string => `${String(1_700_000_000_000_000 + n).padStart(16, '0')}-${NODE_ID}`

/** An SSE frame of one change as a node writes it. */
function change(key: string, n: number, deleted = false): string {
  const data = { key, value: deleted ? null : Buffer.from(`v${n}`).toString('base64'), version: version(n), deleted }
  return `id: ${version(n)}\nevent: change\ndata: ${JSON.stringify(data)}\n\n`
}

interface WatchRequest {
  readonly url: URL
  readonly headers: http.IncomingHttpHeaders
  readonly response: http.ServerResponse
}

/** A node stand-in that hands every watch request to `handle`. */
async function watchNode(handle: (request: WatchRequest) => void): Promise<{ url: string; requests: WatchRequest[]; close(): Promise<void> }> {
  const requests: WatchRequest[] = []
  const server = http.createServer((req, res) => {
    const request = { url: new URL(req.url ?? '/', 'http://x'), headers: req.headers, response: res }
    requests.push(request)
    handle(request)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    url,
    requests,
    async close() {
      server.closeAllConnections()
      server.close()
      await once(server, 'close')
    },
  }
}

function openStream(response: http.ServerResponse, ...frames: string[]): void {
  response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
  response.flushHeaders()
  for (const frame of frames) response.write(frame)
}

async function take(iterator: AsyncIterator<WatchEvent>, count: number): Promise<WatchEvent[]> {
  const events: WatchEvent[] = []
  while (events.length < count) {
    const next = await iterator.next()
    if (next.done === true) break
    events.push(next.value)
  }
  return events
}

t.test('changes arrive decoded; the request names prefix, watch, since and the token', async t => {
  const node = await watchNode(({ response }) => openStream(response, ': heartbeat\n\n', change('a/1', 1), change('a/2', 2, true)))
  const client = new HearsayClient({ nodes: [node.url], token: 's3cret' })
  t.teardown(() => { client.close(); return node.close() })
  const watch = client.watch('a/', { since: version(0) })
  const events = await take(watch, 2)
  await watch.return()
  t.same(events.map(e => [e.key, e.value?.toString() ?? null, e.version, e.deleted]), [['a/1', 'v1', version(1), false], ['a/2', null, version(2), true]])
  const request = node.requests[0]!
  t.equal(request.url.pathname, '/kv')
  t.same(Object.fromEntries(request.url.searchParams), { prefix: 'a/', watch: 'true', since: version(0) })
  t.equal(request.headers.authorization, 'Bearer s3cret')
  t.equal(request.headers.accept, 'text/event-stream')
})

t.test('a dropped stream resumes on the next node from the last version, re-sent changes dropped', async t => {
  const first = await watchNode(({ response }) => {
    openStream(response, change('k/a', 1), change('k/b', 2))
    // The node dies mid-stream: the socket is reset after two changes.
    setTimeout(() => response.socket?.destroy(), 20)
  })
  // The second node re-sends from a margin before the resume point, out of order, then goes on.
  const second = await watchNode(({ response }) => openStream(response, change('k/b', 2), change('k/a', 1), change('k/c', 3)))
  const client = new HearsayClient({ nodes: [first.url, second.url] })
  t.teardown(async () => { client.close(); await first.close(); await second.close() })
  const reconnects: WatchReconnect[] = []
  const watch = client.watch('k/', { onReconnect: r => reconnects.push(r) })
  const events = await take(watch, 3)
  await watch.return()
  t.same(events.map(e => e.key), ['k/a', 'k/b', 'k/c'], 'every change exactly once')
  t.equal(second.requests[0]?.url.searchParams.get('since'), version(2), 'the second node is asked from the newest delivered version')
  t.equal(reconnects.length, 1)
  t.equal(reconnects[0]?.next, second.url)
})

t.test('a stream that fails before delivering anything resumes from when the watch started', async t => {
  const first = await watchNode(({ response }) => { openStream(response); setTimeout(() => response.socket?.destroy(), 20) })
  const second = await watchNode(({ response }) => openStream(response, change('x', 5)))
  const client = new HearsayClient({ nodes: [first.url, second.url] })
  t.teardown(async () => { client.close(); await first.close(); await second.close() })
  const before = Date.now()
  const watch = client.watch('')
  await take(watch, 1)
  await watch.return()
  t.equal(first.requests[0]?.url.searchParams.has('since'), false, 'the first stream starts live')
  const since = second.requests[0]?.url.searchParams.get('since') ?? ''
  t.match(since, /^\d{16}-0{16}$/, 'the resume point is a version made from the clock')
  t.ok(Number(since.slice(0, 16)) >= before * 1000, 'not before the watch was asked for')
})

t.test('503 and a cut move on to the next node; an id-only block is a resume point', async t => {
  const busy = await watchNode(({ response }) => { response.writeHead(503, { 'content-type': 'application/json' }); response.end('{"error":"too many watchers"}') })
  const cutting = await watchNode(({ response }) => { openStream(response, 'id: ' + version(7) + '\n\n', 'event: cut\ndata: {"reason":"slow consumer"}\n\n'); response.end() })
  const good = await watchNode(({ response }) => openStream(response, change('z', 8)))
  const client = new HearsayClient({ nodes: [busy.url, cutting.url, good.url] })
  t.teardown(async () => { client.close(); await busy.close(); await cutting.close(); await good.close() })
  const reasons: string[] = []
  const watch = client.watch('', { onReconnect: r => reasons.push(r.reason) })
  const [event] = await take(watch, 1)
  await watch.return()
  t.equal(event?.key, 'z')
  t.match(reasons[0], /too many watchers/)
  t.match(reasons[1], /cut the watch: slow consumer/)
  t.equal(good.requests[0]?.url.searchParams.get('since'), version(7), 'the id the cutting node sent is where the next stream resumes')
})

t.test('410 ends the watch with the oldest version to resume from', async t => {
  const node = await watchNode(({ response }) => {
    response.writeHead(410, { 'content-type': 'application/json' })
    response.end(JSON.stringify({ error: 'too old', oldest: version(100) }))
  })
  const client = new HearsayClient({ nodes: [node.url] })
  t.teardown(() => { client.close(); return node.close() })
  const error = await take(client.watch('', { since: version(1) }), 1).catch((err: unknown) => err)
  t.type(error, WatchHistoryGoneError)
  t.equal((error as WatchHistoryGoneError).status, 410)
  t.equal((error as WatchHistoryGoneError).oldest, version(100))
  t.match((error as Error).message, /list the prefix again/)
})

t.test('an error answer such as 401 is the answer: no other node is tried', async t => {
  const node = await watchNode(({ response }) => { response.writeHead(401, { 'content-type': 'application/json' }); response.end('{"error":"a token is needed"}') })
  const other = await watchNode(({ response }) => openStream(response))
  const client = new HearsayClient({ nodes: [node.url, other.url] })
  t.teardown(async () => { client.close(); await node.close(); await other.close() })
  const error = await take(client.watch(''), 1).catch((err: unknown) => err)
  t.type(error, HearsayClientError)
  t.equal((error as HearsayClientError).status, 401)
  t.equal(other.requests.length, 0)
})

t.test('a silent stream is taken for dead after idleTimeoutMs', async t => {
  const silent = await watchNode(({ response }) => openStream(response))
  const good = await watchNode(({ response }) => openStream(response, change('s', 1)))
  const client = new HearsayClient({ nodes: [silent.url, good.url] })
  t.teardown(async () => { client.close(); await silent.close(); await good.close() })
  const reasons: string[] = []
  const watch = client.watch('', { idleTimeoutMs: 200, onReconnect: r => reasons.push(r.reason) })
  const [event] = await take(watch, 1)
  await watch.return()
  t.equal(event?.key, 's')
  t.match(reasons[0], /silent for 200 ms/)
})

t.test('with no node reachable the watch gives up after maxReconnectMs', async t => {
  const port = await closedPort()
  const client = new HearsayClient({ nodes: [`http://127.0.0.1:${port}`] })
  t.teardown(() => client.close())
  const error = await take(client.watch('', { maxReconnectMs: 300 }), 1).catch((err: unknown) => err)
  t.match((error as Error).message, /no hearsay node answered.*ECONNREFUSED/)
})

t.test('aborting the signal ends the iteration and closes the stream', async t => {
  let closed = false
  const node = await watchNode(({ response }) => {
    openStream(response, change('a', 1))
    response.on('close', () => { closed = true })
  })
  const client = new HearsayClient({ nodes: [node.url] })
  t.teardown(() => { client.close(); return node.close() })
  const controller = new AbortController()
  const watch = client.watch('', { signal: controller.signal })
  t.equal((await watch.next()).value?.key, 'a')
  const pending = watch.next()
  controller.abort()
  t.same(await pending, { done: true, value: undefined }, 'the loop ends without an error')
  await new Promise<void>(resolve => { const check = (): void => { if (closed) resolve(); else setTimeout(check, 10) }; check() })
  t.ok(closed, 'the node sees the stream closed')
})

t.test('a since that is not a version string is refused at the call', async t => {
  const client = new HearsayClient({ nodes: ['http://127.0.0.1:1'] })
  t.teardown(() => client.close())
  t.throws(() => client.watch('', { since: 'yesterday' }), /since must be a version string/)
})
