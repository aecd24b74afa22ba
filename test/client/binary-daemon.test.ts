import { Packr } from 'msgpackr'
import t, { type Test } from 'tap'
import { WebSocket } from 'ws'
import { HearsayClient, HearsayClientError } from '../../lib/client/client.js'
import { startCluster, startDaemon, waitFor, type Daemon } from '../helpers/daemon.js'

/**
 * The stream protocol against real hearsayd processes (built into dist/ first): the client's
 * operations, pipelining, malformed input, the bearer token and failover between nodes.
 */

const packr = new Packr({ useRecords: false })
/** Bound on every wait in this file; a hang fails the test instead of stalling the run. */
const WAIT_MS = 10_000

async function daemon(t: Test, config: Record<string, unknown> = {}): Promise<Daemon> {
  const started = await startDaemon({ config })
  t.teardown(() => started.stop())
  return started
}

/** Stream requests the node has counted (its counters reach /metrics within a second). */
async function streamRequests(client: HearsayClient): Promise<number> {
  const text = await client.metricsText()
  return text.split('\n')
    .filter(line => line.startsWith('hearsay_http_requests_total{route="/v1/stream"'))
    .reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0)
}

/** Opens a raw stream connection, sends `message`, and resolves with how the node closed it. */
function closeAfter(url: string, message: Buffer | string, headers: Record<string, string> = {}): Promise<{ code: number; reason: string }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url.replace(/^http/, 'ws') + '/v1/stream', { headers })
    const timer = setTimeout(() => { socket.terminate(); reject(new Error(`not closed within ${WAIT_MS} ms`)) }, WAIT_MS)
    socket.on('open', () => socket.send(message))
    socket.on('unexpected-response', (_request, response) => {
      clearTimeout(timer)
      resolve({ code: response.statusCode ?? 0, reason: 'upgrade refused' })
    })
    socket.on('error', () => {})
    socket.on('close', (code, reason) => {
      clearTimeout(timer)
      resolve({ code, reason: reason.toString() })
    })
  })
}

t.test('a daemon serves put, get, delete and batch over the stream, many at once', async t => {
  const node = await daemon(t)
  const client = new HearsayClient({ nodes: [node.url] })
  t.teardown(() => client.close())

  const first = await client.put('first', 'over HTTP')
  t.equal(first.key, 'first')
  const writes = await Promise.all(Array.from({ length: 500 }, (_, i) => client.put(`key-${i}`, `value ${i}`)))
  t.ok(writes.every((reply, i) => reply.key === `key-${i}` && reply.acks === 1 && reply.w === 1), 'every write acknowledged by the one replica')
  const reads = await Promise.all(Array.from({ length: 500 }, (_, i) => client.get(`key-${i}`)))
  t.ok(reads.every((reply, i) => reply?.value.toString() === `value ${i}` && reply.version === writes[i]?.version), 'every read returns its own key\'s value and version')

  t.equal((await client.delete('key-0')).key, 'key-0')
  t.equal(await client.get('key-0'), undefined, 'a deleted key reads as absent')
  const batch = await client.batch([{ op: 'put', key: 'b1', value: Uint8Array.of(0, 1, 255) }, { op: 'delete', key: 'key-1' }])
  t.same(batch.map(result => result.key), ['b1', 'key-1'])
  t.same([...(await client.get('b1'))?.value ?? []], [0, 1, 255])
  await t.rejects(client.put('k'.repeat(2000), 'v'), { name: 'HearsayClientError', status: 400, message: /more than the limit of 1024/ }, 'an overlong key is refused')

  await waitFor('stream counters in /metrics', WAIT_MS, async () => await streamRequests(client) >= 1000)
  t.ok(await streamRequests(client) >= 1000, 'the requests after the first went over the stream')
})

t.test('malformed stream input closes that connection; the daemon keeps serving', async t => {
  // A stream message may be as large as the largest batch body: 64 KiB here.
  const node = await daemon(t, { api: { maxBatchBodyBytes: 64 * 1024, maxValueBytes: 4096 } })
  const garbage = await closeAfter(node.url, Buffer.from([0xdc, 0xff, 0xff, 0x01]))
  t.equal(garbage.code, 1007)
  t.match(garbage.reason, /not MessagePack/)
  t.equal((await closeAfter(node.url, 'hello')).code, 1003, 'a text message')
  t.equal((await closeAfter(node.url, packr.pack(['x', 1, 'k']))).code, 1002, 'a frame without a numeric requestId')
  t.equal((await closeAfter(node.url, packr.pack([1, 2, 'k', Buffer.alloc(100 * 1024)]))).code, 1009, 'a message over the size limit')

  const client = new HearsayClient({ nodes: [node.url] })
  t.teardown(() => client.close())
  t.equal((await client.health()).status, 'ok')
  await client.put('still', 'here')
  t.equal((await client.get('still'))?.value.toString(), 'here', 'the daemon still serves the stream')
  t.equal(node.process.exitCode, null, 'the daemon did not exit')
})

t.test('with api.token set the stream needs the bearer token', async t => {
  const node = await daemon(t, { api: { token: 'stream-secret' } })
  t.equal((await closeAfter(node.url, packr.pack([1, 1, 'k']))).code, 401, 'an upgrade without the token is refused')
  const client = new HearsayClient({ nodes: [node.url], token: 'stream-secret' })
  t.teardown(() => client.close())
  await client.put('a', '1')
  t.equal((await client.put('b', '2')).key, 'b')
  await waitFor('stream counters in /metrics', WAIT_MS, async () => await streamRequests(client) >= 1)
  const stranger = new HearsayClient({ nodes: [node.url], token: 'wrong' })
  t.teardown(() => stranger.close())
  await t.rejects(stranger.get('a'), { name: 'HearsayClientError', status: 401 })
})

t.test('a missed quorum is a 503 over the stream, and when a node stops the client fails over', async t => {
  const cluster = await startCluster(2, () => ({ replication: { timeoutMs: 500 } }))
  t.teardown(() => cluster.stop())
  const [first, second] = cluster.nodes as [Daemon, Daemon]
  const client = new HearsayClient({ nodes: [first.url, second.url] })
  t.teardown(() => client.close())
  await waitFor('two alive members', WAIT_MS, async () => (await client.members()).filter(member => member.state === 'alive').length === 2)

  await client.put('a', '1', { w: 'all' })
  await client.put('b', '2', { w: 'all' })
  await waitFor('stream counters in /metrics', WAIT_MS, async () => await streamRequests(client) >= 1)

  await second.stop('SIGKILL')
  const missed = await client.put('c', '3', { w: 'all' }).catch((e: unknown) => e)
  t.type(missed, HearsayClientError)
  t.match(missed, { status: 503, node: first.url, body: { needed: 2, acks: 1 } }, 'the first node answers: one of two replicas acknowledged')

  const restarted = await startDaemon({
    dataDir: second.dataDir, apiPort: second.apiPort, peerPort: second.peerPort,
    config: { node: { name: 'node-2' }, cluster: { seeds: [`127.0.0.1:${first.peerPort}`] }, replication: { timeoutMs: 500 } },
  })
  t.teardown(() => restarted.stop())
  await first.stop()
  t.equal((await client.put('d', '4', { w: 'one' })).key, 'd', 'the write went to the second node')
  t.equal((await client.get('d'))?.value.toString(), '4')
  t.equal((await client.get('a'))?.value.toString(), '1', 'a value written through the first node is on the second')
})
