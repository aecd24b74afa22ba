import t from 'tap'
import { formatVersion, parseVersion, type Version } from '../../lib/clock/version.js'
import { OutcomeUnknownError, UnavailableError } from '../../lib/errors.js'
import { compareAndSet, increment } from '../../lib/paxos/changes.js'
import type { LinearizableService } from '../../lib/paxos/service.js'
import type { ReadResult } from '../../lib/replication/service.js'
import type { StoredRecord } from '../../lib/store/record.js'
import { HearsayClient } from '../../lib/client/client.js'
import { NODE_ID, startApi } from './fixtures/harness.js'

/**
 * The linearizable routes over a LinearizableService double that applies the real change
 * functions to one record per key: what the HTTP surface parses, refuses and answers.
 */
class MemoryRegisters implements LinearizableService {
  readonly records = new Map<string, StoredRecord>()
  readonly calls: string[] = []
  failWith: Error | undefined
  #hlc = 1_700_000_000_000_000

  async compareAndSet(key: string, value: Uint8Array | null, ifVersion: Version | 'absent'): Promise<{ key: string; version: Version }> {
    this.calls.push(`cas ${key} ${ifVersion === 'absent' ? 'absent' : formatVersion(ifVersion)}`)
    return this.#change(key, compareAndSet(key, value, ifVersion))
  }

  async increment(key: string, by: bigint): Promise<{ key: string; value: string; version: Version }> {
    this.calls.push(`incr ${key} ${by}`)
    return this.#change(key, increment(key, by))
  }

  async read(key: string): Promise<ReadResult | undefined> {
    this.calls.push(`read ${key}`)
    const record = this.records.get(key)
    return record?.value == null ? undefined : { key, value: record.value, version: record.version }
  }

