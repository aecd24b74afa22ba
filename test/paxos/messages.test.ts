import t from 'tap'
import { MAX_HISTORY } from '../../lib/paxos/acceptor-state.js'
import { validateAccept } from '../../lib/paxos/messages.js'

const node = 'aaaaaaaaaaaaaaaa'
const accept = (history: unknown): unknown => ({
  ballot: { counter: 5, node }, entry: { key: 'k', value: null, hlc: 5, node, strong: true }, history, set: [node],
})

t.test('an accept\'s history reads back as sent, and each malformed version is refused with its place named', async t => {
  const history = Array.from({ length: MAX_HISTORY }, (_, i) => ({ hlc: 100 + i, node }))
  t.same(validateAccept(accept(history)).history, history)
  t.same(validateAccept(accept([])).history, [])
  t.throws(() => validateAccept(accept([...history, { hlc: 1, node }])), /paxosAccept.history has 17 entries, more than 16/)
  t.throws(() => validateAccept(accept([{ hlc: 1, node }, { hlc: 2, node: 'AAAA' }])), /paxosAccept.history\[1\].node must be a node id/)
  t.throws(() => validateAccept(accept([{ hlc: -1, node }])), /paxosAccept.history\[0\].hlc is not a non-negative integer/)
  t.throws(() => validateAccept(accept([{ node }])), /paxosAccept.history\[0\].hlc/)
  t.throws(() => validateAccept(accept([Object.create({ hlc: 1, node })])), /paxosAccept.history\[0\] is not a map/, 'inherited fields do not count')
  t.throws(() => validateAccept(accept([[1, node]])), /paxosAccept.history\[0\] is not a map/)
  t.throws(() => validateAccept(accept('none')), /paxosAccept.history is not an array/)
})
