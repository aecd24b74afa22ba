import { once } from 'node:events'
import { spawn, spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { WebSocket } from 'ws'
import type { NodeId } from '../../lib/clock/version.js'
import { HearsayClient, HearsayClientError, NoNodeAnsweredError, type ClientTransport } from '../../lib/client/client.js'
import { QuorumNotMetError } from '../../lib/errors.js'
import { fixedTlsMaterial, MemoryKv, startApi, type Harness } from '../api/fixtures/harness.js'
import { startFakeNode } from './fixtures/fake-node.js'
import { scriptCommand } from '../helpers/node-command.js'

/**
 * HearsayClient over the stream protocol against the real API server (in-process, over an
 * in-memory KvService): the same results and errors as over HTTP, pipelining, failover, and
 * falling back to HTTP where the stream cannot be used.
 */

const STREAM_OPENED = 'stream connection opened'
const hasOpenssl = spawnSync('openssl', ['version']).status === 0

function client(t: Test, nodes: readonly string[], transport?: ClientTransport, token?: string): HearsayClient {
  const made = new HearsayClient({ nodes, ...(transport === undefined ? {} : { transport }), ...(token === undefined ? {} : { token }) })
  t.teardown(() => made.close())
  return made
}

/** HTTP requests the node answered on `route` so far (counted at once, unlike stream requests). */
async function httpRequests(api: Harness, route: string): Promise<number> {
  const text = await api.metrics.registry.getSingleMetricAsString('hearsay_http_requests_total')
  return text.split('\n')
    .filter(line => line.includes(`route="${route}"`))
    .reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0)
}

function streamsOpened(api: Harness): number {
  return api.logLines.filter(line => line.msg === STREAM_OPENED).length
}

t.test('the first request goes over HTTP, the rest over one stream connection', async t => {
  const api = await startApi(t)
  const hearsay = client(t, [api.url])
  await hearsay.put('a', '1')
  t.equal(await httpRequests(api, '/kv/:key'), 1, 'the first put went over HTTP')
  t.equal(streamsOpened(api), 0, 'no stream before the node advertised it')
  await hearsay.put('b', '2')
  t.equal((await hearsay.get('a'))?.value.toString(), '1')
  await hearsay.delete('a')
  await hearsay.batch([{ op: 'put', key: 'c', value: '3' }])
  t.equal(await httpRequests(api, '/kv/:key'), 1, 'later key requests did not use HTTP')
  t.equal(await httpRequests(api, '/batch'), 0, 'nor did the batch')
  t.equal(streamsOpened(api), 1, 'one stream connection carried them all')
})

t.test('transport "http" never opens a stream', async t => {
  const api = await startApi(t)
  const hearsay = client(t, [api.url], 'http')
  for (let i = 0; i < 3; i++) await hearsay.put(`k${i}`, 'v')
  t.equal(await httpRequests(api, '/kv/:key'), 3)
  t.equal(streamsOpened(api), 0)
  t.throws(() => new HearsayClient({ nodes: [api.url], transport: 'carrier-pigeon' as ClientTransport }), { name: 'ClientOptionsError', message: /transport must be "binary" or "http"/ })
})

t.test('both transports give the same replies', async t => {
  const replies: Record<ClientTransport, unknown[]> = { http: [], binary: [] }
  for (const transport of ['http', 'binary'] as const) {
    const api = await startApi(t)
    const hearsay = client(t, [api.url], transport)
    await hearsay.put('warm-up', 'x')
    const bytes = Uint8Array.from({ length: 256 }, (_, i) => i)
    const put = await hearsay.put('bytes', bytes, { w: 'all', ttlSeconds: 60 })
    const got = await hearsay.get('bytes', { r: 1 })
    t.ok(got !== undefined && Buffer.from(bytes).equals(got.value), `${transport}: every byte value round-trips`)
    t.equal(got?.version, put.version, `${transport}: get reports the version put returned`)
    const emoji = await hearsay.put('🦜 a/b?c', 'parrot')
    const deleted = await hearsay.delete('bytes', { w: 'one' })
    const batch = await hearsay.batch([{ op: 'put', key: 'x', value: Uint8Array.of(0, 255), ttlSeconds: 9 }, { op: 'delete', key: 'y' }], { w: 'quorum' })
    // Versions differ by the clock; everything else must not.
    const shape = (reply: { version: string }): unknown => ({ ...reply, version: typeof reply.version })
    replies[transport].push(shape(put), shape(emoji), shape(deleted), batch.map(shape), await hearsay.get('bytes'), (await hearsay.get('🦜 a/b?c'))?.value.toString())
    t.same((api.kv as MemoryKv).writes.map(write => write.options).slice(1), [
      { w: 'all', ttlSeconds: 60 }, {}, { w: 'one' }, { w: 'quorum', ttlSeconds: 9 }, { w: 'quorum' },
    ], `${transport}: options reached the node`)
  }
  t.same(replies.binary, replies.http)
})

