import net from 'node:net'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { ClientOptionsError, HearsayClient, HearsayClientError, InvalidReplyError, NoNodeAnsweredError } from '../../lib/client/client.js'
import { closedPort, startFakeNode } from './fixtures/fake-node.js'

t.test('odd keys travel percent-encoded and come back unchanged', async t => {
  const node = await startFakeNode()
  const client = new HearsayClient({ nodes: [node.url] })
  t.teardown(() => { client.close(); return node.close() })

  const cases: [key: string, encodedPath: string][] = [
    ['with space', '/kv/with%20space'],
    ['a/b/c', '/kv/a%2Fb%2Fc'],
    ['emoji 🦜', '/kv/emoji%20%F0%9F%A6%9C'],
    ['100%', '/kv/100%25'],
    ['q?x=1#frag', '/kv/q%3Fx%3D1%23frag'],
  ]
  for (const [key, encodedPath] of cases) {
    const reply = await client.put(key, `value of ${key}`)
    t.equal(reply.key, key, `the node decoded ${JSON.stringify(key)}`)
    t.equal(node.requests.at(-1)?.url, encodedPath, `${JSON.stringify(key)} is sent as ${encodedPath}`)
    const got = await client.get(key)
    t.equal(got?.value.toString('utf8'), `value of ${key}`)
    t.equal(got?.version, reply.version, 'get reports the version put returned')
  }
})

t.test('values are bytes: all 256 byte values round-trip', async t => {
  const node = await startFakeNode()
  const client = new HearsayClient({ nodes: [node.url] })
  t.teardown(() => { client.close(); return node.close() })
  const bytes = Uint8Array.from({ length: 256 }, (_, i) => i)
  await client.put('bin', bytes)
  t.same(node.requests.at(-1)?.headers['content-type'], 'application/octet-stream')
  const got = await client.get('bin')
  t.ok(got !== undefined && Buffer.from(bytes).equals(got.value), 'the same 256 bytes come back')
})

t.test('get of an absent key is undefined, not an error', async t => {
  const node = await startFakeNode()
  const client = new HearsayClient({ nodes: [node.url] })
  t.teardown(() => { client.close(); return node.close() })
  t.equal(await client.get('nope'), undefined)
})

t.test('write levels, ttl and read levels go in the query string', async t => {
  const node = await startFakeNode()
  const client = new HearsayClient({ nodes: [node.url], token: 's3cret' })
  t.teardown(() => { client.close(); return node.close() })
  await client.put('k', 'v', { w: 'all', ttlSeconds: 60 })
  t.equal(node.requests.at(-1)?.url, '/kv/k?w=all&ttl=60')
  await client.get('k', { r: 2 })
  t.equal(node.requests.at(-1)?.url, '/kv/k?r=2')
  await client.delete('k', { w: 'quorum' })
  t.equal(node.requests.at(-1)?.method, 'DELETE')
  t.equal(node.requests.at(-1)?.url, '/kv/k?w=quorum')
  t.ok(node.requests.every(r => r.headers.authorization === 'Bearer s3cret'), 'every request carries the bearer token')
})

t.test('when the first node refuses connections the second one answers', async t => {
  const deadPort = await closedPort()
  const node = await startFakeNode()
  const client = new HearsayClient({ nodes: [`http://127.0.0.1:${deadPort}`, node.url] })
  t.teardown(() => { client.close(); return node.close() })
  const reply = await client.put('k', 'v')
  t.equal(reply.key, 'k')
  t.equal(node.store.get('k')?.value.toString(), 'v', 'the write reached the second node')
})

t.test('requests start from the node that answered last', async t => {
  const first = await startFakeNode()
  const second = await startFakeNode()
  const client = new HearsayClient({ nodes: [first.url, second.url] })
  t.teardown(async () => { client.close(); await second.close() })

  await client.put('a', '1')
  t.equal(first.requests.length, 1, 'the first listed node is asked first')
  await first.close()
  await client.put('b', '2')
  t.equal(second.store.get('b')?.value.toString(), '2', 'the second node took over')

  const revived = await startFakeNode({}, first.port)
  t.teardown(() => revived.close())
  await client.put('c', '3')
  t.equal(revived.requests.length, 0, 'the revived first node is not asked')
  t.equal(second.store.get('c')?.value.toString(), '3', 'the node that last answered is asked first')
})

