import t from 'tap'
import fc from 'fast-check'
import { checkLinearizable, type Operation, type RegisterInput, type RegisterOutput } from '../helpers/linearizability.js'
import { ReferenceRegister } from '../helpers/lin-reference.js'

/** An operation on key `k` (unless given) from `client`, sent at `from` and answered at `to` (ms). */
const op = (client: number, input: RegisterInput, output: RegisterOutput, from: number, to: number, key = 'k'): Operation =>
  ({ key, client, input, output, invokedAtMs: from, completedAtMs: to })
const read = (value: string | null, version: string | null = null): RegisterOutput => ({ kind: 'read', value, version })
const ok = (version: string, value?: string): RegisterOutput => value === undefined ? { kind: 'ok', version } : { kind: 'ok', version, value }
const fail = (currentVersion?: string | null): RegisterOutput => currentVersion === undefined ? { kind: 'fail' } : { kind: 'fail', currentVersion }
const unknown: RegisterOutput = { kind: 'unknown' }
const cas = (ifVersion: string | null, value: string): RegisterInput => ({ kind: 'cas', ifVersion, value })
const incr = (by = 1): RegisterInput => ({ kind: 'incr', by: BigInt(by) })
const R: RegisterInput = { kind: 'read' }

t.test('accepts linearizable histories', async (t) => {
  t.test('an empty history, and reads of an absent key', async (t) => {
    t.equal(checkLinearizable([]).verdict, 'linearizable')
    t.equal(checkLinearizable([op(1, R, read(null), 0, 1)]).verdict, 'linearizable')
  })

  t.test('concurrent CAS where exactly one wins and the other is refused with the winner as current', async (t) => {
    const history = [
      op(1, cas(null, 'a'), ok('v1'), 0, 1),
      op(2, cas('v1', 'b'), ok('v2'), 2, 10),
      op(3, cas('v1', 'c'), fail('v2'), 3, 9),
      op(4, R, read('b', 'v2'), 4, 8),
      op(1, R, read('b', 'v2'), 11, 12),
    ]
    const result = checkLinearizable(history)
    t.equal(result.verdict, 'linearizable', result.explanation)
  })

  t.test('a read concurrent with a write may see either value, and later reads never go back', async (t) => {
    const history = [
      op(1, cas(null, 'a'), ok('v1'), 0, 1),
      op(1, cas('v1', 'b'), ok('v2'), 2, 10),
      op(2, R, read('a', 'v1'), 3, 4),
      op(3, R, read('b', 'v2'), 5, 6),
      op(2, R, read('b', 'v2'), 7, 8),
    ]
    t.equal(checkLinearizable(history).verdict, 'linearizable')
  })

  t.test('an unknown CAS may have taken effect: a later read sees it, with a version nobody was told', async (t) => {
    const history = [
      op(1, cas(null, 'a'), ok('v1'), 0, 1),
      op(2, cas('v1', 'b'), unknown, 2, 3),
      op(3, R, read('b', 'v2'), 10, 11),
      op(3, cas('v2', 'c'), ok('v3'), 12, 13),
    ]
    t.equal(checkLinearizable(history).verdict, 'linearizable')
  })

  t.test('an unknown CAS may also never take effect', async (t) => {
    const history = [
      op(1, cas(null, 'a'), ok('v1'), 0, 1),
      op(2, cas('v1', 'b'), unknown, 2, 3),
      op(3, R, read('a', 'v1'), 10, 11),
      op(3, cas('v1', 'c'), ok('v3'), 12, 13),
    ]
    t.equal(checkLinearizable(history).verdict, 'linearizable')
  })

  t.test('an unknown increment may take effect long after its answer, between two reads', async (t) => {
    const history = [
      op(1, incr(), ok('v1', '1'), 0, 1),
      op(2, incr(), unknown, 2, 3),
      op(3, R, read('1', 'v1'), 10, 11),
      op(3, R, read('2', 'v9'), 20, 21),
      op(1, incr(), ok('v10', '3'), 30, 31),
    ]
    t.equal(checkLinearizable(history).verdict, 'linearizable')
  })

  t.test('delete with ifVersion leaves the key absent for ifVersion=absent', async (t) => {
    const history = [
      op(1, cas(null, 'lock-1'), ok('v1'), 0, 1),
      op(1, { kind: 'delete', ifVersion: 'v1' }, ok('v2'), 2, 3),
      op(2, R, read(null), 4, 5),
      op(2, cas(null, 'lock-2'), ok('v3'), 6, 7),
      op(1, cas(null, 'lock-1'), fail('v3'), 8, 9),
    ]
    t.equal(checkLinearizable(history).verdict, 'linearizable')
  })

  t.test('keys are checked independently', async (t) => {
    const history = [
      op(1, incr(), ok('a1', '1'), 0, 1, 'x'),
      op(1, incr(), ok('b1', '1'), 2, 3, 'y'),
      op(2, R, read('1', 'a1'), 4, 5, 'x'),
    ]
    const result = checkLinearizable(history)
    t.equal(result.verdict, 'linearizable')
    t.same(result.keys.map((k) => k.key), ['x', 'y'])
  })
})

