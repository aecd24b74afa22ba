import t from 'tap'
import http from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { checkLinearizable, type RegisterOutput } from '../helpers/linearizability.js'
import { checkCounter, classify, HistoryRecorder } from '../helpers/lin-recorder.js'
import { runWorkload, seededRandom } from '../helpers/lin-workload.js'

/**
 * The history recorder and workload against a test double of issue 13's HTTP API (an in-process
 * server keeping one register per key), so the recorder's classification and the checker are
 * tested end to end before and apart from the daemon: a server that is atomic passes, even when
 * it answers "outcome unknown" or drops connections after applying; one whose compare-and-set
 * reads and writes in two steps fails.
 */

interface Register { value: string; version: string }

interface DoubleOptions {
  /** Read-modify-write across an await: the classic lost update. */
  readonly racy: boolean
  /** Per change: chance to answer 503 outcome unknown (after applying or not) or to drop the socket. */
  readonly faultRate: number
  readonly seed: number
}

async function startDouble(options: DoubleOptions): Promise<{ url: string; close: () => Promise<void> }> {
  const registers = new Map<string, Register>()
  const random = seededRandom(options.seed)
  let changes = 0
  const nextVersion = (): string => `${String(++changes).padStart(16, '0')}-double`
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => { void handle(req, res, Buffer.concat(chunks).toString()) })
  })
  const json = (res: http.ServerResponse, status: number, body: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body))
  }
  const handle = async (req: http.IncomingMessage, res: http.ServerResponse, body: string): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://x')
    const incr = url.pathname.endsWith('/incr')
    const key = decodeURIComponent(url.pathname.slice('/kv/'.length, incr ? -'/incr'.length : undefined))
    if (req.method === 'GET') {
      const current = registers.get(key)
      if (current === undefined) return json(res, 404, { error: 'not found', key })
      res.writeHead(200, { 'hearsay-version': current.version }).end(current.value)
      return
    }
    const before = registers.get(key)
    if (options.racy) await new Promise((r) => setTimeout(r, 2))
    const ifVersion = url.searchParams.get('ifVersion')
    let apply: (() => Register | undefined) | undefined
    if (incr) {
      const count = before === undefined ? 0n : BigInt(before.value)
      apply = () => ({ value: (count + BigInt(url.searchParams.get('by') ?? '1')).toString(), version: nextVersion() })
    } else if (ifVersion === 'absent' ? before !== undefined : before?.version !== ifVersion) {
      return json(res, 409, { error: 'condition failed', current: { version: before?.version ?? null } })
    } else {
      apply = () => req.method === 'DELETE' ? undefined : { value: body, version: nextVersion() }
    }
    const roll = random()
    const fault = roll < options.faultRate
    const applied = !fault || roll < options.faultRate / 2
    let result: Register | undefined
    if (applied) {
      result = apply()
      if (result === undefined) registers.delete(key)
      else registers.set(key, result)
    }
    if (fault) {
      if (random() < 0.5) return json(res, 503, { error: 'a majority did not answer in time', outcome: 'unknown' })
      req.socket.destroy()
      return
    }
    json(res, 200, { key, version: result?.version ?? nextVersion(), ...(incr ? { value: result?.value } : {}) })
  }
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => { server.closeAllConnections(); server.close(); await once(server, 'close') },
  }
}

/** A read that is retried (3 times at most) when a pooled connection the double dropped fails it. */
async function finalRead(recorder: HistoryRecorder, url: string, key: string): Promise<RegisterOutput | undefined> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const output = await recorder.read(url, key, 'final')
    if (output !== undefined) return output
  }
  return undefined
}

const WORKLOAD = { registerKeys: ['lock', 'config'], counterKeys: ['hits'], clients: 6, opsPerClient: 40, seed: 7 }