t.test('a node that does not answer in time is skipped', async t => {
  const silent = net.createServer(socket => { socket.on('error', () => {}) })
  await new Promise<void>(resolve => silent.listen(0, '127.0.0.1', resolve))
  const sockets = new Set<net.Socket>()
  silent.on('connection', socket => sockets.add(socket))
  const node = await startFakeNode()
  const silentUrl = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`
  const client = new HearsayClient({ nodes: [silentUrl, node.url], timeoutMs: 200 })
  t.teardown(async () => {
    client.close()
    for (const socket of sockets) socket.destroy()
    await new Promise<void>(resolve => silent.close(() => resolve()))
    await node.close()
  })
  t.equal((await client.put('k', 'v')).key, 'k')
  t.equal(node.requests.length, 1, 'the answering node got the request')
})

t.test('a 503 naming a refusing node state (starting, repairing, leaving, skewed) moves on to the next node', async t => {
  for (const nodeState of ['starting', 'repairing', 'leaving', 'skewed']) {
    const refusing = await startFakeNode({
      override(_request, response) {
        response.writeHead(503, { 'content-type': 'application/json' })
        response.end(JSON.stringify({ error: `this node is ${nodeState}; retry on another node`, nodeState }))
        return true
      },
    })
    const other = await startFakeNode()
    const client = new HearsayClient({ nodes: [refusing.url, other.url], transport: 'http' })
    t.equal((await client.put('k', 'v')).key, 'k', `${nodeState}: the other node answered`)
    t.equal(other.requests.length, 1)
    const alone = new HearsayClient({ nodes: [refusing.url], transport: 'http' })
    const err = await alone.get('k').catch((e: unknown) => e) as HearsayClientError
    t.equal(err.status, 503, `${nodeState}: with no other node the refusal is the answer`)
    t.equal(err.body.nodeState, nodeState)
    client.close(); alone.close(); await refusing.close(); await other.close()
  }
})

t.test('an HTTP error answer is the answer: no failover on 503', async t => {
  const refusing = await startFakeNode({
    override(_request, response) {
      response.writeHead(503, { 'content-type': 'application/json' })
      response.end(JSON.stringify({ error: 'write needed 2 replica acknowledgements but got 1 in time', needed: 2, acks: 1, version: 'v' }))
      return true
    },
  })
  const other = await startFakeNode()
  const client = new HearsayClient({ nodes: [refusing.url, other.url] })
  t.teardown(async () => { client.close(); await refusing.close(); await other.close() })

  const err = await client.put('k', 'v').catch((e: unknown) => e)
  t.type(err, HearsayClientError)
  const clientError = err as HearsayClientError
  t.equal(clientError.status, 503)
  t.equal(clientError.body.needed, 2, 'the server body is kept')
  t.equal(clientError.body.acks, 1)
  t.equal(clientError.node, refusing.url)
  t.match(clientError.message, /needed 2 replica/)
  t.equal(other.requests.length, 0, 'the other node was not asked')
})

t.test('a non-JSON error answer still becomes a HearsayClientError with its status', async t => {
  const proxy = await startFakeNode({
    override(_request, response) {
      response.writeHead(502, { 'content-type': 'text/plain' })
      response.end('bad gateway')
      return true
    },
  })
  const client = new HearsayClient({ nodes: [proxy.url] })
  t.teardown(() => { client.close(); return proxy.close() })
  await t.rejects(client.status(), { name: 'HearsayClientError', status: 502, message: /HTTP 502 .*bad gateway/ })
})

t.test('when no node answers, the error names every node tried', async t => {
  const ports = [await closedPort(), await closedPort()]
  const urls = ports.map(port => `http://127.0.0.1:${port}`)
  const client = new HearsayClient({ nodes: urls })
  t.teardown(() => client.close())
  const err = await client.get('k').catch((e: unknown) => e)
  t.type(err, NoNodeAnsweredError)
  t.equal((err as Error).message.startsWith(`no hearsay node answered (tried ${urls[0]}, ${urls[1]}): `), true, (err as Error).message)
  t.match((err as Error).message, /connection refused/)
  t.same((err as NoNodeAnsweredError).tried, urls)
})

