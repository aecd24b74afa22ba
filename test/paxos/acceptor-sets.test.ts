import t from 'tap'
import type { NodeId } from '../../lib/clock/version.js'
import { AcceptorSetGate, CorruptAcceptorSetsError, setKey, type PersistedAcceptorSets } from '../../lib/paxos/acceptor-sets.js'

const [a, b, c, d, e] = ['aaaaaaaaaaaaaaaa', 'bbbbbbbbbbbbbbbb', 'cccccccccccccccc', 'dddddddddddddddd', 'eeeeeeeeeeeeeeee'] as NodeId[] as [NodeId, NodeId, NodeId, NodeId, NodeId]

/** A gate of one partition for node `self`, its persisted writes collected. */
function gate(self: NodeId, persisted?: unknown, without: readonly NodeId[] = []): { gate: AcceptorSetGate; writes: PersistedAcceptorSets[] } {
  const writes: PersistedAcceptorSets[] = []
  const g = new AcceptorSetGate({ localId: self, quorum: 2, partitionCount: 1, persisted, persist: (s) => { writes.push(s) }, setWithoutSelf: () => without })
  return { gate: g, writes }
}

t.test('a fresh node in a new cluster answers at once: no set before it could have chosen anything', async t => {
  const { gate: g } = gate(a, undefined, [b])
  g.update(() => [a])
  t.match(g.refusal(0, [a]), /not one of the key's acceptors/, 'a set of one cannot form a quorum of 2')
  g.update(() => [a, b])
  t.equal(g.refusal(0, [a, b]), undefined)
  t.match(g.refusal(0, [a, b, c]), /placement mismatch for partition 0/, 'another view of the set is refused')
})

t.test('a fresh node joining a cluster catches up from the set the partition had without it', async t => {
  const { gate: g } = gate(d, undefined, [a, b, c])
  g.update(() => [d])
  g.update(() => [a, b, d])
  t.match(g.refusal(0, [a, b, d]), /still catching up/)
  t.same(g.pending(), [{ partition: 0, target: setKey([a, b, d]), sources: [setKey([a, b, c])] }])
  g.sourceDone(0, setKey([a, b, d]), setKey([a, b, c]))
  t.equal(g.refusal(0, [a, b, d]), undefined)
  t.same(g.pending(), [])
})

t.test('a member that stays in the set catches up too: a set that comes back must not forget the values chosen while it was away', async t => {
  const { gate: g, writes } = gate(a)
  g.update(() => [a, b])
  g.update(() => [a, b, c])
  g.sourceDone(0, setKey([a, b, c]), setKey([a, b]))
  t.equal(g.refusal(0, [a, b, c]), undefined)
  g.update(() => [a, b, d])
  t.same(g.pending()[0]?.sources, [setKey([a, b, c])], 'd joined: catch up from {a,b,c}')
  g.sourceDone(0, setKey([a, b, d]), setKey([a, b, c]))
  g.update(() => [a, b, c])
  t.same(g.pending()[0]?.sources, [setKey([a, b, d])], 'd left again: catch up from {a,b,d}, where c had no say')
  await Promise.resolve()
  t.same(writes.at(-1), { format: 2, partitions: [[setKey([a, b, d]), [setKey([a, b, d])], setKey([a, b, c])]] }, 'persisted as it changed, the view with it')
})

t.test('every set held since the node last answered is a source; a stale completion is ignored', async t => {
  const { gate: g } = gate(a)
  g.update(() => [a, b, c])
  g.update(() => [a, b, d])
  g.update(() => [a, c, d])
  t.same(g.pending()[0]?.sources, [setKey([a, b, c]), setKey([a, b, d])])
  g.sourceDone(0, setKey([a, b, d]), setKey([a, b, c]))
  t.equal(g.pending()[0]?.sources.length, 2, 'a catch-up for a view the node has left counts for nothing')
  g.update(() => [b, c, d])
  t.match(g.refusal(0, [b, c, d]), /not one of the key's acceptors/)
  t.same(g.pending(), [], 'not a member: nothing to catch up now')
})

t.test('a restart keeps refusing until the catch-up it was in finishes; with the set unchanged it answers at once', async t => {
  const first = gate(a)
  first.gate.update(() => [a, b, c])
  first.gate.update(() => [a, b, d])
  await Promise.resolve()
  const restarted = gate(a, first.writes.at(-1))
  restarted.gate.update(() => [a])
  restarted.gate.update(() => [a, b, d])
  t.match(restarted.gate.refusal(0, [a, b, d]), /still catching up/)
  t.same(restarted.gate.pending()[0]?.sources, [setKey([a, b, c])])

  const steady = gate(a)
  steady.gate.update(() => [a, b, c])
  await Promise.resolve()
  const again = gate(a, steady.writes.at(-1))
  again.gate.update(() => [a])
  again.gate.update(() => [a, b, c])
  t.equal(again.gate.refusal(0, [a, b, c]), undefined)
  const moved = gate(a, steady.writes.at(-1))
  moved.gate.update(() => [a, b, d])
  t.same(moved.gate.pending()[0]?.sources, [setKey([a, b, c])], 'membership changed while it was down: catch up from the set it last served')
})

t.test('the state is written once per turn however many partitions changed', async t => {
  const { gate: g, writes } = gate(a)
  g.update(() => [a, b])
  g.update(() => [a, b, c])
  g.sourceDone(0, setKey([a, b, c]), setKey([a, b]))
  t.equal(writes.length, 0, 'nothing yet within the turn')
  await Promise.resolve()
  t.equal(writes.length, 1)
  t.same(writes[0], { format: 2, partitions: [[setKey([a, b, c]), [], setKey([a, b, c])]] })
})

t.test('a corrupt stored state is refused with a clear error', async t => {
  t.throws(() => gate(a, { format: 3, partitions: [[null, [], null]] }), CorruptAcceptorSetsError)
  t.throws(() => gate(a, { format: 1, partitions: [[null, []], [null, []]] }), /2 partitions, the config 1/)
  t.throws(() => gate(a, { format: 1, partitions: [['not-a-set', []]] }), /lastReady/)
})

t.test('a restart catches up from the set it last held, not only the one it last answered for', async t => {
  const first = gate(a)
  first.gate.update(() => [a, b, c])
  first.gate.update(() => [a, b, d])
  await first.gate.durable()
  t.same(first.writes.at(-1)?.partitions[0], [setKey([a, b, c]), [setKey([a, b, c])], setKey([a, b, d])], 'the view is written with the rest')
  const restarted = gate(a, first.writes.at(-1))
  restarted.gate.update(() => [a, b, c])
  t.match(restarted.gate.refusal(0, [a, b, c]), /still catching up/, 'back on {a,b,c}, it may have told a catch-up it had left it')
  t.same(restarted.gate.pending()[0]?.sources, [setKey([a, b, d])])
  const old = gate(a, { format: 1, partitions: [[setKey([a, b, c]), []]] })
  old.gate.update(() => [a, b, c])
  t.equal(old.gate.refusal(0, [a, b, c]), undefined, 'format 1 (no view) still reads')
})

t.test('a fresh node: reports itself fresh, and guesses its previous set again without members found fresh', async t => {
  const guesses: NodeId[][] = []
  const g = new AcceptorSetGate({
    localId: d, quorum: 2, partitionCount: 1, persisted: undefined, persist: () => undefined,
    setWithoutSelf: (_p, without) => {
      const guess = [e, a, b, c].filter((m) => !without.has(m)).slice(0, 3)
      guesses.push(guess)
      return guess
    },
  })
  g.update(() => [d, e, a])
  t.ok(g.isFresh(0))
  t.same(g.pending()[0]?.sources, [setKey([e, a, b])])
  g.foundFresh(0, c)
  t.same(g.pending()[0]?.sources, [setKey([e, a, b])], 'a fresh member outside the guess changes nothing')
  g.foundFresh(0, e)
  t.same(g.pending()[0]?.sources, [setKey([a, b, c])], 'e joined with d: the previous set is {a,b,c}')
  g.sourceDone(0, setKey([d, e, a]), setKey([a, b, c]))
  t.equal(g.refusal(0, [d, e, a]), undefined)
  t.notOk(g.isFresh(0), 'answered for a set: no longer fresh')
  g.foundFresh(0, a)
  t.same(g.pending(), [], 'no more guessing once caught up')
})

t.test('behind: what a node counted in a catch-up still lacks; it counts only toward a node that catches up from all of it', async t => {
  const { gate: g } = gate(a)
  g.update(() => [a, b, c])
  t.same(g.behind(0), [], 'caught up: behind on nothing')
  g.update(() => [a, b, d])
  t.same(g.behind(0), [setKey([a, b, c])], 'moved on, not caught up yet: its state covers {a,b,c} only')
  const reader = gate(b)
  reader.gate.update(() => [b, c, e])
  reader.gate.update(() => [a, b, d])
  const [target, source] = [setKey([a, b, d]), setKey([b, c, e])]
  t.same(reader.gate.pending()[0]?.sources, [source])
  t.ok(reader.gate.catchesUpFrom(0, target, source, []), 'caught up: counts')
  t.ok(reader.gate.catchesUpFrom(0, target, source, [source]), 'behind on the very set being caught up from: counts')
  t.notOk(reader.gate.catchesUpFrom(0, target, source, [setKey([a, b, c])]), 'behind on a set this node does not catch up from: wait for it')
  t.notOk(reader.gate.catchesUpFrom(0, setKey([a, b, e]), source, []), 'an answer for another view: never')
  t.ok(reader.gate.discovered(0, target, [setKey([a, b, c])]), 'hearing of it makes it a source')
  t.same(reader.gate.pending()[0]?.sources, [source, setKey([a, b, c])])
  t.ok(reader.gate.catchesUpFrom(0, target, source, [setKey([a, b, c])]), 'and the member counts')
  reader.gate.sourceDone(0, target, setKey([a, b, c]))
  t.notOk(reader.gate.discovered(0, target, [setKey([a, b, c])]), 'a set caught up from already is not added again')
  t.notOk(reader.gate.discovered(0, target, [target, setKey([a])]), 'nor the target, nor a set that cannot form a quorum')
  t.notOk(reader.gate.discovered(0, setKey([a, b, e]), [setKey([a, c, e])]), 'nor anything for another view')
})
