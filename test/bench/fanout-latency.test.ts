import t from 'tap'
import { FanoutLatency } from '../../lib/bench/fanout-latency.js'

t.test('each watcher\'s delivery of an acknowledged write is one latency sample', async t => {
  const latency = new FanoutLatency(2)
  latency.acked('v1')
  t.equal(latency.owed(), 2, 'two watchers owe the write')
  latency.delivered('v1')
  latency.delivered('v1')
  t.equal(latency.owed(), 0)
  const stats = latency.stats(1000)
  t.equal(stats.events, 2)
  t.equal(stats.eventsPerSecond, 2)
  t.equal(stats.missed, 0)
  t.ok(stats.latencyMs.max >= 0)
})

t.test('a delivery before the acknowledgement counts as 0 ms and is reported apart', async t => {
  const latency = new FanoutLatency(2)
  latency.delivered('v1')
  latency.acked('v1')
  latency.delivered('v1')
  const stats = latency.stats(1000)
  t.equal(stats.beforeAck, 1)
  t.equal(stats.events, 2)
  t.equal(stats.missed, 0)
})

t.test('warm-up writes are delivered but not measured; what never arrives is missed', async t => {
  const latency = new FanoutLatency(3)
  latency.measureFrom(performance.now() + 60_000)
  latency.acked('warm')
  latency.delivered('warm')
  latency.measureFrom(performance.now())
  latency.acked('measured')
  latency.delivered('measured')
  const stats = latency.stats(1000)
  t.equal(stats.events, 1, 'only the measured write\'s delivery counts')
  t.equal(stats.missed, 2, 'two watchers never delivered the measured write; the warm-up write owes nothing')
})

t.test('a delivery of a write that was never acknowledged is neither measured nor owed', async t => {
  const latency = new FanoutLatency(1)
  latency.delivered('failed-write')
  t.equal(latency.owed(), 0)
  t.equal(latency.stats(1000).events, 0)
})

t.test('a write issued in the warm-up is not measured even when its ack comes after it', async t => {
  const latency = new FanoutLatency(1)
  const issued = performance.now()
  latency.measureFrom(issued + 1)
  latency.acked('v', issued)
  latency.delivered('v')
  t.equal(latency.stats(1000).events, 0)
})
