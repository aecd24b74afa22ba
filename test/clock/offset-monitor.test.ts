import t from 'tap'
import {
  CLOCK_PROBE_INTERVAL_MS, ClockOffsetMonitor, ESTIMATE_MAX_AGE_MS, OffsetEstimates, TOLERATED_SKEW_FRACTION,
  type ClockVerdict, type MonitoredPeer,
} from '../../lib/clock/offset-monitor.js'
import { validateClockProbe, validateClockProbeReply } from '../../lib/clock/messages.js'
import { asNodeId, type NodeId } from '../../lib/clock/version.js'
import { FakeClock } from '../../lib/runtime/clock.js'
import { MemoryNetwork, type NetworkConditions } from '../../lib/transport/memory-network.js'
import { identity } from '../transport/fixtures.js'

/** A 2026 wall-clock reading, so probes carry realistic times. */
const START_MS = 1_795_000_000_000
const MAX_SKEW_MS = 500

function peer(index: number): MonitoredPeer {
  return { id: asNodeId(index.toString(16).padStart(16, '0')), name: `node-${index}`, peer: `127.0.0.1:${7000 + index}` }
}

t.test('an offset is the remote reading minus the midpoint of the round trip, uncertain by half of it', async t => {
  const estimates = new OffsetEstimates(MAX_SKEW_MS)
  const estimate = estimates.record(peer(2), START_MS, START_MS + 10_007, START_MS + 14)
  t.same(estimate, { offsetMs: 10_000, uncertaintyMs: 7, measuredAtMs: START_MS + 14, driftRefMs: 0 })
  const verdict = estimates.verdict(START_MS + 14)
  t.equal(verdict.aheadMs, -10_000, 'this node is 10 s behind that peer')
  t.throws(() => estimates.record(peer(2), START_MS, START_MS, START_MS - 1), RangeError, 'an answer before the question is a bug')
})

t.test('a node is skewed only when a strict majority of its measured peers put it beyond the bound', async t => {
  const cases: { offsets: number[]; skewed: boolean }[] = [
    { offsets: [-10_000], skewed: true },
    { offsets: [-10_000, 0], skewed: false },
    { offsets: [-10_000, -10_000, 0], skewed: true },
    { offsets: [-10_000, 0, 5], skewed: false },
    { offsets: [-10_000, -9_000, 0, 3], skewed: false },
    { offsets: [-10_000, -9_000, 10_000, 3], skewed: true },
    { offsets: [0, 10, -20], skewed: false },
    { offsets: [], skewed: false },
  ]
  for (const { offsets, skewed } of cases) {
    const estimates = new OffsetEstimates(MAX_SKEW_MS)
    offsets.forEach((offsetMs, i) => estimates.record(peer(i + 2), START_MS, START_MS + 1 + offsetMs, START_MS + 2))
    const verdict = estimates.verdict(START_MS + 2)
    t.equal(verdict.skewed, skewed, `offsets ${JSON.stringify(offsets)}: ${skewed ? 'skewed' : 'not skewed'}`)
    t.equal(verdict.peersMeasured, offsets.length)
  }
})

t.test('a reading that is beyond the tolerated offset only within its round-trip uncertainty does not count', async t => {
  const toleratedMs = MAX_SKEW_MS * TOLERATED_SKEW_FRACTION
  const estimates = new OffsetEstimates(MAX_SKEW_MS)
  // Offset tolerated + 50 ms, measured over a 200 ms round trip: the true offset may be tolerated − 50.
  estimates.record(peer(2), START_MS, START_MS + 100 + toleratedMs + 50, START_MS + 200)
  t.notOk(estimates.offsets(START_MS + 200)[0]!.beyond, 'ambiguous: not beyond')
  t.notOk(estimates.verdict(START_MS + 200).skewed)
  // The same offset over a 20 ms round trip is beyond for sure.
  estimates.record(peer(2), START_MS, START_MS + 10 + toleratedMs + 50, START_MS + 20)
  t.ok(estimates.offsets(START_MS + 20)[0]!.beyond, 'certain: beyond')
  t.ok(estimates.verdict(START_MS + 20).skewed)
  // Behind counts as much as ahead.
  estimates.record(peer(2), START_MS, START_MS + 10 - toleratedMs - 50, START_MS + 20)
  t.ok(estimates.verdict(START_MS + 20).skewed, 'a clock behind its peers is skewed too')
})

