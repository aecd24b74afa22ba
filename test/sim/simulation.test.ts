import t from 'tap'
import { quickRandomScenario, runSeed, type RunResult } from '../../lib/sim/run.js'
import { SCENARIOS } from '../../lib/sim/scenarios.js'

/**
 * The whole-cluster simulator (lib/sim/): real node modules over the memory network, one fake
 * time base, seeded faults and load, oracles after the heal. Every failure prints the command
 * that replays it; `npm run sim -- --seeds 10000` runs many more.
 */

/** Seeds of the random scenario run here; HEARSAY_SIM_SEEDS runs more (or fewer). */
const SEED_COUNT = Number(process.env['HEARSAY_SIM_SEEDS'] ?? 100)

/**
 * Seeds that find bugs not fixed yet, with what they find. They run as todo: still reported,
 * not failing the suite; delete the entry once the seed passes.
 */
const KNOWN_FAILING: ReadonlyMap<number, string> = new Map([
])

function explain(result: RunResult): string {
  const replay = `npm run sim -- --seed ${result.seed}${result.scenario === 'random' ? '' : ` --scenario ${result.scenario}`} --verbose`
  return `${result.violations.map((v) => `${v.oracle}: ${v.detail}`).join('\n')}\nreplay: ${replay}`
}

t.test('a run is a pure function of its seed', async t => {
  const first = await runSeed(7, quickRandomScenario)
  const second = await runSeed(7, quickRandomScenario)
  t.equal(second.traceHash, first.traceHash, 'the same trace hash twice')
  t.ok(first.ops > 100, `the run did work (${first.ops} client operations)`)
  const other = await runSeed(8, quickRandomScenario)
  t.not(other.traceHash, first.traceHash, 'another seed, another run')
})

t.test(`${SEED_COUNT} random seeds (random-quick): faults, load, heal, oracles`, async t => {
  const startedMs = Date.now()
  for (let seed = 1; seed <= SEED_COUNT; seed++) {
    const result = await runSeed(seed, quickRandomScenario)
    const known = KNOWN_FAILING.get(seed)
    if (known !== undefined) {
      t.ok(true, `seed ${seed}`, { todo: result.violations.length > 0 ? `known bug: ${known}` : `passes now: remove it from KNOWN_FAILING` })
      continue
    }
    t.same(result.violations, [], `seed ${seed}`, result.violations.length > 0 ? { diagnostic: true, replay: explain(result) } : {})
  }
  t.comment(`${SEED_COUNT} seeds in ${((Date.now() - startedMs) / 1000).toFixed(1)} s`)
})

for (const scenario of SCENARIOS) {
  t.test(`issue 11 scenario ${scenario.name}: ${scenario.about}`, async t => {
    const result = await runSeed(1, scenario)
    t.same(result.violations, [], 'seed 1', result.violations.length > 0 ? { diagnostic: true, replay: explain(result) } : {})
  })
}
