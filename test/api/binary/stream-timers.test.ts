import t from 'tap'
import { once } from 'node:events'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import pino from 'pino'
import { WebSocket } from 'ws'
import { streamLimitsFor, STREAM_PATH } from '../../../lib/api/binary/protocol.js'
import { createStreamServer } from '../../../lib/api/binary/stream-server.js'
import { createMetrics } from '../../../lib/metrics/metrics.js'
import { MemoryKv, TEST_LIMITS } from '../fixtures/harness.js'

/** Bound on the wait for the server to see a connection close. */
const WAIT_MS = 5000

t.test('the stream endpoint keeps its flush, keepalive and timeout timers only while a connection is open', async t => {
  const streams = createStreamServer({
    kv: new MemoryKv(),
    limits: TEST_LIMITS,
    streamLimits: streamLimitsFor(TEST_LIMITS),
    metrics: createMetrics(),
    log: pino({ level: 'silent' }),
    refused: () => undefined,
    isAuthorized: undefined,
    refusal: () => undefined,
  })
  const server = http.createServer()
  server.on('upgrade', streams.upgrade)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(async () => {
    await streams.close(0)
    server.close()
  })
  t.equal(streams.timersRunning, false, 'no timer while nobody streams')
  const { port } = server.address() as AddressInfo
  const socket = new WebSocket(`ws://127.0.0.1:${port}${STREAM_PATH}`)
  await once(socket, 'open')
  t.equal(streams.connections, 1)
  t.equal(streams.timersRunning, true, 'the timers run with a connection open')
  socket.close()
  const deadline = Date.now() + WAIT_MS
  while (streams.connections > 0 && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 10))
  t.equal(streams.connections, 0, 'the server saw the connection close')
  t.equal(streams.timersRunning, false, 'and stopped its timers')
})