t.test('estimates of peers no longer alive, and estimates older than the age bound, are forgotten', async t => {
  const estimates = new OffsetEstimates(MAX_SKEW_MS)
  estimates.record(peer(2), START_MS, START_MS + 1, START_MS + 2)
  estimates.record(peer(3), START_MS + 1000, START_MS + 1001, START_MS + 1002)
  const forgotten = estimates.retain(new Set<NodeId>([peer(3).id]), START_MS + 1002)
  t.same(forgotten.map((p) => p.name), ['node-2'], 'node-2 left the alive set')
  t.same(estimates.offsets(START_MS + 1002).map((o) => o.peer.name), ['node-3'])
  t.equal(estimates.verdict(START_MS + 1002 + ESTIMATE_MAX_AGE_MS).peersMeasured, 1, 'still fresh at the age bound')
  t.equal(estimates.verdict(START_MS + 1003 + ESTIMATE_MAX_AGE_MS).peersMeasured, 0, 'too old just after it: no vote')
  t.equal(estimates.verdict(START_MS).peersMeasured, 0, 'a reading from the future (the wall clock was set back) has no vote')
  t.same(estimates.retain(new Set<NodeId>([peer(3).id]), START_MS + 1003 + ESTIMATE_MAX_AGE_MS).map((p) => p.name), ['node-3'])
})

t.test('probe bodies are validated: wall clock readings are bounded non-negative integers', async t => {
  t.same(validateClockProbe({ wallMs: START_MS }), { wallMs: START_MS })
  t.same(validateClockProbeReply({ wallMs: 0 }), { wallMs: 0 })
  t.throws(() => validateClockProbe({ wallMs: -1 }), /clockProbe.wallMs is not a non-negative integer/)
  t.throws(() => validateClockProbe({ wallMs: 1.5 }), /not a non-negative integer/)
  t.throws(() => validateClockProbeReply({ wallMs: Number.MAX_SAFE_INTEGER }), /clockProbeReply.wallMs is .*, more than/)
  t.throws(() => validateClockProbeReply([START_MS]), /is not a map/)
  t.throws(() => validateClockProbe({}), /not a non-negative integer/)
})

interface SimNode {
  readonly index: number
  readonly monitor: ClockOffsetMonitor
  readonly verdicts: ClockVerdict[]
  readonly gauge: Map<string, number>
  /** The node's clock offset from true (simulated) time, ms. */
  offsetMs: number
}

/**
 * Nodes 1..count on one in-memory network and fake clock, each with a monitor whose wall clock
 * is the fake clock plus its own offset. `alive` decides which peers each node probes.
 */
function cluster(offsets: readonly number[], conditions: Partial<NetworkConditions> = {}) {
  const clock = new FakeClock(START_MS)
  const net = new MemoryNetwork({ seed: 7, clock, conditions })
  const alive = new Set<number>(offsets.map((_, i) => i + 1))
  const nodes: SimNode[] = offsets.map((offsetMs, i) => {
    const index = i + 1
    const transport = net.transport(identity(index))
    const verdicts: ClockVerdict[] = []
    const gauge = new Map<string, number>()
    const node: SimNode = {
      index, verdicts, gauge, offsetMs,
      monitor: new ClockOffsetMonitor({
        transport, clock, maxSkewMs: MAX_SKEW_MS,
        wallMs: () => clock.nowMs() + node.offsetMs,
        alivePeers: () => [...alive].filter((other) => other !== index).map((other) => peer(other)),
        onEstimate: (p, estimate) => gauge.set(p.name, estimate.offsetMs),
        onForget: (p) => gauge.delete(p.name),
        onVerdictChange: (verdict) => verdicts.push(verdict),
      }),
    }
    return node
  })
  for (const node of nodes) node.monitor.start()
  return { clock, net, nodes, alive }
}

