import t from 'tap'
import { applyRecord, MemberTable, supersedes, type Member } from '../../lib/membership/member-table.js'
import type { MemberState } from '../../lib/membership/messages.js'
import { createRandom } from '../../lib/runtime/random.js'
import { memberRecord } from './fixture.js'

function member(state: MemberState, incarnation: number): Member {
  return { ...memberRecord(1, state, incarnation), stateChangedAtMs: 0 }
}

t.test('SWIM precedence: which news replaces what we hold', async t => {
  // [held state, held incarnation, news state, news incarnation, replaces?]
  const rules: Array<[MemberState, number, MemberState, number, boolean]> = [
    ['alive', 5, 'alive', 6, true],
    ['alive', 5, 'alive', 5, false],
    ['suspect', 5, 'alive', 5, false],
    ['suspect', 5, 'alive', 6, true],
    ['dead', 5, 'alive', 6, true],
    ['left', 5, 'alive', 6, true],
    ['left', 5, 'alive', 5, false],
    ['alive', 5, 'suspect', 5, true],
    ['alive', 5, 'suspect', 4, false],
    ['alive', 5, 'suspect', 7, true],
    ['suspect', 5, 'suspect', 6, false],
    ['dead', 5, 'suspect', 6, false],
    ['alive', 5, 'dead', 5, true],
    ['suspect', 5, 'dead', 5, true],
    ['suspect', 5, 'dead', 4, false],
    ['dead', 5, 'dead', 6, false],
    ['left', 5, 'dead', 5, false],
    ['left', 5, 'dead', 6, false],
    ['alive', 5, 'left', 5, true],
    ['suspect', 5, 'left', 5, true],
    ['dead', 5, 'left', 5, true],
    ['dead', 5, 'left', 4, false],
    ['left', 5, 'left', 6, false],
  ]
  for (const [heldState, heldIncarnation, newsState, newsIncarnation, expected] of rules) {
    t.equal(supersedes(member(heldState, heldIncarnation), memberRecord(1, newsState, newsIncarnation)), expected,
      `${newsState}@${newsIncarnation} ${expected ? 'replaces' : 'does not replace'} ${heldState}@${heldIncarnation}`)
  }
})

t.test('only alive news introduces a stranger', async t => {
  t.ok(supersedes(undefined, memberRecord(1, 'alive', 1)))
  for (const state of ['suspect', 'dead', 'left'] as const) t.notOk(supersedes(undefined, memberRecord(1, state, 1)), state)
})

t.test('applying news keeps the state-change time unless the state changes', async t => {
  const held: Member = { ...member('alive', 1), stateChangedAtMs: 100 }
  t.equal(applyRecord(held, memberRecord(1, 'alive', 2), 500).stateChangedAtMs, 100)
  t.equal(applyRecord(held, memberRecord(1, 'suspect', 2), 500).stateChangedAtMs, 500)
  t.equal(applyRecord(undefined, memberRecord(1, 'alive', 2), 700).stateChangedAtMs, 700)
})

t.test('the table counts members by state through every change', async t => {
  const table = new MemberTable()
  for (let n = 1; n <= 5; n++) table.set({ ...memberRecord(n), stateChangedAtMs: 0 })
  table.set({ ...memberRecord(2, 'dead', 1), stateChangedAtMs: 0 })
  table.set({ ...memberRecord(3, 'left', 1), stateChangedAtMs: 0 })
  table.delete(memberRecord(4).id)
  t.equal(table.size, 4)
  t.same([table.count('alive'), table.count('suspect'), table.count('dead'), table.count('left')], [2, 0, 1, 1])
  t.same([...table.values()].map(m => m.name).sort(), ['node-1', 'node-2', 'node-3', 'node-5'])
  t.equal(table.delete(memberRecord(4).id), undefined, 'deleting twice is harmless')
})

t.test('sampling returns up to k distinct eligible members', async t => {
  const table = new MemberTable()
  for (let n = 1; n <= 20; n++) table.set({ ...memberRecord(n, n % 2 === 0 ? 'alive' : 'dead', 1), stateChangedAtMs: 0 })
  const random = createRandom(7)
  for (let round = 0; round < 50; round++) {
    const chosen = table.sample(3, random, m => m.state === 'alive')
    t.equal(chosen.length, 3)
    t.equal(new Set(chosen).size, 3, 'distinct')
    t.ok(chosen.every(m => m.state === 'alive'), 'eligible')
  }
  t.same(table.sample(3, random, () => false), [], 'nobody eligible: nobody chosen, and the search ends')
  t.equal(table.sample(30, random, () => true).length <= 20, true)
})
