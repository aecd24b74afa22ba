import t from 'tap'
import type { NodeId } from '../../lib/clock/version.js'
import { decideAccept, decidePrepare, mergeStates, type AcceptorState } from '../../lib/paxos/acceptor-state.js'
import { decodeState, encodeState, encodeStateForPeers } from '../../lib/paxos/acceptor-store.js'
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
  t.same(at.next, { promised: b(7), accepted: { ballot: b(6), record: rec(60, 'y'), history: [{ hlc: 60, node: p }] } })
  t.same(decideAccept(undefined, b(1), rec(10, 'z'), []).reply, { ok: true }, 'an acceptor that promised nothing accepts')
})

t.test('an accept also promises the proposer\'s next ballot (the one-round-trip path), which any other prepare must pass', async t => {
  const accepted = decideAccept({ promised: b(6) }, b(6), rec(60, 'y'), [])
  t.same(accepted.next?.promised, b(7), 'promised one tick on, same proposer')
  const state = accepted.next!
  t.same(decideAccept(state, b(7), rec(70, 'z'), []).reply, { ok: true }, 'the next accept needs no prepare')
  t.same(decidePrepare(state, b(7, '0000000000000001' as NodeId)).reply.ok, false, 'a prepare at the same counter from a lower node id is refused')
  const overtaken = decidePrepare(state, b(8, q)).next!
  t.same(decideAccept(overtaken, b(7), rec(70, 'z'), []).reply, { ok: false, promised: b(8, q) }, 'after another prepare the one-round-trip accept is refused')
})

t.test('acceptor state survives encoding, tombstones and empty states included', async t => {
  const states: AcceptorState[] = [
    { promised: b(1) },
    { promised: b(9, q), accepted: { ballot: b(8), record: rec(80, 'value'), history: [{ hlc: 70, node: q }, { hlc: 80, node: p }] } },
    { promised: b(9), accepted: { ballot: b(9), record: rec(90, null), history: [] } },
  ]
  for (const state of states) {
    t.same(decodeState(encodeState(state), 'k'), state)
    t.same(decodeState(encodeStateForPeers(state), 'k'), state, 'the MessagePack layout of catch-up pages and older data dirs reads the same')
  }
  t.throws(() => decodeState(Buffer.from([0x93, 1, 2, 3]), 'k'), /acceptor state for key "k" is corrupt/)
})

t.test('a stored state that is cut short, too long or out of range is reported as corrupt, never misread', async t => {
  const full = encodeState({ promised: b(9, q), accepted: { ballot: b(8), record: rec(80, 'value'), history: [{ hlc: 70, node: q }, { hlc: 80, node: p }] } })
  for (let length = 1; length < full.length; length++) {
    t.throws(() => decodeState(full.subarray(0, length), 'k'), /acceptor state for key "k" is corrupt/, `cut at ${length} bytes`)
  }
  t.throws(() => decodeState(Buffer.concat([full, Buffer.from([0])]), 'k'), /trailing bytes/)
  const negative = Buffer.from(full)
  negative.writeDoubleBE(-1, 1)
  t.throws(() => decodeState(negative, 'k'), /bad ballot/)
  const badFlag = Buffer.from(encodeState({ promised: b(1) }))
  badFlag[17] = 7
  t.throws(() => decodeState(badFlag, 'k'), /bad accepted flag/)
  t.throws(() => encodeState({ promised: { counter: 1, node: 'not-a-node-id' as NodeId } }), /not a node id/)
})

t.test('merging another acceptor\'s state keeps the higher promise and the higher-ballot accepted value', async t => {
  const mine: AcceptorState = { promised: b(9), accepted: { ballot: b(4), record: rec(40, 'old'), history: [] } }
  const theirs: AcceptorState = { promised: b(7), accepted: { ballot: b(6), record: rec(60, 'new'), history: [{ hlc: 60, node: p }] } }
  const merged = mergeStates(mine, theirs).next!
  t.same(merged, { promised: b(9), accepted: theirs.accepted })
  t.same(mergeStates(merged, mine).next, undefined, 'nothing newer: no write')
  t.equal(mergeStates(merged, theirs).reply, false)
  t.same(mergeStates(undefined, theirs).next, theirs, 'an acceptor with no state takes the other\'s')
  t.same(mergeStates({ promised: b(1) }, { promised: b(2) }).next, { promised: b(2) }, 'a promise alone is merged too')
})
