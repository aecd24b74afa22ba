import t from 'tap'
import { checkLastWriteWins, countProblemKeys, type FinalRead, type WriteOp } from './history.js'

const NODE_A = '00000000000000aa'
const NODE_B = '00000000000000bb'
/** A version string as the API prints it: 16-digit HLC ticks, a dash, the coordinating node id. */
const v = (hlc: number, node = NODE_A): string => `${hlc.toString().padStart(16, '0')}-${node}`

const ok = (key: string, value: string, version: string, node = 'node-1'): WriteOp => ({ node, key, value, outcome: 'ok', version })
const failed = (key: string, value: string, version?: string, node = 'node-2'): WriteOp =>
  ({ node, key, value, outcome: 'failed', ...(version !== undefined ? { version } : {}) })
const finals = (entries: Record<string, FinalRead | null>): Map<string, FinalRead | null> => new Map(Object.entries(entries))

t.test('a history where the newest acknowledged write of each key survives passes', async (t) => {
  const ops = [
    ok('k1', 'a', v(100)), ok('k1', 'b', v(200, NODE_B)), ok('k1', 'c', v(150)),
    ok('k2', 'x', v(120, NODE_B)),
  ]
  t.same(checkLastWriteWins(ops, finals({ k1: { value: 'b', version: v(200, NODE_B) }, k2: { value: 'x', version: v(120, NODE_B) } })), [])
})

t.test('an acknowledged write that disappears without a newer version is reported as lost', async (t) => {
  const ops = [ok('k1', 'a', v(100)), ok('k1', 'b', v(200))]
  const problems = checkLastWriteWins(ops, finals({ k1: { value: 'a', version: v(100) } }))
  t.equal(problems.length, 1)
  t.match(problems[0], { key: 'k1', message: /acknowledged write .*"b".* is lost/ })
})

t.test('a key that ends up absent after acknowledged writes is reported as lost', async (t) => {
  const problems = checkLastWriteWins([ok('k1', 'a', v(100))], finals({ k1: null }))
  t.match(problems, [{ key: 'k1', message: /absent at the end.*lost/ }])
})

t.test('an indeterminate write may win with a newer version, known or recognised by its value', async (t) => {
  const ops = [ok('k1', 'a', v(100)), failed('k1', 'b', v(300)), ok('k2', 'x', v(100)), failed('k2', 'y')]
  t.same(checkLastWriteWins(ops, finals({ k1: { value: 'b', version: v(300) }, k2: { value: 'y', version: v(400) } })), [])
})

t.test('a final version that no recorded operation wrote is reported', async (t) => {
  const problems = checkLastWriteWins([ok('k1', 'a', v(100))], finals({ k1: { value: 'z', version: v(500) } }))
  t.match(problems, [{ key: 'k1', message: /never written by any recorded operation/ }])
})

t.test('a final value that differs from the value written with its version is reported', async (t) => {
  const problems = checkLastWriteWins([ok('k1', 'a', v(100))], finals({ k1: { value: 'not-a', version: v(100) } }))
  t.match(problems, [{ key: 'k1', message: /holds "not-a", but that version wrote "a"/ }])
})

t.test('two writes given the same version are reported', async (t) => {
  const ops = [ok('k1', 'a', v(100)), ok('k1', 'b', v(100), 'node-2')]
  const problems = checkLastWriteWins(ops, finals({ k1: { value: 'a', version: v(100) } }))
  t.match(problems, [{ key: 'k1', message: /given to two writes/ }])
})

t.test('a written key whose final state was never read is reported, not silently passed', async (t) => {
  const problems = checkLastWriteWins([ok('k1', 'a', v(100))], finals({}))
  t.match(problems, [{ key: 'k1', message: /final state was not read/ }])
})

const deleted = (key: string, version: string | undefined, outcome: 'ok' | 'failed' = 'ok', node = 'node-1'): WriteOp =>
  ({ node, key, value: '', outcome, kind: 'delete', ...(version !== undefined ? { version } : {}) })