t.test('error answers are the same HearsayClientError over both transports', async t => {
  const errors: Record<ClientTransport, unknown[]> = { http: [], binary: [] }
  for (const transport of ['http', 'binary'] as const) {
    const kv = new MemoryKv()
    const api = await startApi(t, { kv })
    const hearsay = client(t, [api.url], transport)
    await hearsay.put('warm-up', 'x')
    kv.delete = async () => { throw new QuorumNotMetError('write', 2, 1, { version: { hlc: 1_700_000_000_000_000, node: '00000000000000a1' as NodeId } }) }
    const attempts: (() => Promise<unknown>)[] = [
      () => hearsay.put('k', Buffer.alloc(4097)),
      () => hearsay.delete('k'),
      () => hearsay.get('k', { r: 7 }),
      () => hearsay.put('k', 'v', { ttlSeconds: 0 }),
      () => hearsay.batch([{ op: 'put', key: '', value: 'v' }]),
      () => hearsay.batch(Array.from({ length: 6 }, (_, i) => ({ op: 'delete' as const, key: `k${i}` }))),
    ]
    for (const attempt of attempts) {
      const error = await attempt().catch((e: unknown) => e)
      t.type(error, HearsayClientError, `${transport}: a HearsayClientError`)
      const { status, body, node } = error as HearsayClientError
      t.equal(node, api.url)
      errors[transport].push({ status, error: body.error })
    }
    t.equal(await hearsay.get('absent'), undefined, `${transport}: an absent key is undefined`)
  }
  t.same(errors.binary.map(e => (e as { status: number }).status), [413, 503, 400, 400, 400, 413])
  t.same(errors.binary, errors.http, 'statuses and messages match')
})

t.test('hundreds of requests share one connection and get their own answers, whatever the order', async t => {
  const kv = new MemoryKv()
  const api = await startApi(t, { kv })
  const hearsay = client(t, [api.url])
  for (let i = 0; i < 300; i++) await kv.put(`k${i}`, Buffer.from(`value ${i}`), {})
  await hearsay.get('warm-up')
  // Answer the gets in the reverse order they arrived.
  const waiting: (() => void)[] = []
  const get = kv.get.bind(kv)
  kv.get = (key, options) => new Promise(resolve => waiting.push(() => resolve(get(key, options))))
  const results = Array.from({ length: 300 }, (_, i) => hearsay.get(`k${i}`))
  for (let attempt = 0; attempt < 500 && waiting.length < 300; attempt++) await new Promise(resolve => setTimeout(resolve, 10))
  t.equal(waiting.length, 300, 'all 300 were in flight at once')
  for (const answer of waiting.splice(0).reverse()) answer()
  const values = (await Promise.all(results)).map(result => result?.value.toString())
  t.same(values, Array.from({ length: 300 }, (_, i) => `value ${i}`))
  t.equal(streamsOpened(api), 1)
})

t.test('when the node with the stream goes away, requests fail over to the next node', async t => {
  const first = await startApi(t)
  const second = await startApi(t)
  const hearsay = client(t, [first.url, second.url])
  await hearsay.put('a', '1')
  await hearsay.put('b', '2')
  t.equal(streamsOpened(first), 1, 'the first node serves over a stream')
  await first.server.close(0)
  const reply = await hearsay.put('c', '3')
  t.equal(reply.key, 'c')
  t.ok((second.kv as MemoryKv).records.has('c'), 'the write reached the second node')
  await hearsay.put('d', '4')
  t.equal(streamsOpened(second), 1, 'the second node is then used over its own stream')
  t.ok((second.kv as MemoryKv).records.has('d'))
})

