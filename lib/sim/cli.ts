import { quickRandomScenario, runSeed, randomScenario, type RunResult, type Scenario } from './run.js'
import { SCENARIOS } from './scenarios.js'
import { parseSeedArgs, runProgram, sweepSeeds } from './seed-args.js'
import { watchRandomScenario } from './watch.js'

/**
 * `npm run sim -- --seeds 10000` runs that many seeds (from --from, default 1) and prints every
 * failing one with the command that replays it; `npm run sim -- --seed S --verbose` replays one,
 * printing each fault, client answer and check. `--scenario NAME` picks a named scenario.
 */

const ALL_SCENARIOS: readonly Scenario[] = [randomScenario, quickRandomScenario, watchRandomScenario, ...SCENARIOS]

const USAGE = 'usage: npm run sim -- [--seeds N] [--from S] [--seed S] [--scenario NAME] [--verbose] [--check-determinism]'

/** Progress goes to stderr after this many seeds of a sweep. */
const PROGRESS_EVERY_SEEDS = 50

async function main(): Promise<number> {
  const args = parseSeedArgs(process.argv.slice(2), {
    defaultSeeds: 100,
    scenarios: ALL_SCENARIOS.map((s) => s.name),
    defaultScenario: randomScenario.name,
    flags: ['check-determinism'],
  })
  if (args.help) {
    console.log(`${USAGE}\nscenarios: ${ALL_SCENARIOS.map((s) => `${s.name} (${s.about})`).join('; ')}`)
    return 0
  }
  const scenario = ALL_SCENARIOS.find((s) => s.name === args.scenario)!
  if (args.single) {
    const seed = args.seeds[0]!
    const result = await runSeed(seed, scenario, args.verbose ? { onEvent: (line) => console.log(line) } : {})
    report(result, scenario)
    if (args.flags['check-determinism']) {
      const again = await runSeed(seed, scenario)
      console.log(again.traceHash === result.traceHash ? `replayed: same trace ${again.traceHash}` : `NOT DETERMINISTIC: trace ${result.traceHash} then ${again.traceHash}`)
      if (again.traceHash !== result.traceHash) return 1
    }
    return result.violations.length === 0 ? 0 : 1
  }
  const count = args.seeds.length
  const startedMs = Date.now()
  const failing = await sweepSeeds(args.seeds, async (seed) => {
    const result = await runSeed(seed, scenario)
    if (result.violations.length > 0) report(result, scenario)
    return result.violations.length === 0
  }, (done, failed) => {
    if (done % PROGRESS_EVERY_SEEDS !== 0 && done !== count) return
    const seconds = (Date.now() - startedMs) / 1000
    process.stderr.write(`${done}/${count} seeds, ${failed} failing, ${(done / seconds).toFixed(2)} seeds/s\n`)
  })
  console.log(`${count - failing.length} passed, ${failing.length} failed`)
  return failing.length === 0 ? 0 : 1
}

function report(result: RunResult, scenario: Scenario): void {
  const replay = `npm run sim -- --seed ${result.seed}${scenario.name === 'random' ? '' : ` --scenario ${scenario.name}`} --verbose`
  const summary = `seed ${result.seed} (${scenario.name}): ${result.nodeCount} nodes, ${result.simulatedMs} simulated ms, ${result.ops} ops (${result.acknowledged} writes acknowledged), trace ${result.traceHash}`
  if (result.violations.length === 0) {
    console.log(`ok ${summary}`)
    return
  }
  console.log(`FAIL ${summary}`)
  for (const violation of result.violations) console.log(`  ${violation.oracle}: ${violation.detail}`)
  console.log(`  replay: ${replay}`)
}

runProgram(USAGE, main)
