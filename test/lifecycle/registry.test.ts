import t from 'tap'
import type { NodeId } from '../../lib/clock/version.js'
import { LifecycleRegistry } from '../../lib/lifecycle/registry.js'
import { MAX_LIFECYCLE_RECORDS, type LeavingRecord, type LifecycleRecord, type RemovalRecord } from '../../lib/lifecycle/messages.js'
import { createRandom } from '../../lib/runtime/random.js'

const id = (n: number): NodeId => n.toString(16).padStart(16, '0') as NodeId
const removal = (member: number, by: number, atMs: number): RemovalRecord => ({ kind: 'removed', id: id(member), name: `node-${member}`, by: id(by), byName: `node-${by}`, atMs })
const leaving = (member: number, startedAtMs: number, active = true): LeavingRecord => ({ kind: 'leaving', id: id(member), name: `node-${member}`, startedAtMs, active })

t.test('a removal is never undone; two removals of one member keep the earlier one everywhere', async t => {
  const registry = new LifecycleRegistry()
  t.strictSame(registry.merge([removal(1, 2, 200)]), [removal(1, 2, 200)])
  t.ok(registry.isRemoved(id(1)))
  t.strictSame(registry.merge([removal(1, 2, 200)]), [], 'the same record again is no news')
  t.strictSame(registry.merge([removal(1, 3, 300)]), [], 'a later removal of the same member loses')
  t.strictSame(registry.merge([removal(1, 3, 100)]), [removal(1, 3, 100)], 'an earlier one wins')
  t.equal(registry.removal(id(1))?.by, id(3))
  t.strictSame(registry.merge([leaving(1, 500)]), [], 'a removed member cannot start leaving')
  t.strictSame(registry.activeLeaving(), new Set())
})

t.test('a member\'s leaving records are ordered by start time and a cancel wins a tie', async t => {
  const registry = new LifecycleRegistry([leaving(4, 100)])
  t.strictSame(registry.activeLeaving(), new Set([id(4)]))
  t.strictSame(registry.merge([leaving(4, 50, false)]), [], 'an older cancel is stale')
  t.strictSame(registry.merge([leaving(4, 100, false)]), [leaving(4, 100, false)])
  t.strictSame(registry.activeLeaving(), new Set())
  t.strictSame(registry.merge([leaving(4, 100, true)]), [], 'a cancelled leave does not come back at the same start')
  t.strictSame(registry.merge([leaving(4, 200, true)]), [leaving(4, 200, true)], 'a new decommission starts later')
  t.strictSame(registry.merge([removal(4, 1, 300)]).length, 1)
  t.strictSame(registry.activeLeaving(), new Set(), 'a removal ends the leave')
  t.equal(registry.size, 1, 'the moot leaving record was dropped')
})

t.test('any order of delivery converges on the same records (seeded shuffles)', async t => {
  const records: LifecycleRecord[] = [removal(1, 2, 10), removal(1, 3, 5), removal(2, 3, 7), leaving(5, 1), leaving(5, 3), leaving(5, 3, false), leaving(6, 9), removal(6, 1, 20)]
  const reference = new LifecycleRegistry(records).records()
  const random = createRandom(16)
  for (let run = 0; run < 50; run++) {
    const shuffled = [...records]
    for (let i = shuffled.length - 1; i > 0; i--) {
      const j = random.int(i + 1)
      ;[shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!]
    }
    const registry = new LifecycleRegistry()
    for (const record of shuffled) registry.merge([record])
    const sort = (list: LifecycleRecord[]): string[] => list.map((r) => JSON.stringify(r)).sort()
    t.strictSame(sort(registry.records()), sort(reference), `run ${run}`)
  }
})

t.test('knowsMoreThan tells a push-pull when to answer', async t => {
  const registry = new LifecycleRegistry([removal(1, 2, 10)])
  t.equal(registry.knowsMoreThan([]), true)
  t.equal(registry.knowsMoreThan([removal(1, 2, 10)]), false)
  t.equal(registry.knowsMoreThan([removal(1, 2, 5)]), false, 'theirs is the winner already')
  t.equal(registry.knowsMoreThan([removal(1, 2, 10), leaving(3, 1)]), false, 'they know more, we do not')
})

t.test('the records are bounded: past MAX_LIFECYCLE_RECORDS new members are not added', async t => {
  const registry = new LifecycleRegistry(Array.from({ length: MAX_LIFECYCLE_RECORDS }, (_, i) => removal(i + 10, 1, i)))
  t.equal(registry.full, true)
  t.strictSame(registry.merge([removal(5000, 1, 1)]), [])
  t.strictSame(registry.merge([leaving(5001, 1)]), [])
  t.equal(registry.size, MAX_LIFECYCLE_RECORDS)
})