t.test('with every node gone the error names each node tried', async t => {
  const api = await startApi(t)
  const hearsay = client(t, [api.url])
  await hearsay.put('a', '1')
  await hearsay.put('b', '2')
  await api.server.close(0)
  const error = await hearsay.put('c', '3').catch((e: unknown) => e)
  t.type(error, NoNodeAnsweredError)
  t.same((error as NoNodeAnsweredError).tried, [api.url])
})

t.test('a request too large for one stream message goes over HTTP and gets the HTTP answer', async t => {
  const api = await startApi(t)
  const hearsay = client(t, [api.url])
  await hearsay.put('warm-up', 'x')
  // TEST_LIMITS: a stream message is at most maxBatchBodyBytes = 16 KiB; values at most 4 KiB.
  const error = await hearsay.put('big', Buffer.alloc(20_000)).catch((e: unknown) => e)
  t.match(error, { name: 'HearsayClientError', status: 413, message: 'value is larger than the limit of 4096 bytes' })
  t.equal(await httpRequests(api, '/kv/:key'), 2, 'the oversized put went over HTTP')
  t.equal((await hearsay.put('small', 'x')).key, 'small', 'the stream still serves the next request')
  t.equal(await httpRequests(api, '/kv/:key'), 2)
})

t.test('a node that advertises the stream but refuses the upgrade is spoken to over HTTP', async t => {
  const node = await startFakeNode({
    override(request, response) {
      if (request.url === '/v1/stream') {
        response.writeHead(404, { 'content-type': 'application/json' })
        response.end(JSON.stringify({ error: 'no such endpoint' }))
        return true
      }
      // Pass through to the normal routes, adding the advertisement.
      response.setHeader('hearsay-stream', '/v1/stream')
      return false
    },
  })
  t.teardown(() => node.close())
  const hearsay = client(t, [node.url])
  for (let i = 0; i < 4; i++) t.equal((await hearsay.put(`k${i}`, 'v')).key, `k${i}`)
  t.equal(node.requests.filter(request => request.url === '/v1/stream').length, 1, 'the upgrade was tried once, not on every request')
  t.equal(node.requests.filter(request => request.method === 'PUT').length, 4, 'every put went over HTTP')
})

t.test('the bearer token is sent with the upgrade', async t => {
  const api = await startApi(t, { token: 's3cret' })
  const hearsay = client(t, [api.url], undefined, 's3cret')
  await hearsay.put('a', '1')
  await hearsay.put('b', '2')
  t.equal(streamsOpened(api), 1, 'the stream was opened with the token')
  const wrong = client(t, [api.url], undefined, 'wrong')
  await t.rejects(wrong.put('a', '1'), { name: 'HearsayClientError', status: 401 }, 'a wrong token is a 401 over either transport')
})

/**
 * Runs `lines` of TypeScript (after an import of HearsayClient) from a script in `dir`, in a
 * child node process with this process's loader flags; resolves with its exit and output,
 * killing it after 20 s.
 */
/**
 * Bound on a script's run: it compiles TypeScript on start, which took ~20 s on the shared 2-core
 * machine under load, so a tighter bound failed tests that had nothing wrong.
 */
const SCRIPT_TIMEOUT_MS = 60_000

async function runScript(dir: string, lines: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; signal: string | null; output: string }> {
  const script = join(dir, 'script.ts')
  writeFileSync(script, [`import { HearsayClient } from ${JSON.stringify(join(process.cwd(), 'lib/client/client.ts'))}`, ...lines].join('\n'))
  const command = scriptCommand([script])
  const child = spawn(command.command, command.args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } })
  let output = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  const killer = setTimeout(() => child.kill('SIGKILL'), SCRIPT_TIMEOUT_MS)
  const [code, signal] = await once(child, 'exit') as [number | null, string | null]
  clearTimeout(killer)
  return { code, signal, output }
}

t.test('an idle stream connection does not keep the process alive', async t => {
  const api = await startApi(t)
  const { code, signal, output } = await runScript(t.testdir(), [
    `const client = new HearsayClient({ nodes: [${JSON.stringify(api.url)}] })`,
    "for (let i = 0; i < 3; i++) await client.put('k' + i, 'v')",
    "console.log('done')",
  ])
  t.equal(signal, null, 'the process exited by itself, without close()')
  t.equal(code, 0, output)
  t.equal(output.trim(), 'done')
  t.equal(streamsOpened(api), 1, 'a stream was open when the script ended')
})

