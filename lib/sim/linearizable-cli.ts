import { parseArgs } from 'node:util'
import { describeOperation } from './linearizability.js'
import { runLinearizableSeed, SCENARIOS, type MembershipScenario } from './linearizable.js'

/**
 * `npm run sim:lin -- --scenario join-two-at-once --seeds 100` runs the linearizability workload
 * (lib/sim/linearizable.ts) over that many seeds (from --from, default 1) and prints every
 * failing one; `--seed S --verbose` replays one with its events and the last operations. The
 * offline sweeps behind docs/consistency.md's numbers; test/sim/linearizable.test.ts keeps a few.
 */

const USAGE = 'usage: npm run sim:lin -- --scenario NAME [--seeds N] [--from S] [--seed S] [--verbose]'

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      scenario: { type: 'string' },
      seeds: { type: 'string' },
      from: { type: 'string' },
      seed: { type: 'string' },
      verbose: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  })
  const names = Object.keys(SCENARIOS) as MembershipScenario[]
  if (values.help) {
    console.log(`${USAGE}\nscenarios: ${names.map((name) => `${name} (${SCENARIOS[name].about})`).join('; ')}`)
    return 0
  }
  const scenario = (values.scenario ?? 'join-leave') as MembershipScenario
  if (!names.includes(scenario)) {
    console.error(`no scenario ${values.scenario}; one of: ${names.join(', ')}`)
    return 2
  }
  const single = values.seed !== undefined
  const from = single ? whole(values.seed!, '--seed') : whole(values.from ?? '1', '--from')
  const count = single ? 1 : whole(values.seeds ?? '20', '--seeds')
  const failing: number[] = []
  for (let seed = from; seed < from + count; seed++) {
    const events: string[] = []
    const run = await runLinearizableSeed(seed, { scenario, onEvent: (line) => events.push(line) })
    const summary = `${scenario} seed ${seed}: ${run.ops.length} operations ${JSON.stringify(run.outcomes)}`
    if (run.problems.length === 0) {
      if (single || values.verbose) console.log(`ok ${summary}`)
      continue
    }
    failing.push(seed)
    console.log(`FAIL ${summary}\n  ${run.problems.join('\n  ')}\n  replay: npm run sim:lin -- --scenario ${scenario} --seed ${seed} --verbose`)
    if (values.verbose) {
      console.log(events.join('\n'))
      console.log(run.ops.slice(-40).map((op) => describeOperation(op)).join('\n'))
    }
  }
  console.log(`${count - failing.length} passed, ${failing.length} failed${failing.length > 0 ? ` (seeds ${failing.join(', ')})` : ''}`)
  return failing.length === 0 ? 0 : 1
}

function whole(text: string, flag: string): number {
  const value = Number(text)
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`${flag} needs a non-negative integer, got ${text}`)
  return value
}

main().then((code) => { process.exitCode = code }, (error: unknown) => {
  console.error(error instanceof Error ? error.message : String(error))
  process.exitCode = 2
})
