import t from 'tap'
import perfHooks from 'node:perf_hooks'
import { createMetrics, EVENT_LOOP_SAMPLE_INTERVAL_MS } from '../../lib/metrics/metrics.js'

t.test('the event-loop delay histogram samples every EVENT_LOOP_SAMPLE_INTERVAL_MS, not 100 times a second, and only once scraped', async t => {
  // prom-client looks monitorEventLoopDelay up on the perf_hooks module when it registers its
  // default metrics, so a spy put there sees the resolution it asks for.
  const original = perfHooks.monitorEventLoopDelay
  const resolutions: Array<number | undefined> = []
  perfHooks.monitorEventLoopDelay = (options) => {
    resolutions.push(options?.resolution)
    return original(options)
  }
  t.teardown(() => { perfHooks.monitorEventLoopDelay = original })
  const metrics = createMetrics()
  t.same(resolutions, [], 'no monitor before the first scrape')
  const text = await metrics.scrape()
  t.match(text, /hearsay_nodejs_eventloop_lag_p99_seconds/, 'the lag metrics are there')
  t.same(resolutions, [EVENT_LOOP_SAMPLE_INTERVAL_MS], 'one monitor, at the coarser resolution')
  t.ok(EVENT_LOOP_SAMPLE_INTERVAL_MS >= 100, 'ten samples a second at most')
  await metrics.scrape()
  t.equal(resolutions.length, 1, 'a second scrape starts no other monitor')
})
