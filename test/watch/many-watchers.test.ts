import { Packr } from 'msgpackr'
import t, { type Test } from 'tap'
import { WebSocket } from 'ws'
import { OP_WATCH } from '../../lib/api/binary/protocol.js'
import { KvStore } from '../../lib/store/kv-store.js'
import { WatchService } from '../../lib/watch/service.js'
import { TEST_MAP_SIZE_BYTES, WALL_MS, hlcAt, put } from '../store/fixture.js'
import { startApi, type Harness } from '../api/fixtures/harness.js'

/**
 * 1,000 watchers on one node, over the client API's stream protocol (one connection carries
 * them all, as docs/client-protocol.md allows): every watcher gets every change, and when none
 * of them reads (no credit) each is cut at its buffer bound, so the node's memory stays within
 * maxWatchers × maxBufferedBytes. RSS before and after is printed for docs/benchmarks.md; the
 * assertions are on counts and on a generous memory bound, never on time.
 */

t.setTimeout(120_000)

const WATCHERS = 1000
const CHANGES = 50
const MAX_BUFFERED_BYTES = 64 * 1024
const WAIT_MS = 60_000
const MiB = 1024 * 1024
const packr = new Packr({ useRecords: false })

async function until(predicate: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

async function setup(t: Test): Promise<{ api: Harness; store: KvStore; watches: WatchService }> {
  const store = await KvStore.open({ dataDir: t.testdir(), mapSizeBytes: TEST_MAP_SIZE_BYTES, nowMs: () => WALL_MS })
  const watches = new WatchService({ store, limits: { maxWatchers: WATCHERS, maxBufferedBytes: MAX_BUFFERED_BYTES, resumeMarginMs: 0, maxSkewMs: 500 }, nowMs: () => WALL_MS, defer: (task) => { setImmediate(task) } })
  const api = await startApi(t, { watches, streamLimits: { maxInFlightPerConnection: WATCHERS } })
  t.teardown(async () => {
    watches.stop()
    await api.server.close(0)
    await store.close()
  })
  return { api, store, watches }
}

async function connect(api: Harness, onFrame: (frame: unknown[]) => void): Promise<WebSocket> {
  const socket = new WebSocket(`ws://${api.host}:${api.port}/v1/stream`)
  socket.on('message', (data: Buffer) => { packr.unpackMultiple(data, (frame: unknown) => onFrame(frame as unknown[])) })
  await new Promise((resolve) => socket.once('open', resolve))
  t.teardown(() => socket.terminate())
  return socket
}

function rssMiB(): number {
  return Math.round(process.memoryUsage().rss / MiB)
}

t.test(`${WATCHERS} watchers on one node each get every change`, async t => {
  const { api, store, watches } = await setup(t)
  let opened = 0
  let events = 0
  const socket = await connect(api, (frame) => {
    if (frame[1] === 200) opened++
    else if (frame[1] === 0) events += (frame[2] as unknown[]).length
  })
  const rssBefore = rssMiB()
  for (let id = 1; id <= WATCHERS; id += 100) {
    socket.send(Buffer.concat(Array.from({ length: 100 }, (_, i) => packr.pack([id + i, OP_WATCH, 'many/', null, CHANGES]))))
  }
  await until(() => opened === WATCHERS, 'every watch to open')
  t.equal(watches.watchers, WATCHERS)
  const value = Buffer.alloc(100, 1)
  for (let i = 1; i <= CHANGES; i++) await store.apply(`many/${i}`, put(value, hlcAt(WALL_MS, i)))
  await until(() => events === WATCHERS * CHANGES, 'every event')
  const rssAfter = rssMiB()
  t.comment(`RSS ${rssBefore} MiB with no watcher, ${rssAfter} MiB after ${WATCHERS} watchers took ${events} events`)
  t.equal(events, WATCHERS * CHANGES, `${events} events delivered`)
  t.ok(rssAfter - rssBefore < 256, `memory grew by ${rssAfter - rssBefore} MiB (bound: a few hundred bytes of state per watcher)`)
})

t.test(`${WATCHERS} watchers that never read are cut at their buffer bound; memory stays bounded`, async t => {
  const { api, store, watches } = await setup(t)
  let opened = 0
  const ends: string[] = []
  const socket = await connect(api, (frame) => {
    if (frame[1] === 200) opened++
    else if (frame[1] === 1) ends.push((frame[2] as { reason: string }).reason)
  })
  const rssBefore = rssMiB()
  for (let id = 1; id <= WATCHERS; id += 100) {
    socket.send(Buffer.concat(Array.from({ length: 100 }, (_, i) => packr.pack([id + i, OP_WATCH, 'stall/', null, 0]))))
  }
  await until(() => opened === WATCHERS, 'every watch to open')
  // 200 changes of 1 KiB: 200 KiB per watcher, over its 64 KiB bound.
  const value = Buffer.alloc(1024, 2)
  let peakRss = rssBefore
  for (let i = 1; i <= 200; i++) {
    await store.apply(`stall/${i}`, put(value, hlcAt(WALL_MS, i)))
    if (i % 20 === 0) peakRss = Math.max(peakRss, rssMiB())
  }
  await until(() => ends.length === WATCHERS, 'every watcher to be cut')
  t.comment(`RSS ${rssBefore} MiB before, peak ${peakRss} MiB while ${WATCHERS} stalled watchers filled their ${MAX_BUFFERED_BYTES / 1024} KiB buffers, ${rssMiB()} MiB after the cuts`)
  t.same([...new Set(ends)], ['slow_consumer'], 'each cut says why')
  t.equal(watches.watchers, 0, 'none left')
  t.ok(peakRss - rssBefore < (WATCHERS * MAX_BUFFERED_BYTES) / MiB + 128, `peak growth ${peakRss - rssBefore} MiB, within maxWatchers × maxBufferedBytes plus overhead`)
})