t.test('over a network, the node 10 s ahead finds itself skewed within one probe round and the others do not', async t => {
  const { clock, nodes } = cluster([0, 0, 10_000], { delayMs: { minMs: 2, maxMs: 2 } })
  t.teardown(() => { for (const node of nodes) node.monitor.stop() })
  await clock.advance(10)
  const [first, second, skewed] = nodes as [SimNode, SimNode, SimNode]
  const verdict = skewed.monitor.verdict()
  t.ok(verdict.skewed, 'node 3 is skewed after the first round')
  t.equal(verdict.peersMeasured, 2)
  t.equal(verdict.peersBeyond, 2)
  t.equal(verdict.aheadMs, 10_000, 'and knows by how much (symmetric delay: exact)')
  t.equal(skewed.verdicts.length, 1, 'one verdict change reported')
  for (const healthy of [first, second]) {
    t.notOk(healthy.monitor.verdict().skewed, `node ${healthy.index} is not skewed: only 1 of its 2 peers disagrees`)
    t.equal(healthy.verdicts.length, 0)
    t.equal(healthy.gauge.get('node-3'), 10_000, `node ${healthy.index} measures node 3 10 s ahead`)
  }
  const offsets = first.monitor.offsets()
  t.same(offsets.map((o) => [o.peer.name, o.offsetMs, o.uncertaintyMs, o.beyond]), [['node-2', 0, 2, false], ['node-3', 10_000, 2, true]])

  // The clock is corrected: the next rounds clear the verdict.
  skewed.offsetMs = 0
  await clock.advance(CLOCK_PROBE_INTERVAL_MS + 10)
  t.notOk(skewed.monitor.verdict().skewed, 'back within the bound after one more round')
  t.same(skewed.verdicts.map((v) => v.skewed), [true, false])
})

t.test('peers that are no longer alive, or stop answering, are forgotten; a skewed verdict stands without fresh news', async t => {
  const { clock, net, nodes, alive } = cluster([0, 0, 10_000], { delayMs: { minMs: 1, maxMs: 1 } })
  t.teardown(() => { for (const node of nodes) node.monitor.stop() })
  await clock.advance(10)
  const [first, , skewed] = nodes as [SimNode, SimNode, SimNode]
  t.same([...first.gauge.keys()].sort(), ['node-2', 'node-3'])
  alive.delete(2)
  await clock.advance(CLOCK_PROBE_INTERVAL_MS)
  t.same([...first.gauge.keys()], ['node-3'], 'node 2 left the alive set: its estimate and gauge are gone')
  t.ok(first.monitor.verdict().skewed, 'with node 3 its only measured peer, node 1 cannot tell who is wrong (as in a 2-node cluster)')

  // Node 3 is cut off: its estimates age out, and without fresh news its verdict stays.
  net.partition([identity(1).peer, identity(2).peer], [identity(3).peer])
  await clock.advance(ESTIMATE_MAX_AGE_MS + 2 * CLOCK_PROBE_INTERVAL_MS)
  t.equal(skewed.monitor.verdict().peersMeasured, 0, 'node 3 has no fresh estimate')
  t.same([...skewed.gauge.keys()], [], 'and reports none')
  t.ok(skewed.monitor.verdict().skewed, 'but still counts as skewed: silence proves nothing')
  t.equal(first.monitor.verdict().peersMeasured, 0, 'node 1 forgot node 3 once it stopped answering')
  t.ok(first.monitor.verdict().skewed, 'node 1 keeps its verdict too until it hears from someone')
  alive.add(2)
  await clock.advance(CLOCK_PROBE_INTERVAL_MS)
  t.same(first.monitor.verdict(), { skewed: false, peersMeasured: 1, peersBeyond: 0, aheadMs: 0, maxSkewMs: MAX_SKEW_MS }, 'node 2 is back: node 1 is cleared')
  t.ok(skewed.monitor.verdict().skewed, 'node 3, still cut off, is not')
})

t.test('a wall clock stepped after it was measured is judged at once, before the next probe', async t => {
  const { clock, nodes } = cluster([0, 0, 0], { delayMs: { minMs: 1, maxMs: 1 } })
  t.teardown(() => { for (const node of nodes) node.monitor.stop() })
  await clock.advance(10)
  const stepped = nodes[2] as SimNode
  t.notOk(stepped.monitor.verdict().skewed)
  stepped.offsetMs = 10_000
  const verdict = stepped.monitor.verdict()
  t.ok(verdict.skewed, 'its estimates moved with its wall clock against its monotonic clock')
  t.equal(verdict.aheadMs, 10_000)
})

