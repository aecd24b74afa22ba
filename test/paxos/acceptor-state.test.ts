import t from 'tap'
import type { NodeId } from '../../lib/clock/version.js'
import { decideAccept, decidePrepare, type AcceptorState } from '../../lib/paxos/acceptor-state.js'
import { decodeState, encodeState } from '../../lib/paxos/acceptor-store.js'
import type { Ballot } from '../../lib/paxos/ballot.js'
import type { StoredRecord } from '../../lib/store/record.js'

const p = 'aaaaaaaaaaaaaaaa' as NodeId
const q = 'bbbbbbbbbbbbbbbb' as NodeId
const b = (counter: number, node: NodeId = p): Ballot => ({ counter, node })
const rec = (hlc: number, text: string | null): StoredRecord => ({ value: text === null ? null : Buffer.from(text), version: { hlc, node: p }, strong: true })

t.test('prepare promises only a ballot above every promise, and answers the accepted value', async t => {
  const fresh = decidePrepare(undefined, b(5))
  t.same(fresh.reply, { ok: true, accepted: undefined })
  t.same(fresh.next, { promised: b(5) })
  const state: AcceptorState = { promised: b(5), accepted: { ballot: b(4), record: rec(40, 'x'), history: [] } }
  t.same(decidePrepare(state, b(5)).reply, { ok: false, promised: b(5) }, 'an equal ballot is refused')
  t.same(decidePrepare(state, b(4, q)).reply, { ok: false, promised: b(5) })
  t.equal(decidePrepare(state, b(5)).next, undefined, 'a refusal changes nothing')
  const higher = decidePrepare(state, b(5, q))
  t.same(higher.reply, { ok: true, accepted: state.accepted }, 'ties break by node id')
  t.same(higher.next, { promised: b(5, q), accepted: state.accepted })
})

t.test('accept takes a value at or above the promise, never below', async t => {
  const state: AcceptorState = { promised: b(6) }
  t.same(decideAccept(state, b(5), rec(50, 'x'), []).reply, { ok: false, promised: b(6) })
  const at = decideAccept(state, b(6), rec(60, 'y'), [{ hlc: 60, node: p }])
  t.same(at.reply, { ok: true })
  t.same(at.next, { promised: b(6), accepted: { ballot: b(6), record: rec(60, 'y'), history: [{ hlc: 60, node: p }] } })
  t.same(decideAccept(undefined, b(1), rec(10, 'z'), []).reply, { ok: true }, 'an acceptor that promised nothing accepts')
})

t.test('the one-round-trip accept holds only while nothing happened since the previous accept', async t => {
  const state: AcceptorState = { promised: b(6), accepted: { ballot: b(6), record: rec(60, 'y'), history: [] } }
  t.same(decideAccept(state, b(7), rec(70, 'z'), [], b(6)).reply, { ok: true })
  t.same(decideAccept({ ...state, promised: b(7, q) }, b(8), rec(80, 'z'), [], b(6)).reply, { ok: false, promised: b(7, q) }, 'another proposer prepared since')
  t.same(decideAccept({ promised: b(6), accepted: { ballot: b(5), record: rec(50, 'w'), history: [] } }, b(7), rec(70, 'z'), [], b(6)).reply.ok, false, 'the accepted ballot moved')
  t.same(decideAccept(undefined, b(7), rec(70, 'z'), [], b(6)).reply.ok, false, 'no state at all')
  t.same(decideAccept(state, b(6), rec(70, 'z'), [], b(6)).reply.ok, false, 'the new ballot must be above the previous one')
})

t.test('acceptor state survives encoding, tombstones and empty states included', async t => {
  const states: AcceptorState[] = [
    { promised: b(1) },
    { promised: b(9, q), accepted: { ballot: b(8), record: rec(80, 'value'), history: [{ hlc: 70, node: q }, { hlc: 80, node: p }] } },
    { promised: b(9), accepted: { ballot: b(9), record: rec(90, null), history: [] } },
  ]
  for (const state of states) t.same(decodeState(encodeState(state), 'k'), state)
  t.throws(() => decodeState(Buffer.from([0x93, 1, 2, 3]), 'k'), /acceptor state for key "k" is corrupt/)
})