t.test('node URLs are checked when the client is built', async t => {
  t.throws(() => new HearsayClient({ nodes: ['localhost:7070'] }), { name: 'ClientOptionsError', message: /no http:\/\/ or https:\/\/ scheme: write it like http:\/\/localhost:7070/ })
  t.throws(() => new HearsayClient({ nodes: ['ftp://host:21'] }), ClientOptionsError)
  t.throws(() => new HearsayClient({ nodes: ['http://host:7070/?x=1'] }), ClientOptionsError)
  t.throws(() => new HearsayClient({ nodes: [] }), { message: /no hearsay node given/ })
  t.throws(() => new HearsayClient({ nodes: ['http://a:1'], timeoutMs: -5 }), { message: /timeoutMs must be a positive integer/ })
  const client = new HearsayClient({ nodes: ['http://127.0.0.1:7070/', 'https://node-b:7443'] })
  t.same(client.nodes, ['http://127.0.0.1:7070', 'https://node-b:7443'], 'trailing slashes are dropped')
  client.close()
})

t.test('scan pages and scanAll follows next until the last page', async t => {
  const node = await startFakeNode({ scanPageSize: 2 })
  const client = new HearsayClient({ nodes: [node.url] })
  t.teardown(() => { client.close(); return node.close() })
  for (const key of ['p/1', 'p/2', 'p/3', 'p/4', 'p/5', 'q/1']) await client.put(key, `v${key}`)

  const first = await client.scan({ prefix: 'p/' })
  t.same(first.items.map(i => i.key), ['p/1', 'p/2'])
  t.equal(first.next, 'p/2')
  t.equal(first.items[0]?.value.toString(), 'vp/1', 'values are decoded from base64')

  const all: string[] = []
  for await (const item of client.scanAll({ prefix: 'p/' })) all.push(item.key)
  t.same(all, ['p/1', 'p/2', 'p/3', 'p/4', 'p/5'])
  t.equal(node.requests.filter(r => r.url.startsWith('/kv?')).length, 1 + 3, 'three pages for five keys, after the single scan')
})

t.test('scanAll stops at maxPages instead of paging forever', async t => {
  const node = await startFakeNode({ scanPageSize: 1 })
  const client = new HearsayClient({ nodes: [node.url] })
  t.teardown(() => { client.close(); return node.close() })
  for (const key of ['a', 'b', 'c']) await client.put(key, key)
  const seen: string[] = []
  await t.rejects(async () => { for await (const item of client.scanAll({ maxPages: 2 })) seen.push(item.key) }, { name: 'RangeError', message: /within 2 pages/ })
  t.same(seen, ['a', 'b'])
})

t.test('batch sends base64 values and returns one result per op', async t => {
  const node = await startFakeNode()
  const client = new HearsayClient({ nodes: [node.url] })
  t.teardown(() => { client.close(); return node.close() })
  const results = await client.batch([
    { op: 'put', key: 'x', value: Uint8Array.of(0, 255), ttlSeconds: 9 },
    { op: 'put', key: 'y', value: 'text' },
    { op: 'delete', key: 'z' },
  ], { w: 'one' })
  t.same(results.map(r => r.key), ['x', 'y', 'z'])
  t.same(JSON.parse(node.requests.at(-1)?.body.toString() ?? ''), {
    ops: [{ op: 'put', key: 'x', value: 'AP8=', ttl: 9 }, { op: 'put', key: 'y', value: 'dGV4dA==' }, { op: 'delete', key: 'z' }],
    w: 'one',
  })
})