t.test('an atomic server passes the checker, with unknown outcomes and dropped connections', async (t) => {
  const double = await startDouble({ racy: false, faultRate: 0.15, seed: 1 })
  t.teardown(double.close)
  const recorder = new HistoryRecorder({ requestTimeoutMs: 2_000 })
  const summary = await runWorkload(recorder, { ...WORKLOAD, nodes: () => [double.url] })
  t.comment(JSON.stringify(summary.outcomes))
  t.ok((summary.outcomes.unknown ?? 0) > 5, 'some outcomes were unknown')
  t.ok((summary.outcomes.fail ?? 0) > 5, 'some CAS were refused with 409')
  const result = checkLinearizable(recorder.ops)
  t.equal(result.verdict, 'linearizable', result.explanation)
  const final = await finalRead(recorder, double.url, 'hits')
  t.equal(final?.kind, 'read')
  t.equal(checkCounter(recorder.ops, 'hits', final?.kind === 'read' ? final.value : null), undefined, 'the counter is within [K, K+U]')
})

t.test('a server whose compare-and-set reads and writes in two steps is caught', async (t) => {
  const double = await startDouble({ racy: true, faultRate: 0, seed: 2 })
  t.teardown(double.close)
  const recorder = new HistoryRecorder({ requestTimeoutMs: 2_000 })
  await runWorkload(recorder, { ...WORKLOAD, nodes: () => [double.url] })
  const result = checkLinearizable(recorder.ops)
  t.equal(result.verdict, 'not-linearizable')
  t.match(result.explanation, /not linearizable \(\d+ operations; the longest linearizable prefix has \d+\)/)
  t.comment(result.explanation)
  const final = await finalRead(recorder, double.url, 'hits')
  t.match(checkCounter(recorder.ops, 'hits', final?.kind === 'read' ? final.value : null), /outside \[K, K\+U\]/, 'lost increments leave the counter below K')
})

t.test('classification of answers', async (t) => {
  const cas = { kind: 'cas', ifVersion: 'v1', value: 'x' } as const
  const read = { kind: 'read' } as const
  t.same(classify(cas, { status: 200, body: { key: 'k', version: 'v2' }, version: null }), { output: { kind: 'ok', version: 'v2' } })
  t.same(classify(cas, { status: 409, body: { error: 'e', current: { version: null } }, version: null }), { output: { kind: 'fail', currentVersion: null } })
  t.same(classify(cas, { status: 409, body: { error: 'plain write to a strong key' }, version: null }), { output: { kind: 'fail' } })
  t.same(classify(cas, { status: 503, body: { error: 'e', outcome: 'unknown' }, version: null }), { output: { kind: 'unknown' } })
  t.same(classify(cas, { status: 500, body: 'boom', version: null }), { output: { kind: 'unknown' } }, 'a 500 says nothing about the outcome')
  t.match(classify(cas, { status: 503, body: { error: 'clock is 900 ms ahead', outcome: 'refused' }, version: null }), { omit: /refused with 503/ }, 'a plain 503 refused before proposing')
  t.same(classify(cas, { error: 'ECONNRESET' }), { output: { kind: 'unknown' } })
  t.same(classify(cas, { error: 'TimeoutError' }), { output: { kind: 'unknown' } })
  t.match(classify(cas, { error: 'ECONNREFUSED' }), { omit: /refused/ }, 'a refused connection never reached a node')
  t.match(classify(cas, { status: 400, body: { error: 'bad' }, version: null }), { omit: /400/ })
  t.same(classify(read, { status: 404, body: { error: 'key "k" not found', key: 'k' }, version: null }), { output: { kind: 'read', value: null, version: null } })
  t.match(classify(read, { status: 404, body: { error: 'no such route' }, version: null }), { omit: /404/ }, 'a 404 that is not about the key proves nothing')
  t.same(classify(read, { status: 200, body: 'x', version: 'v3' }), { output: { kind: 'read', value: 'x', version: 'v3' } })
  t.match(classify(read, { status: 503, body: {}, version: null }), { omit: /503/ }, 'a failed read constrains nothing')
  t.same(classify({ kind: 'incr', by: 2n }, { status: 200, body: { key: 'k', value: '7', version: 'v4' }, version: null }), { output: { kind: 'ok', version: 'v4', value: '7' } })
  t.throws(() => classify(read, { status: 200, body: 'x', version: null }), /without a hearsay-version header/)
})
