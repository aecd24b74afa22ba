import t from 'tap'
import { FakeClock } from '../../lib/runtime/clock.js'
import { RequestSampler, bucketOf, bucketUpperMs } from '../../lib/dashboard/request-sampler.js'

t.test('a window becomes one sample: requests per second and the p99 bucket bound', async t => {
  const clock = new FakeClock(1_000)
  const sampler = new RequestSampler({ clock, intervalMs: 5000, maxSamples: 3 })
  sampler.start()
  for (let i = 0; i < 99; i++) sampler.observe(1)
  sampler.observe(200)
  clock.advance(5000)
  const [sample] = sampler.samples()
  t.equal(sample!.opsPerSecond, 20, '100 requests in 5 s')
  t.ok(sample!.p99Ms! >= 1 && sample!.p99Ms! < 1.2, `p99 is the 1 ms bucket (${sample!.p99Ms})`)
  clock.advance(5000)
  t.equal(sampler.samples()[1]!.p99Ms, null, 'a window without requests has no p99')
  t.equal(sampler.samples()[1]!.opsPerSecond, 0)
  clock.advance(15_000)
  t.equal(sampler.samples().length, 3, 'the ring keeps maxSamples')
  sampler.stop()
  clock.advance(50_000)
  t.equal(sampler.samples().length, 3, 'stopped: no more windows')
})

t.test('latency buckets are at most 19 % wide and clamp at both ends', async t => {
  for (const ms of [0.02, 0.5, 3, 47, 999, 30_000]) {
    const upper = bucketUpperMs(bucketOf(ms))
    t.ok(upper >= ms && upper < ms * 1.19 + 1e-9, `${ms} ms → bucket bound ${upper}`)
  }
  t.equal(bucketOf(0), 0)
  t.equal(bucketOf(-1), 0)
  t.equal(bucketOf(Number.NaN), 0)
  t.equal(bucketOf(1e12), 100)
})
