import { parseArgs } from 'node:util'
import { quickRandomScenario, runSeed, randomScenario, type RunResult, type Scenario } from './run.js'
import { SCENARIOS } from './scenarios.js'
import { watchRandomScenario } from './watch.js'

/**
 * `npm run sim -- --seeds 10000` runs that many seeds (from --from, default 1) and prints every
 * failing one with the command that replays it; `npm run sim -- --seed S --verbose` replays one,
 * printing each fault, client answer and check. `--scenario NAME` picks a named scenario.
 */

const ALL_SCENARIOS: readonly Scenario[] = [randomScenario, quickRandomScenario, watchRandomScenario, ...SCENARIOS]

const USAGE = 'usage: npm run sim -- [--seeds N] [--from S] [--seed S] [--scenario NAME] [--verbose] [--check-determinism]'

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      seeds: { type: 'string' },
      from: { type: 'string' },
      seed: { type: 'string' },
      scenario: { type: 'string' },
      verbose: { type: 'boolean', default: false },
      'check-determinism': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  })
  if (values.help) {
    console.log(`${USAGE}\nscenarios: ${ALL_SCENARIOS.map((s) => `${s.name} (${s.about})`).join('; ')}`)
    return 0
  }
  const scenario = ALL_SCENARIOS.find((s) => s.name === (values.scenario ?? 'random'))
  if (scenario === undefined) {
    console.error(`no scenario ${values.scenario}; one of: ${ALL_SCENARIOS.map((s) => s.name).join(', ')}`)
    return 2
  }
  if (values.seed !== undefined) {
    const seed = positiveInteger(values.seed, '--seed')
    const result = await runSeed(seed, scenario, values.verbose ? { onEvent: (line) => console.log(line) } : {})
    report(result, scenario)
    if (values['check-determinism']) {
      const again = await runSeed(seed, scenario)
      console.log(again.traceHash === result.traceHash ? `replayed: same trace ${again.traceHash}` : `NOT DETERMINISTIC: trace ${result.traceHash} then ${again.traceHash}`)
      if (again.traceHash !== result.traceHash) return 1
    }
    return result.violations.length === 0 ? 0 : 1
  }
  const count = positiveInteger(values.seeds ?? '100', '--seeds')
  const from = positiveInteger(values.from ?? '1', '--from')
  const startedMs = Date.now()
  const failing: RunResult[] = []
  for (let seed = from; seed < from + count; seed++) {
    const result = await runSeed(seed, scenario)
    if (result.violations.length > 0) {
      failing.push(result)
      report(result, scenario)
    }
    const done = seed - from + 1
    if (done % 50 === 0 || done === count) {
      const seconds = (Date.now() - startedMs) / 1000
      process.stderr.write(`${done}/${count} seeds, ${failing.length} failing, ${(done / seconds).toFixed(2)} seeds/s\n`)
    }
  }
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

function positiveInteger(text: string, flag: string): number {
  const value = Number(text)
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`${flag} needs a non-negative integer, got ${text}`)
  return value
}

main().then((code) => { process.exitCode = code }, (error: unknown) => {
  console.error(error instanceof Error ? error.message : String(error))
  process.exitCode = 2
})