t.test('rejects histories that are not linearizable, naming the key and the operations', async (t) => {
  t.test('a stale read after a completed write', async (t) => {
    const history = [
      op(1, cas(null, 'a'), ok('v1'), 0, 1),
      op(1, cas('v1', 'b'), ok('v2'), 2, 3),
      op(2, R, read('a', 'v1'), 4, 5),
    ]
    const result = checkLinearizable(history)
    t.equal(result.verdict, 'not-linearizable')
    t.match(result.explanation, /key "k": not linearizable/)
    t.match(result.explanation, /client 2: read → "a" at v1 \[4\.0 ms, 5\.0 ms\] \(impossible in that state\)/)
    t.match(result.explanation, /state then: "b" at version v2/)
  })

  t.test('two CAS on the same version both acknowledged', async (t) => {
    const history = [
      op(1, cas(null, 'a'), ok('v1'), 0, 1),
      op(2, cas('v1', 'b'), ok('v2'), 2, 10),
      op(3, cas('v1', 'c'), ok('v3'), 2, 10),
    ]
    const result = checkLinearizable(history)
    t.equal(result.verdict, 'not-linearizable')
    t.match(result.explanation, /cas\(ifVersion=v1, "c"\) → ok at v3/)
  })

  t.test('a counter that goes backwards', async (t) => {
    const history = [
      op(1, incr(), ok('v1', '1'), 0, 1),
      op(1, incr(), ok('v2', '2'), 2, 3),
      op(2, R, read('2', 'v2'), 4, 5),
      op(3, R, read('1', 'v1'), 6, 7),
    ]
    t.equal(checkLinearizable(history).verdict, 'not-linearizable')
  })

  t.test('a lost increment: two concurrent increments both answer 1', async (t) => {
    const history = [
      op(1, incr(), ok('v1', '1'), 0, 5),
      op(2, incr(), ok('v2', '1'), 1, 6),
    ]
    t.equal(checkLinearizable(history).verdict, 'not-linearizable')
  })

  t.test('a lost increment seen by a later read', async (t) => {
    const history = [
      op(1, incr(), ok('v1', '1'), 0, 1),
      op(2, incr(), ok('v2', '2'), 2, 3),
      op(3, R, read('1', 'v1'), 4, 5),
    ]
    t.equal(checkLinearizable(history).verdict, 'not-linearizable')
  })

  t.test('a refused (409) CAS whose value is read later', async (t) => {
    const history = [
      op(1, cas(null, 'a'), ok('v1'), 0, 1),
      op(2, cas('v0', 'b'), fail('v1'), 2, 3),
      op(3, R, read('b', 'v2'), 4, 5),
    ]
    t.equal(checkLinearizable(history).verdict, 'not-linearizable')
  })

  t.test('an unknown CAS whose effect is seen before it was sent', async (t) => {
    const history = [
      op(1, cas(null, 'a'), ok('v1'), 0, 1),
      op(3, R, read('b', 'v2'), 2, 3),
      op(2, cas('v1', 'b'), unknown, 4, 5),
    ]
    t.equal(checkLinearizable(history).verdict, 'not-linearizable')
  })

  t.test('one write seen under two versions', async (t) => {
    const history = [
      op(1, cas(null, 'a'), unknown, 0, 1),
      op(2, R, read('a', 'v7'), 2, 3),
      op(3, R, read('a', 'v8'), 4, 5),
    ]
    t.equal(checkLinearizable(history).verdict, 'not-linearizable')
  })

  t.test('a 409 naming the very version the CAS asked for', async (t) => {
    const history = [op(1, cas(null, 'a'), ok('v1'), 0, 1), op(2, cas('v1', 'b'), fail('v1'), 2, 3)]
    t.equal(checkLinearizable(history).verdict, 'not-linearizable')
  })

  t.test('only the bad key is reported', async (t) => {
    const history = [
      op(1, incr(), ok('a1', '1'), 0, 1, 'good'),
      op(1, incr(), ok('b1', '1'), 0, 1, 'bad'),
      op(2, R, read(null), 2, 3, 'bad'),
    ]
    const result = checkLinearizable(history)
    t.equal(result.verdict, 'not-linearizable')
    t.same(result.keys.map((k) => [k.key, k.verdict]), [['bad', 'not-linearizable'], ['good', 'linearizable']])
    t.notMatch(result.explanation, /"good"/)
  })
})