t.test('health, members, status, sync and metrics are parsed', async t => {
  const node = await startFakeNode()
  const client = new HearsayClient({ nodes: [node.url] })
  t.teardown(() => { client.close(); return node.close() })
  t.same(await client.health(), { status: 'ok', id: '00000000000000aa', name: 'fake' })
  const members = await client.members()
  t.same(members.map(m => [m.name, m.state, m.incarnation]), [['fake', 'alive', 3], ['a-longer-name', 'suspect', 12]])
  t.equal((await client.status())['name'], 'fake')
  t.same(await client.sync(), { peers: 1, pushed: 0, pulled: 0 })
  t.equal(node.requests.at(-1)?.method, 'POST')
  t.match(await client.metricsText(), /^hearsay_store_keys/)
})

t.test('an answer that breaks the contract is an InvalidReplyError naming the field', async t => {
  const node = await startFakeNode({
    override(request, response) {
      if (request.url !== '/members') return false
      response.writeHead(200, { 'content-type': 'application/json' })
      response.end(JSON.stringify([{ id: 'x', name: 'n', peer: 'p', api: 'a', state: 'asleep', incarnation: 1 }]))
      return true
    },
  })
  const client = new HearsayClient({ nodes: [node.url] })
  t.teardown(() => { client.close(); return node.close() })
  await t.rejects(client.members(), InvalidReplyError)
  await t.rejects(client.members(), { message: /"state" is "asleep"/ })
})

t.test('sequential requests reuse one kept-alive connection', async t => {
  const node = await startFakeNode()
  const client = new HearsayClient({ nodes: [node.url] })
  t.teardown(() => { client.close(); return node.close() })
  for (let i = 0; i < 5; i++) await client.put(`k${i}`, 'v')
  t.equal(node.connections(), 1)
})

t.test('a kept-alive socket the server dropped is retried on a fresh one, not failed over', async t => {
  // Answers the first request of each connection with keep-alive and resets the connection
  // on the second, as a server does that closed an idle socket just as the client reused it.
  const body = JSON.stringify({ status: 'ok', id: '00000000000000aa', name: 'dropper' })
  let connections = 0
  const dropper = net.createServer(socket => {
    connections++
    let requestsSeen = 0
    let pending = ''
    socket.on('error', () => {})
    socket.on('data', chunk => {
      pending += chunk.toString('latin1')
      while (pending.includes('\r\n\r\n')) {
        pending = pending.slice(pending.indexOf('\r\n\r\n') + 4)
        requestsSeen++
        if (requestsSeen > 1) return void socket.resetAndDestroy()
        socket.write(`HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: keep-alive\r\n\r\n${body}`)
      }
    })
  })
  await new Promise<void>(resolve => dropper.listen(0, '127.0.0.1', resolve))
  const other = await startFakeNode()
  const client = new HearsayClient({ nodes: [`http://127.0.0.1:${(dropper.address() as AddressInfo).port}`, other.url] })
  t.teardown(async () => {
    client.close()
    await new Promise<void>(resolve => dropper.close(() => resolve()))
    await other.close()
  })

  t.equal((await client.health()).name, 'dropper')
  t.equal((await client.health()).name, 'dropper', 'the second request was retried on the same node')
  t.equal(connections, 2, 'the retry used a fresh connection')
  t.equal(other.requests.length, 0, 'the other node was not needed')
})

t.test('close() closes the kept-alive sockets', async t => {
  const node = await startFakeNode()
  t.teardown(() => node.close())
  const client = new HearsayClient({ nodes: [node.url] })
  await client.health()
  t.equal(node.openConnections(), 1, 'the socket stays open between requests')
  client.close()
  for (let i = 0; i < 100 && node.openConnections() > 0; i++) await new Promise(resolve => setTimeout(resolve, 20))
  t.equal(node.openConnections(), 0, 'the node saw the socket close')
})
