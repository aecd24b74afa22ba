import t from 'tap'
import { pino } from 'pino'
import type { NodeId } from '../../lib/clock/version.js'
import { decideAccept, decidePrepare } from '../../lib/paxos/acceptor-state.js'
import { AcceptorStore } from '../../lib/paxos/acceptor-store.js'
import { AcceptorSetGate } from '../../lib/paxos/acceptor-sets.js'
import { answerCatchUp, CatchUp, neededFrom } from '../../lib/paxos/catch-up.js'
import { FakeClock } from '../../lib/runtime/clock.js'
import { MemoryDatabase } from '../../lib/sim/memory-database.js'
import { MemoryJournal } from '../../lib/sim/memory-journal.js'

const [a, b, c, d] = ['aaaaaaaaaaaaaaaa', 'bbbbbbbbbbbbbbbb', 'cccccccccccccccc', 'dddddddddddddddd'] as NodeId[] as [NodeId, NodeId, NodeId, NodeId]
const log = pino({ level: 'silent' })

/** One node's acceptor: its store and gate (two partitions: keys "p0…" in 0, "p1…" in 1). */
interface Node { readonly id: NodeId; readonly store: AcceptorStore; readonly gate: AcceptorSetGate; down: boolean }
const partitionOf = (key: string): number => key.startsWith('p1') ? 1 : 0

async function node(id: NodeId, without: readonly NodeId[] = []): Promise<Node> {
  return { id, store: await AcceptorStore.open({ db: new MemoryDatabase(), journal: new MemoryJournal(), defer: queueMicrotask }), gate: new AcceptorSetGate({ localId: id, quorum: 2, partitionCount: 2, persisted: undefined, persist: () => undefined, setWithoutSelf: () => without }), down: false }
}

function catchUpFor(self: Node, peers: readonly Node[], clock: FakeClock): CatchUp {
  return new CatchUp({
    localId: self.id, gate: self.gate, store: self.store, quorum: 2, clock, retryMs: 100, log,
    request: async (member, body) => {
      const peer = peers.find((p) => p.id === member)
      if (peer === undefined || peer.down) throw new Error(`${member} is down`)
      return answerCatchUp({ gate: peer.gate, store: peer.store, partitionOf }, body)
    },
  })
}

/** Gives `n` an accepted value for `key` at ballot `counter` (by proposer a). */
async function accepted(n: Node, key: string, counter: number, text: string): Promise<void> {
  const ballot = { counter, node: a }
  await n.store.update(key, (s) => decidePrepare(s, ballot))
  await n.store.update(key, (s) => decideAccept(s, ballot, { value: Buffer.from(text), version: { hlc: counter, node: a }, strong: true }, []))
}

async function settle(clock: FakeClock, until: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !until(); i++) await clock.advance(50)
}

t.test('answers needed from a set: enough that every quorum of it includes one', async t => {
  t.equal(neededFrom('a,b,c', 2), 2)
  t.equal(neededFrom('a,b', 2), 1)
  t.equal(neededFrom('a,b,c,d,e', 3), 3)
})

t.test('a joining node merges the highest accepted value of every key from a majority of the previous set, then answers', async t => {
  const clock = new FakeClock(1000)
  const [na, nb, nc] = [await node(a), await node(b), await node(c)]
  const nd = await node(d, [a, b, c])
  for (const n of [na, nb, nc]) n.gate.update(() => [a, b, c])
  // The value chosen at ballot 20 reached b and c; a holds an older one.
  await accepted(na, 'p0-x', 10, 'old')
  await accepted(nb, 'p0-x', 20, 'chosen')
  await accepted(nc, 'p0-x', 20, 'chosen')
  await accepted(nc, 'p1-y', 30, 'other partition')
  // d joins; in everyone's view partition 0 moves to {a,b,d}, partition 1 stays {a,b,c}.
  const next = (p: number): NodeId[] => p === 0 ? [a, b, d] : [a, b, c]
  na.down = true
  for (const n of [nb, nc]) n.gate.update(next)
  nd.gate.update(() => [d])
  nd.gate.update(next)
  t.match(nd.gate.refusal(0, [a, b, d]), /catching up/)
  const catchUp = catchUpFor(nd, [na, nb, nc], clock)
  catchUp.kick()
  await settle(clock, () => nd.gate.pending().length === 0)
  catchUp.stop()
  t.equal(nd.gate.refusal(0, [a, b, d]), undefined, 'caught up from b and c (a was down)')
  t.equal(Buffer.from(nd.store.get('p0-x')!.accepted!.record.value!).toString(), 'chosen')
  t.same(nd.store.get('p0-x')!.promised, { counter: 21, node: a }, 'the promise comes along')
  t.equal(nd.store.get('p1-y'), undefined, 'only the partitions it catches up travel')
})