t.test('a search that runs out of steps is inconclusive, not a violation', async (t) => {
  // Many concurrent unknown increments and one read far above what they can reach: the search has
  // to try many orders before it can say no, and it is given too few steps.
  const history: Operation[] = []
  for (let i = 0; i < 16; i++) history.push(op(i, incr(), unknown, 0, 1))
  for (let i = 0; i < 16; i++) history.push(op(100 + i, { kind: 'write', value: `w${i}` }, ok(`w${i}`), 0, 50))
  history.push(op(200, R, read('99', 'v99'), 60, 61))
  const bounded = checkLinearizable(history, { maxStepsPerKey: 200 })
  t.equal(bounded.verdict, 'inconclusive')
  t.equal(bounded.explanation, '')
})

/** A history of `count` operations over `keys` keys from a hidden sequential run, with intervals around each linearization point. */
interface Generated { readonly history: Operation[]; readonly readIndexes: number[] }

const inputArb = fc.oneof(
  { weight: 3, arbitrary: fc.constant<'read'>('read') },
  { weight: 2, arbitrary: fc.constant<'write'>('write') },
  { weight: 4, arbitrary: fc.constant<'cas'>('cas') },
  { weight: 1, arbitrary: fc.constant<'delete'>('delete') },
  { weight: 3, arbitrary: fc.constant<'incr'>('incr') },
)
const stepArb = fc.record({
  key: fc.integer({ min: 0, max: 2 }),
  kind: inputArb,
  client: fc.integer({ min: 0, max: 4 }),
  /** For CAS/delete: use the current version (else a stale or made-up one). */
  current: fc.boolean(),
  by: fc.integer({ min: 1, max: 3 }),
  integerValue: fc.boolean(),
  before: fc.integer({ min: 0, max: 60 }),
  after: fc.integer({ min: 0, max: 60 }),
  unknown: fc.integer({ min: 0, max: 9 }),
  applied: fc.boolean(),
})

type Step = typeof stepArb extends fc.Arbitrary<infer T> ? T : never

function generate(steps: readonly Step[], options: { concurrent: boolean; unknowns: boolean }): Generated {
  const registers = new Map<number, ReferenceRegister>()
  const history: Operation[] = []
  const readIndexes: number[] = []
  steps.forEach((s, j) => {
    const register = registers.get(s.key) ?? new ReferenceRegister(`k${s.key}`)
    registers.set(s.key, register)
    const stale = register.version === null ? 'v-stale' : null
    const ifVersion = s.current ? register.version : stale
    const value = s.integerValue ? String(j) : `w${j}`
    const input: RegisterInput = s.kind === 'read' ? { kind: 'read' }
      : s.kind === 'write' ? { kind: 'write', value }
        : s.kind === 'cas' ? { kind: 'cas', ifVersion, value }
          : s.kind === 'delete' ? { kind: 'delete', ifVersion: ifVersion ?? 'v-stale' }
            : { kind: 'incr', by: BigInt(s.by) }
    const isUnknown = options.unknowns && s.kind !== 'read' && s.unknown === 0
    // An unknown operation either happened at its point or never; its answer is lost either way.
    let output: RegisterOutput
    if (isUnknown) {
      if (s.applied) register.apply(input)
      output = { kind: 'unknown' }
    } else {
      output = register.apply(input)
    }
    const pointMs = j * 10
    const from = options.concurrent ? pointMs - s.before : pointMs - 1
    const to = options.concurrent ? pointMs + s.after : pointMs + 1
    if (s.kind === 'read') readIndexes.push(history.length)
    history.push({ key: `k${s.key}`, client: s.client, input, output, invokedAtMs: from, completedAtMs: to })
  })
  return { history, readIndexes }
}