t.test('a key deleted last and acknowledged may end absent', async (t) => {
  const ops = [ok('k1', 'a', v(100)), deleted('k1', v(200))]
  t.same(checkLastWriteWins(ops, finals({ k1: null })), [])
})

t.test('an acknowledged delete undone by an older value is reported as resurrected', async (t) => {
  const ops = [ok('k1', 'a', v(100)), deleted('k1', v(200))]
  const problems = checkLastWriteWins(ops, finals({ k1: { value: 'a', version: v(100) } }))
  t.match(problems, [{ key: 'k1', kind: 'resurrected', message: /acknowledged delete .* was undone/ }])
  t.same(countProblemKeys(problems), { lost: 0, resurrected: 1, future: 0, phantom: 0, mismatch: 0, duplicate: 0, unread: 0 })
})

t.test('a newer write after an acknowledged delete legitimately brings the key back', async (t) => {
  const ops = [ok('k1', 'a', v(100)), deleted('k1', v(200)), failed('k1', 'b', v(300))]
  t.same(checkLastWriteWins(ops, finals({ k1: { value: 'b', version: v(300) } })), [])
})

t.test('an indeterminate delete may explain a key absent after acknowledged writes', async (t) => {
  t.same(checkLastWriteWins([ok('k1', 'a', v(100)), deleted('k1', undefined, 'failed')], finals({ k1: null })), [])
  t.match(checkLastWriteWins([ok('k1', 'a', v(100)), deleted('k1', v(50), 'failed')], finals({ k1: null })), [{ key: 'k1', kind: 'lost' }])
})

t.test('a final version that was a delete cannot hold a value', async (t) => {
  const problems = checkLastWriteWins([deleted('k1', v(200))], finals({ k1: { value: 'x', version: v(200) } }))
  t.match(problems, [{ key: 'k1', kind: 'mismatch', message: /was a delete/ }])
})

t.test('real-time rule: a write answered 503 long before an acknowledged write began must not beat it', async (t) => {
  const wallMs = 1_800_000_000_000
  const skewed: WriteOp = { node: 'skewed', key: 'k1', value: 'from-the-future', outcome: 'failed', version: v((wallMs + 10_000) * 1000, NODE_B), invokedAtMs: wallMs, completedAtMs: wallMs + 5 }
  const later: WriteOp = { node: 'node-1', key: 'k1', value: 'acked', outcome: 'ok', version: v((wallMs + 2_000) * 1000), invokedAtMs: wallMs + 2_000, completedAtMs: wallMs + 2_010 }
  const final = finals({ k1: { value: 'from-the-future', version: skewed.version! } })
  t.same(checkLastWriteWins([skewed, later], final), [], 'without a skew bound this is plain LWW')
  const problems = checkLastWriteWins([skewed, later], final, { maxSkewMs: 1_000, readAtMs: wallMs + 3_000 })
  t.match(problems, [{ kind: 'future' }, { kind: 'lost', message: /from the future/ }])
  const concurrent = { ...later, invokedAtMs: wallMs + 500 }
  t.match(checkLastWriteWins([skewed, concurrent], final, { maxSkewMs: 1_000, readAtMs: wallMs + 20_000 }), [{ kind: 'future', message: /ahead of the answer to its write/ }],
    'a concurrent write may lose, but the winner was created beyond the bound')
  const honest = { ...skewed, version: v((wallMs + 300) * 1000, NODE_B) }
  const racing = { ...concurrent, version: v((wallMs + 200) * 1000) }
  t.same(checkLastWriteWins([honest, racing], finals({ k1: { value: 'from-the-future', version: honest.version! } }), { maxSkewMs: 1_000, readAtMs: wallMs + 20_000 }), [],
    'writes within the bound of each other race legitimately')
})
