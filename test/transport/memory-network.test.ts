import t from 'tap'
import { FakeClock } from '../../lib/runtime/clock.js'
import { MemoryNetwork, type DeliveryEvent, type MemoryNetworkOptions } from '../../lib/transport/memory-network.js'
import { TransportError, type PeerMessage, type Transport } from '../../lib/transport/transport.js'
import { identity, testRegistry, type TextBody } from './fixtures.js'

interface Node {
  readonly transport: Transport
  readonly address: string
  /** Notes received, as "sender:n@time". */
  readonly notes: string[]
}

function network(options: Partial<MemoryNetworkOptions> = {}): { net: MemoryNetwork; trace: DeliveryEvent[]; node: (index: number) => Node } {
  const trace: DeliveryEvent[] = []
  const net = new MemoryNetwork({ seed: 42, frames: testRegistry, onDelivery: event => trace.push(event), ...options })
  return {
    net,
    trace,
    node(index) {
      const self = identity(index)
      const transport = net.transport(self)
      const notes: string[] = []
      transport.handle('test.note', (from, message) => {
        notes.push(`${from.name}:${(message.body as TextBody).n}@${net.clock.nowMs()}`)
        return undefined
      })
      transport.handle('test.echo', (_from, message) => ({ type: 'test.echoed', body: message.body }))
      return { transport, address: self.peer, notes }
    },
  }
}

function note(n: number): PeerMessage {
  return { type: 'test.note', body: { text: 'x', n } }
}

t.test('a message arrives after the configured delay, not before', async t => {
  const { net, node } = network({ conditions: { delayMs: { minMs: 5, maxMs: 5 } } })
  const a = node(1)
  const b = node(2)
  a.transport.send(b.address, note(1))
  await net.clock.advance(4)
  t.same(b.notes, [], 'nothing at 4 ms')
  await net.clock.advance(1)
  t.same(b.notes, ['node-1:1@5'], 'delivered at 5 ms')
})

t.test('delays vary within the range and each pair stays in order', async t => {
  const { net, node, trace } = network({ conditions: { delayMs: { minMs: 1, maxMs: 50 } } })
  const a = node(1)
  const b = node(2)
  for (let n = 0; n < 100; n++) {
    a.transport.send(b.address, note(n))
    await net.clock.advance(1)
  }
  await net.clock.advance(100)
  t.same(b.notes.map(entry => Number(entry.split(':')[1]!.split('@')[0])), [...Array(100).keys()], 'FIFO like a WebSocket link')
  const latenciesMs = trace.map((event, n) => event.atMs - n)
  t.ok(new Set(latenciesMs).size > 10, 'latencies vary')
  t.ok(latenciesMs.every(ms => ms >= 1 && ms <= 50), 'every latency within 1..50 ms')
})

t.test('loss drops about the configured share of messages', async t => {
  const { net, node, trace } = network({ conditions: { lossProbability: 0.3 } })
  const a = node(1)
  const b = node(2)
  for (let n = 0; n < 1000; n++) a.transport.send(b.address, note(n))
  await net.clock.advance(10)
  const lost = trace.filter(event => event.outcome === 'lost').length
  t.ok(lost > 220 && lost < 380, `${lost} of 1000 lost at p = 0.3`)
  t.equal(b.notes.length, 1000 - lost)
  net.setConditions({ lossProbability: 1 })
  a.transport.send(b.address, note(-1 >>> 0))
  await net.clock.advance(10)
  t.equal(b.notes.length, 1000 - lost, 'p = 1 loses everything')
})

t.test('a partition cuts traffic between groups until healed', async t => {
  const { net, node } = network()
  const a = node(1)
  const b = node(2)
  const c = node(3)
  const d = node(4)
  net.partition([a.address, b.address], [c.address])
  for (const to of [b, c, d]) a.transport.send(to.address, note(1))
  c.transport.send(d.address, note(2))
  const cut = a.transport.request(c.address, { type: 'test.echo', body: { text: 'hello?', n: 0 } }, 100).catch((error: unknown) => error)
  await net.clock.advance(110)
  t.same(b.notes, ['node-1:1@1'], 'same group: delivered')
  t.same(c.notes, [], 'across groups: cut')
  t.same(d.notes, ['node-1:1@1', 'node-3:2@1'], 'a node in no group reaches and is reached by everyone')
  net.heal()
  a.transport.send(c.address, note(3))
  await net.clock.advance(10)
  t.same(c.notes, ['node-1:3@111'], 'healed')
  t.match(await cut, { code: 'timeout' }, 'the request across the partition timed out')
})

