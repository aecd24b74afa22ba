import t from 'tap'
import { checkLastWriteWins, type FinalRead, type WriteOp } from './history.js'

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
