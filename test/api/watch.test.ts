import http from 'node:http'
import { Packr } from 'msgpackr'
import t, { type Test } from 'tap'
import { WebSocket } from 'ws'
import { formatVersion } from '../../lib/clock/version.js'
import { KvStore } from '../../lib/store/kv-store.js'
import { WatchService, type WatchLimits } from '../../lib/watch/service.js'
import { TEST_MAP_SIZE_BYTES, WALL_MS, hlcAt, put, tombstone } from '../store/fixture.js'
import { startApi, type Harness } from './fixtures/harness.js'

/**
 * Watches on the client API (lib/api/watch-route.ts, lib/api/binary/watches.ts), read the way a
 * client reads them: the SSE stream parsed by the rules of the EventSource spec (Node 20 has no
 * EventSource), and the stream protocol's watch frames spoken by hand.
 */

const WAIT_MS = 5000
const LIMITS: WatchLimits = { maxWatchers: 4, maxBufferedBytes: 32 * 1024, resumeMarginMs: 0, maxSkewMs: 500 }
const packr = new Packr({ useRecords: false })

interface SseEvent { id?: string; event: string; data: string }

/** An SSE client: dispatches events by the spec's rules (field lines, blank line ends an event, ':' comments). */
class SseClient {
  readonly events: SseEvent[] = []
  readonly comments: string[] = []
  status = 0
  body = ''
  ended = false
  request: http.ClientRequest | undefined
  response: http.IncomingMessage | undefined
  #buffer = ''
  #current: { id?: string; event?: string; data: string[] } = { data: [] }

