import { describeOperation } from './linearizability.js'
import { runLinearizableSeed, SCENARIOS, type MembershipScenario } from './linearizable.js'
import { parseSeedArgs, runProgram, sweepSeeds } from './seed-args.js'

/**
 * `npm run sim:lin -- --scenario join-two-at-once --seeds 100` runs the linearizability workload
 * (lib/sim/linearizable.ts) over that many seeds (from --from, default 1) and prints every
 * failing one; `--seed S --verbose` replays one with its events and the last operations. The
 * offline sweeps behind docs/consistency.md's numbers; test/sim/linearizable.test.ts keeps a few.
 */

const USAGE = 'usage: npm run sim:lin -- --scenario NAME [--seeds N] [--from S] [--seed S] [--verbose]'

/** Operations printed before a failing seed's verdict with --verbose. */
const LAST_OPERATIONS_SHOWN = 40

async function main(): Promise<number> {
  const names = Object.keys(SCENARIOS) as MembershipScenario[]
  const args = parseSeedArgs(process.argv.slice(2), { defaultSeeds: 20, scenarios: names, defaultScenario: 'join-leave' })
  if (args.help) {
    console.log(`${USAGE}\nscenarios: ${names.map((name) => `${name} (${SCENARIOS[name].about})`).join('; ')}`)
    return 0
  }
  const scenario = args.scenario as MembershipScenario
  const failing = await sweepSeeds(args.seeds, async (seed) => {
    const events: string[] = []
    const run = await runLinearizableSeed(seed, { scenario, onEvent: (line) => events.push(line) })
    const summary = `${scenario} seed ${seed}: ${run.ops.length} operations ${JSON.stringify(run.outcomes)}`
    if (run.problems.length === 0) {
      if (args.single || args.verbose) console.log(`ok ${summary}`)
      return true
    }
    console.log(`FAIL ${summary}\n  ${run.problems.join('\n  ')}\n  replay: npm run sim:lin -- --scenario ${scenario} --seed ${seed} --verbose`)
    if (args.verbose) {
      console.log(events.join('\n'))
      console.log(run.ops.slice(-LAST_OPERATIONS_SHOWN).map((op) => describeOperation(op)).join('\n'))
    }
    return false
  })
  const count = args.seeds.length
  console.log(`${count - failing.length} passed, ${failing.length} failed${failing.length > 0 ? ` (seeds ${failing.join(', ')})` : ''}`)
  return failing.length === 0 ? 0 : 1
}

runProgram(USAGE, main)
