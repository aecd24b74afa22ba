import t from 'tap'
import { runSeed } from '../../lib/sim/run.js'
import { watchRandomScenario } from '../../lib/sim/watch.js'

/**
 * Watches in the whole-cluster simulator (lib/sim/watch.ts): random faults and load while one
 * client watches every key and resumes as client.watch does; once the replicas agree, every key's
 * settled version must have reached it. Seed 3 froze a node before the fix (a feed polling a
 * replica it had just avoided in an endless microtask chain); `npm run sim -- --scenario
 * watch-random --seeds N` runs more.
 */

const SEEDS = (process.env['HEARSAY_SIM_WATCH_SEEDS'] ?? '1,3').split(',').map(Number)

for (const seed of SEEDS) {
  t.test(`watch-random seed ${seed}: the watch delivers every key's settled version through faults`, async t => {
    const result = await runSeed(seed, watchRandomScenario)
    t.ok(result.acknowledged > 50, `writes were acknowledged (${result.acknowledged})`)
    t.same(result.violations, [], `no violation (replay: npm run sim -- --seed ${seed} --scenario watch-random --verbose)`)
  })
}