  static open(api: Harness, query: string, headers: Record<string, string> = {}, read = true): Promise<SseClient> {
    const client = new SseClient()
    return new Promise((resolve, reject) => {
      client.request = http.get(`${api.url}/kv?${query}`, { headers }, (response) => {
        client.response = response
        client.status = response.statusCode ?? 0
        response.setEncoding('utf8')
        if (read) response.on('data', (chunk: string) => client.#feed(chunk))
        response.on('end', () => { client.ended = true })
        response.on('error', () => { client.ended = true })
        resolve(client)
      })
      client.request.on('error', reject)
    })
  }

  startReading(): void {
    this.response!.on('data', (chunk: string) => this.#feed(chunk))
  }

  close(): void {
    this.request?.destroy()
  }

  #feed(chunk: string): void {
    if (this.status !== 200) {
      this.body += chunk
      return
    }
    this.#buffer += chunk
    let newline: number
    while ((newline = this.#buffer.search(/\r\n|\r|\n/)) !== -1) {
      const line = this.#buffer.slice(0, newline)
      this.#buffer = this.#buffer.slice(newline + (this.#buffer.startsWith('\r\n', newline) ? 2 : 1))
      if (line === '') {
        if (this.#current.data.length > 0) this.events.push({ ...(this.#current.id === undefined ? {} : { id: this.#current.id }), event: this.#current.event ?? 'message', data: this.#current.data.join('\n') })
        this.#current = { data: [] }
      } else if (line.startsWith(':')) {
        this.comments.push(line.slice(1).trim())
      } else {
        const colon = line.indexOf(':')
        const field = colon === -1 ? line : line.slice(0, colon)
        const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '')
        if (field === 'data') this.#current.data.push(value)
        else if (field === 'id') this.#current.id = value
        else if (field === 'event') this.#current.event = value
      }
    }
  }
}

async function until(predicate: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

async function setup(t: Test, overrides: { token?: string; limits?: Partial<WatchLimits> } = {}): Promise<{ api: Harness; store: KvStore; watches: WatchService }> {
  const store = await KvStore.open({ dataDir: t.testdir(), mapSizeBytes: TEST_MAP_SIZE_BYTES, nowMs: () => WALL_MS })
  const watches = new WatchService({ store, limits: { ...LIMITS, ...overrides.limits }, nowMs: () => WALL_MS, defer: (task) => { setImmediate(task) } })
  const api = await startApi(t, { watches, watchHeartbeatMs: 50, ...(overrides.token === undefined ? {} : { token: overrides.token }) })
  // Registered after startApi's, so it runs first: watches end before the server closes.
  t.teardown(async () => {
    watches.stop()
    await api.server.close(0)
    await store.close()
  })
  return { api, store, watches }
}

t.test('SSE: id, event and data per change, heartbeats, Last-Event-ID resumes', async t => {
  const { api, store } = await setup(t)
  const client = await SseClient.open(api, 'prefix=cfg/&watch=true')
  t.equal(client.status, 200)
  t.match(client.response!.headers['content-type'], /^text\/event-stream/)
  const first = put('hello', hlcAt(WALL_MS, 1))
  await store.apply('cfg/a', first)
  await store.apply('zzz', put('not mine', hlcAt(WALL_MS, 2)))
  await store.apply('cfg/a', tombstone(hlcAt(WALL_MS, 3)))
  await until(() => client.events.length === 2 && client.comments.includes('heartbeat'), 'two events and a heartbeat')
  const [put1, del] = client.events
  t.equal(put1!.id, formatVersion(first.version), 'the event id is the version')
  t.equal(put1!.event, 'change')
  t.same(JSON.parse(put1!.data), { key: 'cfg/a', value: Buffer.from('hello').toString('base64'), version: formatVersion(first.version), deleted: false })
  t.same(JSON.parse(del!.data), { key: 'cfg/a', value: null, version: del!.id, deleted: true })
  client.close()

  // What an EventSource sends on reconnect: the last id it saw.
  const resumed = await SseClient.open(api, 'prefix=cfg/&watch=true', { 'last-event-id': put1!.id! })
  await until(() => resumed.events.length >= 1, 'the change after the last id')
  t.ok(resumed.events.some((event) => event.id === del!.id), 'the delete is replayed')
  resumed.close()
})

t.test('SSE refusals: 400 for a bad since, 410 past the log, 503 at the limit, 401 without the token', async t => {
  const { api, store, watches } = await setup(t, { token: 'sesame', limits: { maxWatchers: 1 } })
  const auth = { authorization: 'Bearer sesame' }
  const unauthorized = await SseClient.open(api, 'prefix=&watch=true')
  await until(() => unauthorized.ended, 'the 401 answer')
  t.equal(unauthorized.status, 401)
  const bad = await SseClient.open(api, 'prefix=&watch=true&since=yesterday', auth)
  await until(() => bad.ended, 'the 400 answer')
  t.equal(bad.status, 400)
  t.match(JSON.parse(bad.body), { param: 'since' })
  const scanWithSince = await SseClient.open(api, 'prefix=&since=0000000000000001-0000000000000000', auth)
  await until(() => scanWithSince.ended, 'the 400 answer')
  t.equal(scanWithSince.status, 400, 'since without watch=true')

  await store.apply('a', put('1', hlcAt(WALL_MS)))
  await store.changeLog.trim(WALL_MS + 1, 10)
  const gone = await SseClient.open(api, 'prefix=&watch=true&since=' + formatVersion({ hlc: hlcAt(WALL_MS - 10_000), node: '0000000000000000' as never }), auth)
  await until(() => gone.ended, 'the 410 answer')
  t.equal(gone.status, 410)
  t.match(JSON.parse(gone.body), { oldest: /^\d{16}-0{16}$/, error: /change log/ })

  const one = await SseClient.open(api, 'prefix=&watch=true', auth)
  t.equal(one.status, 200)
  await until(() => watches.watchers === 1, 'the watcher')
  const full = await SseClient.open(api, 'prefix=&watch=true', auth)
  await until(() => full.ended, 'the 503 answer')
  t.equal(full.status, 503)
  t.match(JSON.parse(full.body), { maxWatchers: 1 })
  one.close()
  await until(() => watches.watchers === 0, 'the watcher to go with its connection')
})

t.test('SSE: a client that stops reading is cut with event: cut once its buffer overflows', async t => {
  const { api, store, watches } = await setup(t)
  const stalled = await SseClient.open(api, 'prefix=big/&watch=true', {}, false)
  await until(() => watches.watchers === 1, 'the watcher')
  const value = Buffer.alloc(16 * 1024, 7)
  let i = 0
  // Socket buffers take some megabytes first; the watcher's 32 KiB bound then overflows.
  while (watches.watchers === 1 && i < 2000) await store.apply(`big/${i}`, put(value, hlcAt(WALL_MS, ++i)))
  t.equal(watches.watchers, 0, `cut after ${i} changes of 16 KiB`)
  stalled.startReading()
  await until(() => stalled.ended, 'the end of the stream')
  const last = stalled.events[stalled.events.length - 1]
  t.equal(last?.event, 'cut', 'the last event says why')
  t.same(JSON.parse(last!.data), { maxBufferedBytes: LIMITS.maxBufferedBytes, reason: 'slow_consumer' })
  t.ok(stalled.events.filter((event) => event.event === 'change').length < i, 'it did not get everything')
})

t.test('stream protocol: watch with credit, events within the credit, more credit, unwatch', async t => {
  const { api, store, watches } = await setup(t)
  const socket = new WebSocket(`ws://${api.host}:${api.port}/v1/stream`)
  const frames: unknown[][] = []
  socket.on('message', (data: Buffer) => { packr.unpackMultiple(data, (frame: unknown) => { frames.push(frame as unknown[]) }) })
  const closed = new Promise<number>((resolve) => socket.on('close', (code) => resolve(code)))
  await new Promise((resolve) => socket.once('open', resolve))
  const send = (frame: unknown[]): void => socket.send(packr.pack(frame))
  const events = (): unknown[][] => frames.filter((frame) => frame[0] === 7 && frame[1] === 0).flatMap((frame) => frame[2] as unknown[][])

  send([7, 7, 'w/', null, 2])
  await until(() => frames.some((frame) => frame[0] === 7 && frame[1] === 200), 'the watch to open')
  for (let i = 1; i <= 5; i++) await store.apply(`w/${i}`, put(`${i}`, hlcAt(WALL_MS, i)))
  await until(() => events().length === 2, 'two events (the credit)')
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.equal(events().length, 2, 'no event beyond the credit')
  t.same(events()[0], ['w/1', Buffer.from('1'), formatVersion({ hlc: hlcAt(WALL_MS, 1), node: 'aaaaaaaaaaaaaaaa' as never })], '[key, value, version]')
  send([0, 8, 7, 10])
  await until(() => events().length === 5, 'the rest after more credit')
  // A request next to the watch on the same socket.
  send([8, 1, 'w/1'])
  await until(() => frames.some((frame) => frame[0] === 8), 'the get answer')
  send([9, 9, 7])
  await until(() => frames.some((frame) => frame[0] === 7 && frame[1] === 1), 'the end frame')
  t.same(frames.find((frame) => frame[0] === 9), [9, 200], 'unwatch answered')
  t.same(frames.find((frame) => frame[0] === 7 && frame[1] === 1), [7, 1, { reason: 'unwatched' }])
  t.equal(watches.watchers, 0)
  send([10, 7, '', '0000000000000001-0000000000000000', 1])
  await until(() => frames.some((frame) => frame[0] === 10), 'the answer')
  t.equal(frames.find((frame) => frame[0] === 10)![1], 200, 'since before the first change of a new log opens')
  send([0, 8, 10, 0])
  t.equal(await closed, 1002, 'a credit of 0 is a protocol error')
  await until(() => watches.watchers === 0, 'the connection\'s watches to end with it')
})
