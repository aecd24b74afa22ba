import t from 'tap'
import type { HearsayClient } from '../../lib/client/client.js'
import { HearsayClientError, InvalidReplyError, NoNodeAnsweredError } from '../../lib/client/errors.js'
import { errorLabel } from '../../lib/bench/error-label.js'
import { createWorkload, type AckedWrite } from '../../lib/bench/workload.js'

interface Call { readonly node: number; readonly op: 'put' | 'get'; readonly key: string; readonly level: unknown }

/** Stand-ins for per-node clients: record what each was asked; gets of unwritten keys miss. */
function fakeClients(count: number, calls: Call[]): HearsayClient[] {
  const written = new Set<string>()
  return Array.from({ length: count }, (_, node) => ({
    async put(key: string, _value: Uint8Array, options: { w?: unknown }) {
      calls.push({ node, op: 'put', key, level: options.w })
      written.add(key)
      return { key, version: `v-${key}`, acks: 1, w: 1 }
    },
    async get(key: string, options: { r?: unknown }) {
      calls.push({ node, op: 'get', key, level: options.r })
      return written.has(key) ? { value: Buffer.from('x'), version: 'v' } : undefined
    },
  }) as unknown as HearsayClient)
}

t.test('a 1:1 mix alternates exactly and spreads both kinds over every node', async t => {
  const calls: Call[] = []
  const acked: AckedWrite[] = []
  const workload = createWorkload({
    clients: fakeClients(2, calls), keyBytes: 8, keys: 4, mix: { put: 1, get: 1 }, value: Buffer.alloc(10), w: 'all', r: 2,
    onAckedWrite: write => acked.push(write),
  })
  for (let i = 0; i < 16; i++) {
    const outcome = await workload.operation(0)
    t.same(outcome, { kind: i % 2 === 0 ? 'put' : 'get', ok: true })
  }
  const puts = calls.filter(call => call.op === 'put')
  const gets = calls.filter(call => call.op === 'get')
  t.same(puts.map(call => call.key), ['bench/00', 'bench/01', 'bench/02', 'bench/03', 'bench/00', 'bench/01', 'bench/02', 'bench/03'], 'puts walk the key space and wrap')
  t.same(puts.map(call => call.node), [0, 1, 0, 1, 0, 1, 0, 1])
  t.same(gets.map(call => call.node), [0, 1, 0, 1, 0, 1, 0, 1], 'gets are spread too, not left to one node')
  t.ok(gets.every(call => /^bench\/0[0-3]$/.test(call.key)), 'gets stay inside the key space')
  t.ok(puts.every(call => call.level === 'all') && gets.every(call => call.level === 2), 'W and R are passed on')
  t.same(acked.map(write => write.version), puts.map(call => `v-${call.key}`), 'every acknowledged write is reported with its version')
  t.equal(workload.getMisses(), gets.filter((call, index) => !puts.slice(0, index + 1).some(put => put.key === call.key)).length)
})

t.test('failures become outcomes with a short label, never rejections', async t => {
  const failing = {
    async put() { throw new HearsayClientError('http://a:1', 503, { error: 'write needed 2 acks' }) },
    async get() { throw new NoNodeAnsweredError(['http://a:1'], 'http://a:1: no answer within 100 ms') },
  } as unknown as HearsayClient
  const workload = createWorkload({ clients: [failing], keyBytes: 4, keys: 10, mix: { put: 1, get: 1 }, value: Buffer.alloc(1) })
  t.same(await workload.operation(0), { kind: 'put', ok: false, error: 'unavailable_503' })
  t.same(await workload.operation(0), { kind: 'get', ok: false, error: 'timeout' })
})

t.test('error labels group failures by kind', async t => {
  t.equal(errorLabel(new HearsayClientError('n', 400, { error: 'bad' })), 'http_400')
  t.equal(errorLabel(new NoNodeAnsweredError(['n'], 'n: connection refused (ECONNREFUSED)')), 'connection')
  t.equal(errorLabel(new InvalidReplyError('n', 'garbage')), 'invalid_reply')
  t.equal(errorLabel(new TypeError('boom')), 'exception')
})
