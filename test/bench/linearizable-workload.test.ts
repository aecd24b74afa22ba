import t from 'tap'
import { HearsayClientError } from '../../lib/client/errors.js'
import { createLinearizableWorkload, type LinearizableClient } from '../../lib/bench/linearizable-workload.js'

interface Call { readonly node: number; readonly op: 'cas' | 'incr'; readonly key: string; readonly ifVersion?: string; readonly by?: number }

/** Nodes that share one register per key, as a cluster would: CAS checks the version for real. */
function fakeCluster(count: number, calls: Call[], fault?: (n: number) => Error | undefined): LinearizableClient[] {
  const registers = new Map<string, { version: string; value: bigint }>()
  let changes = 0
  return Array.from({ length: count }, (_, node): LinearizableClient => ({
    async cas(key, _value, { ifVersion }) {
      calls.push({ node, op: 'cas', key, ifVersion })
      const failure = fault?.(calls.length)
      if (failure !== undefined) throw failure
      const current = registers.get(key)
      if ((current?.version ?? 'absent') !== ifVersion) throw new HearsayClientError(`n${node}`, 409, { error: 'version moved', current: { version: current?.version ?? null } })
      const version = `v${++changes}`
      registers.set(key, { version, value: 0n })
      return { version }
    },
    async incr(key, { by }) {
      calls.push({ node, op: 'incr', key, by })
      const value = (registers.get(key)?.value ?? 0n) + BigInt(by ?? 1)
      const version = `v${++changes}`
      registers.set(key, { version, value })
      return { value: value.toString(), version }
    },
  }))
}

t.test('--mix cas: each worker sets its own key through its own node, with the version it last saw', async t => {
  const calls: Call[] = []
  const workload = createLinearizableWorkload({ clients: fakeCluster(3, calls), mix: 'cas', keyBytes: 8, keys: 100, value: Buffer.from('x') })
  for (let round = 0; round < 3; round++) {
    for (let worker = 0; worker < 4; worker++) t.same(await workload.operation(worker), { kind: 'cas', ok: true })
  }
  t.same(calls.slice(0, 4).map(c => [c.node, c.key, c.ifVersion]), [[0, 'bench/00', 'absent'], [1, 'bench/01', 'absent'], [2, 'bench/02', 'absent'], [0, 'bench/03', 'absent']], 'the first round creates with ifVersion=absent')
  t.same(calls.slice(4, 8).map(c => c.ifVersion), ['v1', 'v2', 'v3', 'v4'], 'later rounds name the version of the previous answer')
  t.equal(workload.conflicts(), 0)
})

t.test('--mix cas with fewer keys than workers: conflicts are 409s, and the next try uses the current version', async t => {
  const calls: Call[] = []
  const workload = createLinearizableWorkload({ clients: fakeCluster(1, calls), mix: 'cas', keyBytes: 8, keys: 1, value: Buffer.from('x') })
  // Two workers start together from the same (absent) version: one wins, one gets a 409.
  const outcomes = await Promise.all([workload.operation(0), workload.operation(1)])
  t.same(outcomes, [{ kind: 'cas', ok: true }, { kind: 'cas', ok: false, error: 'conflict_409' }])
  t.equal(workload.conflicts(), 1)
  t.same(await workload.operation(1), { kind: 'cas', ok: true }, 'the loser learned the current version from the 409')
  t.same(calls.map(c => c.ifVersion), ['absent', 'absent', 'v1'])
})

t.test('an unknown outcome is labelled apart from other 503s and forgets the version', async t => {
  const calls: Call[] = []
  const unknown = new HearsayClientError('n0', 503, { error: 'a majority did not answer in time', outcome: 'unknown' })
  const refused = new HearsayClientError('n0', 503, { error: 'not enough replicas' })
  const faults = new Map<number, Error>([[2, unknown], [3, refused]])
  const workload = createLinearizableWorkload({ clients: fakeCluster(1, calls, n => faults.get(n)), mix: 'cas', keyBytes: 8, keys: 1, value: Buffer.from('x') })
  t.same(await workload.operation(0), { kind: 'cas', ok: true })
  t.same(await workload.operation(0), { kind: 'cas', ok: false, error: 'unknown_503' })
  t.same(await workload.operation(0), { kind: 'cas', ok: false, error: 'unavailable_503' })
  t.same(calls.map(c => c.ifVersion), ['absent', 'v1', 'absent'], 'after the unknown outcome the worker asks again from absent and learns from the 409')
})

t.test('--mix incr: increments by one on the worker\'s key, kept apart from the keys puts and CAS fill', async t => {
  const calls: Call[] = []
  const workload = createLinearizableWorkload({ clients: fakeCluster(2, calls), mix: 'incr', keyBytes: 8, keys: 2, value: Buffer.from('x') })
  for (let i = 0; i < 6; i++) t.same(await workload.operation(i % 3), { kind: 'incr', ok: true })
  t.same(calls.map(c => [c.node, c.key, c.by]), [[0, 'count/00', 1], [1, 'count/01', 1], [0, 'count/00', 1], [0, 'count/00', 1], [1, 'count/01', 1], [0, 'count/00', 1]])
})