t.test('over TLS the stream runs on wss://', { skip: hasOpenssl ? false : 'openssl is not installed' }, async t => {
  const dir = t.testdir()
  const keyPath = join(dir, 'key.pem')
  const certPath = join(dir, 'cert.pem')
  const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', keyPath, '-out', certPath], { timeout: 30_000 })
  t.equal(made.status, 0, 'a self-signed certificate was made')
  const cert = readFileSync(certPath)
  const api = await startApi(t, { tls: { mode: 'on', minVersion: 'TLSv1.2', material: fixedTlsMaterial({ key: readFileSync(keyPath), cert, ca: cert }) } })
  const { code, output } = await runScript(dir, [
    `const client = new HearsayClient({ nodes: [${JSON.stringify(`https://${api.host}:${api.port}`)}] })`,
    "await client.put('a', '1')",
    "await client.put('b', '2')",
    "console.log((await client.get('b'))?.value.toString())",
    'client.close()',
  ], { NODE_EXTRA_CA_CERTS: certPath })
  t.equal(code, 0, output)
  t.equal(output.trim(), '2')
  t.equal(streamsOpened(api), 1, 'the client upgraded to a wss:// stream')
})

t.test('an HTTP answer without the advertisement leaves the client on HTTP', async t => {
  const seen: string[] = []
  const server = http.createServer((request, response) => {
    seen.push(`${request.method} ${request.url}`)
    response.writeHead(200, { 'content-type': 'application/json' })
    response.end(JSON.stringify({ key: 'k', version: '0000000000000001-00000000000000aa', acks: 1, w: 1 }))
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => { server.close(() => resolve()); server.closeAllConnections() }))
  const hearsay = client(t, [`http://127.0.0.1:${(server.address() as AddressInfo).port}`])
  for (let i = 0; i < 3; i++) await hearsay.put('k', 'v')
  t.same(seen, ['PUT /kv/k', 'PUT /kv/k', 'PUT /kv/k'])
})

/** Counts the messages the client's stream sockets write (a client socket has a url, the server's do not). */
function countClientSends(t: Test): { readonly count: number } {
  const counter = { count: 0 }
  const original = WebSocket.prototype.send
  WebSocket.prototype.send = function (this: WebSocket, ...args: Parameters<WebSocket['send']>) {
    if (this.url) counter.count++
    return original.apply(this, args)
  } as WebSocket['send']
  t.teardown(() => { WebSocket.prototype.send = original })
  return counter
}

t.test('a request with nothing else in flight is written at once, not at the end of the turn', async t => {
  const kv = new MemoryKv()
  const api = await startApi(t, { kv })
  const hearsay = client(t, [api.url])
  await hearsay.get('warm-up')
  await hearsay.get('the stream is open')
  const sends = countClientSends(t)
  // A request left for the end-of-turn flush would be written after this marker, scheduled first.
  const sentByTurnEnd = new Promise<number>(resolve => setImmediate(() => resolve(sends.count)))
  const reply = hearsay.put('k', 'v')
  t.equal(await sentByTurnEnd, 1)
  t.ok((await reply).version)
})

t.test('requests sent in the turn a burst of answers arrived leave together', async t => {
  const kv = new MemoryKv()
  const api = await startApi(t, { kv })
  const hearsay = client(t, [api.url])
  await hearsay.get('warm-up')
  const waiting: (() => void)[] = []
  const get = kv.get.bind(kv)
  kv.get = (key, options) => new Promise(resolve => waiting.push(() => resolve(get(key, options))))
  const burst = Array.from({ length: 4 }, (_, i) => hearsay.get(`a${i}`))
  for (let attempt = 0; attempt < 500 && waiting.length < 4; attempt++) await new Promise(resolve => setTimeout(resolve, 10))
  kv.get = get
  const sends = countClientSends(t)
  // The four answers come back in one message; their callers each send the next request at once.
  const next = Promise.all(burst).then(() => Promise.all(Array.from({ length: 4 }, (_, i) => hearsay.get(`b${i}`))))
  for (const answer of waiting.splice(0)) answer()
  t.equal((await next).length, 4)
  t.equal(sends.count, 1, 'the four follow-up requests went out as one message')
})