t.test('a wall clock that jumps while the node is cut off from every peer is caught against its monotonic clock', async t => {
  const { clock, net, nodes } = cluster([0, 0, 0], { delayMs: { minMs: 1, maxMs: 1 } })
  t.teardown(() => { for (const node of nodes) node.monitor.stop() })
  await clock.advance(10)
  const isolated = nodes[2] as SimNode
  net.partition([identity(1).peer, identity(2).peer], [identity(3).peer])
  await clock.advance(ESTIMATE_MAX_AGE_MS + 2 * CLOCK_PROBE_INTERVAL_MS)
  t.same([isolated.monitor.verdict().peersMeasured, isolated.monitor.verdict().skewed], [0, false], 'no fresh estimate, and nothing wrong with its clock')
  isolated.offsetMs = 10_000
  t.ok(isolated.monitor.verdict().skewed, 'its clock jumped while nobody could be asked: skewed, so it coordinates no writes')
  isolated.offsetMs = 0
  t.notOk(isolated.monitor.verdict().skewed, 'stepped back: fine again')
})

t.test('a slow, jittery link does not make a node within the bound flap into skewed', async t => {
  // One-way delays of 1..400 ms: a midpoint estimate may be off by up to ~200 ms, more than the
  // 50 ms between node 2's true offset (350 ms) and the tolerated 400 ms; the uncertainty covers it.
  const { clock, nodes } = cluster([0, 350, 0], { delayMs: { minMs: 1, maxMs: 400 } })
  t.teardown(() => { for (const node of nodes) node.monitor.stop() })
  let rounds = 0
  const skewedSeen: string[] = []
  for (let i = 0; i < 120; i++) {
    await clock.advance(CLOCK_PROBE_INTERVAL_MS / 2)
    for (const node of nodes) {
      const verdict = node.monitor.verdict()
      if (verdict.skewed) skewedSeen.push(`node ${node.index} at ${clock.nowMs() - START_MS} ms`)
      if (verdict.peersMeasured > 0) rounds++
    }
  }
  t.ok(rounds > 300, `estimates were made (${rounds} node-samples with some)`)
  t.same(skewedSeen, [], 'never skewed')
  const estimates = nodes[0]!.monitor.offsets()
  t.ok(estimates.every((o) => Math.abs(o.offsetMs - nodes[o.peer.id === peer(2).id ? 1 : 2]!.offsetMs) <= o.uncertaintyMs),
    'every estimate brackets the true offset within its uncertainty')
})

t.test('a monitor answers probes with its wall clock and stops probing when stopped', async t => {
  const { clock, nodes } = cluster([0, 1234], { delayMs: { minMs: 1, maxMs: 1 } })
  await clock.advance(5)
  t.equal(nodes[0]!.gauge.get('node-2'), 1234)
  for (const node of nodes) node.monitor.stop()
  t.equal(clock.pendingTimers, 0, 'no timer left behind')
})

t.test('the verdict judges exactly the estimates /status lists: fresh ones, moved by a wall-clock step, counted against the uncertainty', async t => {
  const estimates = new OffsetEstimates(MAX_SKEW_MS)
  const tolerated = MAX_SKEW_MS * TOLERATED_SKEW_FRACTION
  // A stale one, one within the bound only thanks to its uncertainty, and three recorded at different drifts.
  estimates.record(peer(1), START_MS - ESTIMATE_MAX_AGE_MS - 10, START_MS - ESTIMATE_MAX_AGE_MS - 10 + 5_000, START_MS - ESTIMATE_MAX_AGE_MS - 10)
  estimates.record(peer(2), START_MS, START_MS + tolerated + 50 + 30, START_MS + 60)
  estimates.record(peer(3), START_MS, START_MS + 5, START_MS + 2, 0)
  estimates.record(peer(4), START_MS, START_MS - 900, START_MS + 2, 40)
  estimates.record(peer(5), START_MS, START_MS + 2_000, START_MS + 2, -300)
  for (const drift of [0, 250, -700]) {
    const listed = estimates.offsets(START_MS + 100, drift)
    const sorted = listed.map((o) => -o.offsetMs).sort((a, b) => a - b)
    const beyond = listed.filter((o) => o.beyond).length
    const verdict = estimates.verdict(START_MS + 100, drift)
    t.equal(verdict.peersMeasured, 4, 'the stale estimate is not judged')
    t.equal(verdict.peersBeyond, beyond, `drift ${drift}: the same peers beyond the bound`)
    t.equal(verdict.skewed, beyond > 0 && beyond * 2 > listed.length)
    t.equal(verdict.aheadMs, (sorted[1]! + sorted[2]!) / 2, `drift ${drift}: the median of what /status shows`)
  }
})
