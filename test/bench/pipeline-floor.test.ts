import t from 'tap'
import { measurePipeline } from '../../bench/pipeline-floor.js'

t.test('the bare pipeline relays every request through real processes and measures it', async t => {
  for (const sync of [true, false]) {
    const result = await measurePipeline({ count: 40, warmup: 10, sync, remotes: 2 })
    t.ok(Number.isFinite(result.p50Ms) && result.p50Ms > 0, `journal syncs ${sync ? 'on' : 'off'}: p50 is a positive time (${result.p50Ms} ms)`)
    t.ok(result.p50Ms <= result.p90Ms && result.p90Ms <= result.p99Ms, 'percentiles are ordered')
    t.ok(result.opsPerSec > 0, 'operations completed')
    t.ok(Number.isFinite(result.cpuUs) && result.cpuUs >= 0, 'CPU per operation was read from the processes')
  }
})