  #change<R>(key: string, change: ReturnType<typeof compareAndSet> | ReturnType<typeof increment>): R {
    if (this.failWith !== undefined) throw this.failWith
    const outcome = change(this.records.get(key))
    const record: StoredRecord = { value: outcome.next === 'unchanged' ? null : outcome.next, version: { hlc: ++this.#hlc, node: NODE_ID }, strong: true }
    this.records.set(key, record)
    return outcome.result(record.version, record.value) as R
  }
}

async function call(url: string, method: string, path: string, body?: string): Promise<{ status: number; json: Record<string, unknown>; text: string; version: string | null }> {
  const res = await fetch(`${url}${path}`, { method, ...(body !== undefined ? { body } : {}) })
  const text = await res.text()
  let json: Record<string, unknown> = {}
  try { json = JSON.parse(text) as Record<string, unknown> } catch { /* a value */ }
  return { status: res.status, json, text, version: res.headers.get('hearsay-version') }
}

t.test('compare-and-set, incr and the linearizable read answer as the contract says', async t => {
  const registers = new MemoryRegisters()
  const api = await startApi(t, { linearizable: registers })
  const made = await call(api.url, 'PUT', '/kv/a%2Fb?ifVersion=absent', 'one')
  t.equal(made.status, 200)
  t.same(Object.keys(made.json).sort(), ['key', 'version'])
  t.equal(made.json['key'], 'a/b')
  const version = made.json['version'] as string
  t.same(parseVersion(version).node, NODE_ID)

  const again = await call(api.url, 'PUT', '/kv/a%2Fb?ifVersion=absent', 'two')
  t.equal(again.status, 409)
  t.same(again.json['current'], { version })
  t.match(again.json['error'], /not absent/)
  const absent = await call(api.url, 'PUT', `/kv/nothing?ifVersion=${version}`, 'x')
  t.same(absent.json['current'], { version: null }, 'an absent key reports version null')

  const read = await call(api.url, 'GET', '/kv/a%2Fb?consistency=linearizable')
  t.equal(read.status, 200)
  t.equal(read.text, 'one')
  t.equal(read.version, version)
  t.equal((await call(api.url, 'GET', '/kv/nothing?consistency=linearizable')).status, 404)

  const deleted = await call(api.url, 'DELETE', `/kv/a%2Fb?ifVersion=${version}`)
  t.equal(deleted.status, 200)
  t.equal((await call(api.url, 'GET', '/kv/a%2Fb?consistency=linearizable')).status, 404)

  t.same((await call(api.url, 'POST', '/kv/hits/incr')).json['value'], '1')
  t.same((await call(api.url, 'POST', '/kv/hits/incr?by=-11')).json['value'], '-10')
  t.same((await call(api.url, 'POST', '/kv/dir/hits/incr?by=9007199254740991')).json, { key: 'dir/hits', value: '9007199254740991', version: formatVersion({ hlc: 1_700_000_000_000_005, node: NODE_ID }) })
  t.same(registers.calls.filter((c) => c.startsWith('incr')), ['incr hits 1', 'incr hits -11', 'incr dir/hits 9007199254740991'], 'a key may hold slashes; the last /incr names the operation')
  t.equal((api.kv as unknown as { writes: unknown[] }).writes.length, 0, 'nothing went through the plain write path')
})

t.test('bad linearizable requests are refused with the parameter named, before any change', async t => {
  const registers = new MemoryRegisters()
  const api = await startApi(t, { linearizable: registers })
  const cases: [string, string, RegExp][] = [
    ['PUT', '/kv/k?ifVersion=yesterday', /ifVersion must be a version/],
    ['PUT', '/kv/k?ifVersion=absent&w=all', /unknown query parameter "w"/],
    ['PUT', '/kv/k?ifVersion=absent&ttl=5', /unknown query parameter "ttl"/],
    ['POST', '/kv/k/incr?by=1.5', /by must be an integer/],
    ['POST', '/kv/k/incr?by=9007199254740992', /by must be an integer/],
    ['POST', '/kv/k/incr?step=2', /unknown query parameter "step"/],
    ['GET', '/kv/k?consistency=strong', /consistency must be "linearizable"/],
    ['GET', '/kv/k?consistency=linearizable&r=one', /either r or consistency/],
  ]
  for (const [method, path, error] of cases) {
    const answer = await call(api.url, method, path, method === 'GET' ? undefined : 'v')
    t.equal(answer.status, 400, `${method} ${path}`)
    t.match(answer.json['error'], error)
  }
  const notIncr = await call(api.url, 'POST', '/kv/k')
  t.equal(notIncr.status, 405)
  t.match(notIncr.json['error'], /only for counters|except for counters/)
  t.same(registers.calls, [], 'no change was attempted')
})

t.test('an unknown outcome is a 503 that says so; a plain refusal is a 503 without it', async t => {
  const registers = new MemoryRegisters()
  const api = await startApi(t, { linearizable: registers })
  registers.failWith = new OutcomeUnknownError('the change may or may not have been applied')
  const unknown = await call(api.url, 'POST', '/kv/n/incr')
  t.equal(unknown.status, 503)
  t.equal(unknown.json['outcome'], 'unknown')
  registers.failWith = new UnavailableError('no majority; nothing was changed')
  const refused = await call(api.url, 'PUT', '/kv/n?ifVersion=absent', 'v')
  t.equal(refused.status, 503)
  t.equal(refused.json['outcome'], undefined)
  registers.failWith = undefined
  t.match((await call(api.url, 'POST', '/kv/n/incr', 'ignored body')).json, { value: '1' })
})

t.test('a node without linearizable operations answers them 503 and still serves plain ones', async t => {
  const api = await startApi(t)
  t.equal((await call(api.url, 'POST', '/kv/n/incr')).status, 503)
  t.equal((await call(api.url, 'PUT', '/kv/n', 'plain')).status, 200)
})

t.test('the client library does the same over the stream protocol and over HTTP', async t => {
  const registers = new MemoryRegisters()
  const api = await startApi(t, { linearizable: registers })
  for (const transport of ['binary', 'http'] as const) {
    const client = new HearsayClient({ nodes: [api.url], transport })
    t.teardown(() => client.close())
    await client.health() // the first HTTP answer advertises the stream endpoint
    const key = `lock-${transport}`
    const taken = await client.cas(key, 'me', { ifVersion: 'absent' })
    await t.rejects(client.cas(key, 'you', { ifVersion: 'absent' }), { status: 409, body: { current: { version: taken.version } } } as never, `${transport}: 409 with the current version`)
    t.equal((await client.get(key, { consistency: 'linearizable' }))?.value.toString(), 'me')
    await client.cas(key, null, { ifVersion: taken.version })
    t.equal(await client.get(key, { consistency: 'linearizable' }), undefined, `${transport}: deleted`)
    t.equal((await client.incr(`n-${transport}`)).value, '1')
    t.equal((await client.incr(`n-${transport}`, { by: -3 })).value, '-2')
    registers.failWith = new OutcomeUnknownError('the change may or may not have been applied')
    await t.rejects(client.incr(`n-${transport}`), { status: 503, body: { outcome: 'unknown' } } as never)
    registers.failWith = undefined
  }
  t.ok(registers.calls.includes('incr n-binary -3') && registers.calls.includes('incr n-http -3'), 'both transports reached the service')
})