t.test('a member whose view is not yet the new set does not count, so the node keeps refusing until it does', async t => {
  const clock = new FakeClock(1000)
  const [na, nb, nc] = [await node(a), await node(b), await node(c)]
  const nd = await node(d, [a, b, c])
  for (const n of [na, nb, nc]) n.gate.update(() => [a, b, c])
  await accepted(nc, 'p0-x', 20, 'chosen')
  const next = (p: number): NodeId[] => p === 0 ? [a, b, d] : [a, b, c]
  nb.gate.update(next)
  nd.gate.update(next)
  const catchUp = catchUpFor(nd, [na, nb, nc], clock)
  catchUp.kick()
  await settle(clock, () => false)
  t.match(nd.gate.refusal(0, [a, b, d]), /catching up/, 'only b sees {a,b,d}: one answer of the two needed')
  t.equal(nc.gate.refusal(0, [a, b, c]), undefined, 'c, still on the old view, may yet accept for {a,b,c}')
  nc.gate.update(next)
  t.match(nc.gate.refusal(0, [a, b, c]), /placement mismatch/, 'once c moved on, an old-set request is refused there')
  await settle(clock, () => nd.gate.pending().length === 0)
  catchUp.stop()
  t.equal(nd.gate.refusal(0, [a, b, d]), undefined)
  t.equal(Buffer.from(nd.store.get('p0-x')!.accepted!.record.value!).toString(), 'chosen', 'c\'s value arrived')
})

t.test('a responder pages through its acceptor store', async t => {
  const n = await node(a)
  n.gate.update(() => [a, b, c])
  for (let i = 0; i < 10; i++) await accepted(n, `p0-${i}`, 10 + i, 'v'.repeat(100))
  const request = { partitions: [{ partition: 0, set: [a, b, c] }], after: null, maxBytes: 300 }
  const first = await answerCatchUp({ gate: n.gate, store: n.store, partitionOf }, request)
  t.ok(first.entries.length < 10 && first.next !== null, 'a page stops near maxBytes')
  let keys = first.entries.map((e) => e.key)
  let next = first.next
  while (next !== null) {
    const page = await answerCatchUp({ gate: n.gate, store: n.store, partitionOf }, { ...request, after: next })
    keys = [...keys, ...page.entries.map((e) => e.key)]
    next = page.next
  }
  t.same(keys, Array.from({ length: 10 }, (_, i) => `p0-${i}`))
  const mismatched = await answerCatchUp({ gate: n.gate, store: n.store, partitionOf }, { ...request, partitions: [{ partition: 0, set: [a, b, d] }] })
  t.same(mismatched, { generation: n.gate.generation, matched: [], fresh: [], entries: [], next: null }, 'another view: nothing')
})

t.test('an answer lists the partitions its sender is fresh in (never matched) and the sets it is behind on', async t => {
  const fresh = await node(d, [a, b, c])
  fresh.gate.update(() => [a, b, d])
  const request = { partitions: [{ partition: 0, set: [a, b, d] }, { partition: 1, set: [a, b, d] }], after: null, maxBytes: 1000 }
  const fromFresh = await answerCatchUp({ gate: fresh.gate, store: fresh.store, partitionOf }, request)
  t.same([fromFresh.matched, fromFresh.fresh], [[], [0, 1]], 'a fresh node counts for nothing')
  const moving = await node(a)
  moving.gate.update(() => [a, b, c])
  moving.gate.update(() => [a, b, d])
  const fromMoving = await answerCatchUp({ gate: moving.gate, store: moving.store, partitionOf }, request)
  t.same(fromMoving.matched, [0, 1])
  t.same(fromMoving.behind, [{ partition: 0, sets: [[a, b, c]] }, { partition: 1, sets: [[a, b, c]] }], 'not caught up for {a,b,d}: it covers {a,b,c} only')
})
