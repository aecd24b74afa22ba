import t from 'tap'
import { ClockSkewedError } from '../../lib/clock/errors.js'
import { UnavailableError } from '../../lib/errors.js'
import { errorAnswer } from '../../lib/api/errors.js'
import { guardKvService } from '../../lib/replication/guard.js'
import type { KvService } from '../../lib/replication/service.js'
import { asNodeId } from '../../lib/clock/version.js'

/** A KvService that records which calls reached it. */
function recordingService(calls: string[]): KvService {
  const version = { hlc: 1, node: asNodeId('0000000000000001') }
  return {
    put: async (key) => { calls.push(`put ${key}`); return { key, version, acks: 1, needed: 1 } },
    delete: async (key) => { calls.push(`delete ${key}`); return { key, version, acks: 1, needed: 1 } },
    get: async (key) => { calls.push(`get ${key}`); return undefined },
    scan: async () => { calls.push('scan'); return { items: [], next: null } },
    batch: async () => { calls.push('batch'); return [] },
  }
}

t.test('while the clock is skewed, writes are refused before they reach the coordinator and reads are served', async t => {
  const calls: string[] = []
  let skewed = true
  const kv = guardKvService(recordingService(calls), () => undefined, () => skewed ? new ClockSkewedError(10_012.4, 500, 2, 2) : undefined)
  const value = new Uint8Array([1])
  await t.rejects(kv.put('a', value, {}), ClockSkewedError)
  await t.rejects(kv.delete('a', {}), ClockSkewedError)
  await t.rejects(kv.batch([{ op: 'put', key: 'a', value }], {}), ClockSkewedError)
  t.same(calls, [], 'no write reached the coordinator: no timestamp taken, nothing applied')
  await kv.get('a', {})
  await kv.scan({ prefix: '', limit: 10 })
  t.same(calls, ['get a', 'scan'], 'reads are still served')
  skewed = false
  await kv.put('a', value, {})
  t.same(calls.at(-1), 'put a', 'writes pass once the clock is back within the bound')
})

t.test('the skew refusal answers 503 with the measured offset and outcome refused', async t => {
  const answer = errorAnswer(new ClockSkewedError(10_012.4, 500, 2, 2))
  t.equal(answer.status, 503)
  t.match(answer.body.error, /this node's clock is 10012 ms ahead of its peers \(2 of 2 measured\), beyond clock.maxSkewMs 500/)
  t.equal(answer.body.outcome, 'refused')
  t.equal(answer.body.clockAheadMs, 10_012)
  t.match(errorAnswer(new ClockSkewedError(-800, 500, 1, 1)).body.error, /800 ms behind its peers/)
})

t.test('the repair refusal still comes first and covers reads', async t => {
  const calls: string[] = []
  const kv = guardKvService(recordingService(calls), () => 'repairing', () => new ClockSkewedError(1000, 500, 1, 1))
  await t.rejects(kv.put('a', new Uint8Array(), {}), UnavailableError)
  await t.rejects(kv.get('a', {}), /repairing/)
  t.same(calls, [])
})