t.test('requests get answers on simulated time and time out on it too', async t => {
  const { net, node } = network({ conditions: { delayMs: { minMs: 10, maxMs: 10 } } })
  const a = node(1)
  const b = node(2)
  b.transport.handle('test.slow', async (_from, message) => {
    await new Promise<void>(resolve => net.clock.setTimeout(resolve, 1000))
    return { type: 'test.echoed', body: message.body }
  })
  const answered = a.transport.request(b.address, { type: 'test.echo', body: { text: 'hi', n: 1 } }, 100)
  const slow = a.transport.request(b.address, { type: 'test.slow', body: { text: 'zzz', n: 2 } }, 500)
  const slowFailure = slow.catch((error: unknown) => error)
  await net.clock.advance(20)
  t.same(await answered, { type: 'test.echoed', body: { text: 'hi', n: 1 } }, 'answered after two 10 ms hops')
  await net.clock.advance(2000)
  t.match(await slowFailure, { code: 'timeout' }, 'the slow one timed out at 500 ms')
  net.transport(identity(3))
  const remote = a.transport.request(identity(3).peer, { type: 'test.echo', body: { text: 'x', n: 0 } }, 100).catch((error: unknown) => error)
  await net.clock.advance(30)
  t.ok(await remote instanceof TransportError)
  t.match(await remote, { code: 'remote', message: /unhandled: no handler for test.echo/ }, 'a node without the handler answers with an error')
})

t.test('a killed node neither sends nor receives, and can come back', async t => {
  const { net, node, trace } = network()
  const a = node(1)
  const b = node(2)
  const pendingFromB = b.transport.request(a.address, { type: 'test.slow', body: { text: 'x', n: 0 } }, 1000).catch((error: unknown) => error)
  net.kill(b.address)
  t.match(await pendingFromB, { code: 'closed' }, "the killed node's requests fail")
  a.transport.send(b.address, note(1))
  await net.clock.advance(5)
  t.equal(trace.at(-1)?.outcome, 'unreachable')
  const again = node(2)
  a.transport.send(b.address, note(2))
  await net.clock.advance(5)
  t.same(again.notes, ['node-1:2@6'], 'a new node at the address receives')
  t.same(b.notes, [], 'the killed one never did')
})

t.test('bodies are validated on the way: a malformed one reaches no handler', async t => {
  const { net, node, trace } = network()
  const a = node(1)
  const b = node(2)
  a.transport.send(b.address, { type: 'test.note', body: { text: 'x', n: -5 } })
  await net.clock.advance(5)
  t.same(b.notes, [])
  t.equal(trace.at(-1)?.outcome, 'malformed')
})

t.test('the same seed gives the same delivery trace; another seed another', async t => {
  async function run(seed: number): Promise<DeliveryEvent[]> {
    const clock = new FakeClock()
    const { net, node, trace } = network({ seed, clock, conditions: { delayMs: { minMs: 1, maxMs: 30 }, lossProbability: 0.2 } })
    const nodes = [1, 2, 3, 4].map(index => node(index))
    for (let round = 0; round < 20; round++) {
      for (const from of nodes) {
        for (const to of nodes) {
          if (from === to) continue
          from.transport.send(to.address, note(round))
          if (round % 5 === 0) void from.transport.request(to.address, { type: 'test.echo', body: { text: 'r', n: round } }, 50).catch(() => undefined)
        }
      }
      if (round === 10) net.partition([nodes[0]!.address], [nodes[1]!.address, nodes[2]!.address])
      if (round === 15) net.heal()
      await net.clock.advance(7)
    }
    await net.clock.advance(100)
    return trace
  }
  const first = await run(7)
  const second = await run(7)
  t.ok(first.length > 200, `${first.length} events`)
  // Compared as text: a deep comparison of hundreds of events is slow and its diff unreadable.
  t.equal(JSON.stringify(second), JSON.stringify(first), 'identical traces')
  t.not(JSON.stringify(await run(8)), JSON.stringify(first), 'a different seed differs')
})

t.test('a one-way cut drops one direction only, until the heal', async t => {
  const { net, node } = network()
  const a = node(1)
  const b = node(2)
  net.blockOneWay(a.address, b.address)
  a.transport.send(b.address, note(1))
  b.transport.send(a.address, note(2))
  await net.clock.advance(10)
  t.same(b.notes, [], 'a → b is cut')
  t.same(a.notes, ['node-2:2@1'], 'b → a still passes')
  net.heal()
  a.transport.send(b.address, note(3))
  await net.clock.advance(10)
  t.same(b.notes, ['node-1:3@11'], 'healed')
})

t.test('duplication delivers some messages twice; reordering lets some overtake', async t => {
  const { net, node, trace } = network({ conditions: { delayMs: { minMs: 1, maxMs: 30 }, duplicateProbability: 0.3, reorderProbability: 0.3 } })
  const a = node(1)
  const b = node(2)
  for (let n = 0; n < 200; n++) a.transport.send(b.address, note(n))
  await net.clock.advance(100)
  const received = b.notes.map(entry => Number(entry.split(':')[1]!.split('@')[0]))
  t.ok(received.length > 200, `${received.length - 200} duplicates delivered`)
  t.equal(trace.filter(event => event.outcome === 'duplicated').length, received.length - 200, 'each duplicate is in the trace')
  t.same([...new Set(received)].sort((x, y) => x - y), [...Array(200).keys()], 'every message arrives')
  t.ok(received.some((n, i) => i > 0 && n < received[i - 1]!), 'some arrive out of order')
})
