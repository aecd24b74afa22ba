import t from 'tap'
import { DEFAULT_API_LIMITS, assertApiLimits } from '../../lib/api/limits.js'
import { pino } from 'pino'
import { createApiServer, type ApiDeps } from '../../lib/api/server.js'
import { createMetrics } from '../../lib/metrics/metrics.js'
import { MemoryKv, NODE_ID, startApi } from './fixtures/harness.js'

/** Polls a condition a bounded number of times. */
async function waitFor(condition: () => boolean): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    if (condition()) return
    await new Promise(resolve => setTimeout(resolve, 10))
  }
  throw new Error('condition not met within 2 s')
}

/** A KvService whose get waits until the test releases it. */
function blockingKv(): { kv: MemoryKv; release: () => void } {
  const kv = new MemoryKv()
  let release: () => void = () => {}
  const blocked = new Promise<void>(resolve => { release = resolve })
  const get = kv.get.bind(kv)
  kv.get = async (key, options) => {
    await blocked
    return get(key, options)
  }
  return { kv, release }
}

t.test('graceful close waits for an in-flight request to finish, then stops listening', async t => {
  const { kv, release } = blockingKv()
  await kv.put('k', Buffer.from('value'), {})
  const api = await startApi(t, { kv })
  const inFlight = fetch(`${api.url}/kv/k`)
  await waitFor(() => api.server.inFlight === 1)

  let closed = false
  const closing = api.server.close(30_000).then(() => { closed = true })
  await new Promise(resolve => setTimeout(resolve, 50))
  t.notOk(closed, 'close waits while a request is in flight')
  release()

  const res = await inFlight
  t.equal(res.status, 200)
  t.equal(await res.text(), 'value', 'the in-flight request got its full answer')
  await closing
  t.ok(closed)
  t.equal(api.server.inFlight, 0)
  await t.rejects(fetch(`${api.url}/health`), 'the port no longer accepts connections')
})

t.test('graceful close gives up on a stuck request after graceMs', async t => {
  const { kv, release } = blockingKv()
  t.teardown(release)
  const api = await startApi(t, { kv })
  const stuck = fetch(`${api.url}/kv/k`).then(() => 'answered', () => 'cut off')
  await waitFor(() => api.server.inFlight === 1)
  await api.server.close(50)
  t.equal(await stuck, 'cut off')
  t.equal(api.server.inFlight, 0)
})

t.test('close is idempotent and works on a server that never listened', async t => {
  const api = await startApi(t)
  await Promise.all([api.server.close(100), api.server.close(100)])
  await api.server.close(100)
  const neverListened = createApiServer(apiDeps())
  await neverListened.close(100)
  t.equal(neverListened.inFlight, 0, 'every close resolves')
})

t.test('nonsensical limits stop the node at startup', async t => {
  t.doesNotThrow(() => assertApiLimits(DEFAULT_API_LIMITS))
  t.throws(() => assertApiLimits({ ...DEFAULT_API_LIMITS, maxValueBytes: 0 }), /maxValueBytes must be a positive integer/)
  t.throws(() => assertApiLimits({ ...DEFAULT_API_LIMITS, defaultScanLimit: 5000 }), /exceeds maxScanLimit/)
  t.throws(() => assertApiLimits({ ...DEFAULT_API_LIMITS, maxHeaderBytes: 1024 }), /too small for a percent-encoded key/)
})

t.test('listen rejects when the port is taken, naming the port and the setting to change', async t => {
  const first = await startApi(t)
  const second = createApiServer(apiDeps())
  t.teardown(() => second.close(0))
  await t.rejects(second.listen('127.0.0.1', first.port), { message: `api port ${first.port} on 127.0.0.1 is already in use; choose another api.port` })
})

function apiDeps(): ApiDeps {
  return {
    kv: new MemoryKv(),
    status: () => ({}),
    health: () => ({ status: 'ok', id: NODE_ID, name: 'alpha' }),
    members: () => [],
    metrics: createMetrics(),
    log: pino({ level: 'silent' }),
    limits: DEFAULT_API_LIMITS,
  }
}