t.test('property: sequential histories from the model are accepted', async (t) => {
  fc.assert(fc.property(fc.array(stepArb, { maxLength: 60 }), (steps) => {
    const { history } = generate(steps, { concurrent: false, unknowns: true })
    const result = checkLinearizable(history)
    return result.verdict === 'linearizable'
  }), { numRuns: 200 })
  t.pass('200 histories accepted')
})

t.test('property: concurrent histories around a hidden linearization, with unknowns, are accepted', async (t) => {
  let overlapping = 0
  let unknowns = 0
  fc.assert(fc.property(fc.array(stepArb, { minLength: 20, maxLength: 80 }), (steps) => {
    const { history } = generate(steps, { concurrent: true, unknowns: true })
    overlapping += history.filter((a, i) => history.some((b, j) => i !== j && a.key === b.key && b.invokedAtMs < a.completedAtMs && a.invokedAtMs < b.completedAtMs)).length
    unknowns += history.filter((a) => a.output.kind === 'unknown').length
    return checkLinearizable(history).verdict === 'linearizable'
  }), { numRuns: 200 })
  t.ok(overlapping > 1000 && unknowns > 50, `200 histories accepted (${overlapping} operations overlapped another on their key, ${unknowns} had unknown outcomes)`)
})

t.test('property: corrupting one read of a sequential history gets it rejected', async (t) => {
  const arb = fc.array(stepArb, { minLength: 1, maxLength: 40 }).chain((steps) => {
    const generated = generate(steps, { concurrent: false, unknowns: false })
    return generated.readIndexes.length === 0
      ? fc.constant(undefined)
      : fc.record({ generated: fc.constant(generated), pick: fc.nat({ max: generated.readIndexes.length - 1 }), bogus: fc.boolean() })
  }).filter((x) => x !== undefined)
  fc.assert(fc.property(arb, ({ generated, pick, bogus }) => {
    const history = [...generated.history]
    const index = generated.readIndexes[pick]!
    const original = history[index]!
    const out = original.output as RegisterOutput & { kind: 'read' }
    // Another value (a made-up one or absent), or the same value with a different version.
    const corrupted: RegisterOutput = out.value === null ? read('never-written', 'v-made-up')
      : bogus ? read(null) : read(out.value, 'v-made-up')
    history[index] = { ...original, output: corrupted }
    const result = checkLinearizable(history)
    return result.verdict === 'not-linearizable' && result.explanation.includes(`key "${original.key}"`)
  }), { numRuns: 200 })
  t.pass('200 corrupted histories rejected')
})

t.test('property: a busy counter with many unknown increments is decided quickly', async (t) => {
  // Unknown increments never expire, so without care the search tries every subset of them.
  const counterStep = fc.record({
    read: fc.boolean(),
    by: fc.integer({ min: 1, max: 2 }),
    before: fc.integer({ min: 0, max: 60 }),
    after: fc.integer({ min: 0, max: 60 }),
    unknown: fc.integer({ min: 0, max: 3 }),
    applied: fc.boolean(),
  })
  let maxSteps = 0
  fc.assert(fc.property(fc.array(counterStep, { minLength: 100, maxLength: 150 }), (steps) => {
    const register = new ReferenceRegister('n')
    const history = steps.map((s, j): Operation => {
      const input: RegisterInput = s.read ? R : incr(s.by)
      let output: RegisterOutput
      if (!s.read && s.unknown === 0) {
        if (s.applied) register.apply(input)
        output = unknown
      } else {
        output = register.apply(input)
      }
      return op(j % 8, input, output, j * 10 - s.before, j * 10 + s.after, 'n')
    })
    const result = checkLinearizable(history, { maxStepsPerKey: 200_000 })
    maxSteps = Math.max(maxSteps, result.keys[0]!.steps)
    return result.verdict === 'linearizable'
  }), { numRuns: 30 })
  t.comment(`most search steps for one history: ${maxSteps}`)
  t.pass('30 histories of 100 to 150 operations, a quarter of the increments unknown, accepted within 200k steps')
})
