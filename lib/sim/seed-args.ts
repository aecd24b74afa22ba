import { parseArgs } from 'node:util'

/**
 * The command line both simulator programs share (`npm run sim`, `npm run sim:lin`): which seeds
 * to run (`--seeds N --from S`, or one `--seed S`), `--scenario NAME`, `--verbose`, `--help`,
 * plus any boolean flags of the program's own; and the loop over the seeds with the exit code.
 */

/** A command line that cannot be run; the program prints it with its usage and exits 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError'
}

export interface SeedArgs {
  /** The seeds to run, ascending: --from … --from + --seeds − 1, or just --seed. */
  readonly seeds: readonly number[]
  /** One seed was named with --seed (a replay), rather than a range. */
  readonly single: boolean
  /** One of SeedArgsOptions.scenarios (its default when not given). */
  readonly scenario: string
  readonly verbose: boolean
  readonly help: boolean
  /** The program's own boolean flags (SeedArgsOptions.flags), each false unless given. */
  readonly flags: Readonly<Record<string, boolean>>
}

export interface SeedArgsOptions {
  /** Seeds run when neither --seeds nor --seed is given. */
  readonly defaultSeeds: number
  /** The names --scenario accepts. */
  readonly scenarios: readonly string[]
  /** The scenario run without --scenario. */
  readonly defaultScenario: string
  /** Further boolean flags this program takes, without the leading "--". */
  readonly flags?: readonly string[]
}

/** Largest --seeds: a sweep of a million seeds takes days already. */
export const MAX_SEEDS = 1_000_000

/** Parses argv (without the node and script paths); throws UsageError naming the bad argument. */
export function parseSeedArgs(argv: readonly string[], options: SeedArgsOptions): SeedArgs {
  const extra = options.flags ?? []
  let values: Record<string, string | boolean | undefined>
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        seeds: { type: 'string' },
        from: { type: 'string' },
        seed: { type: 'string' },
        scenario: { type: 'string' },
        verbose: { type: 'boolean' },
        help: { type: 'boolean' },
        ...Object.fromEntries(extra.map(flag => [flag, { type: 'boolean' as const }])),
      },
    }))
  } catch (error) {
    // node:util names the option (unknown, missing its value, or a stray argument).
    throw new UsageError(error instanceof Error ? error.message : String(error))
  }
  const text = (name: string): string | undefined => values[name] as string | undefined
  const flags = Object.fromEntries(extra.map(flag => [flag, values[flag] === true]))
  const scenario = text('scenario') ?? options.defaultScenario
  if (!options.scenarios.includes(scenario)) throw new UsageError(`no scenario ${scenario}; one of: ${options.scenarios.join(', ')}`)
  const common = { scenario, verbose: values.verbose === true, help: values.help === true, flags }
  const seed = text('seed')
  if (seed !== undefined) {
    if (text('seeds') !== undefined || text('from') !== undefined) throw new UsageError('--seed replays one seed; give either --seed or --seeds/--from, not both')
    return { ...common, seeds: [wholeNumber(seed, '--seed', 0)], single: true }
  }
  const count = wholeNumber(text('seeds') ?? String(options.defaultSeeds), '--seeds', 1, MAX_SEEDS)
  const from = wholeNumber(text('from') ?? '1', '--from', 0)
  if (from + count - 1 > Number.MAX_SAFE_INTEGER) throw new UsageError(`--from ${from} with --seeds ${count} runs past the largest seed`)
  return { ...common, seeds: Array.from({ length: count }, (_, i) => from + i), single: false }
}

/** A whole number in decimal digits within [min, max]; anything else is a UsageError naming the flag. */
export function wholeNumber(text: string, flag: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const value = /^\d+$/.test(text) ? Number(text) : NaN
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new UsageError(`${flag} needs a whole number from ${min} to ${max}, got ${JSON.stringify(text)}`)
  }
  return value
}

/**
 * Runs `runOne` for each seed in order and returns the seeds that failed (runOne resolved
 * false); `progress` hears after each seed how many are done and how many failed.
 */
export async function sweepSeeds(seeds: readonly number[], runOne: (seed: number) => Promise<boolean>,
  progress?: (done: number, failing: number) => void): Promise<number[]> {
  const failing: number[] = []
  for (const [index, seed] of seeds.entries()) {
    if (!(await runOne(seed))) failing.push(seed)
    progress?.(index + 1, failing.length)
  }
  return failing
}

/**
 * Runs a simulator program's main and sets the exit code: main's own, or 2 with one line on
 * stderr for a UsageError (followed by the usage) or any other error.
 */
export function runProgram(usage: string, main: () => Promise<number>): void {
  main().then((code) => { process.exitCode = code }, (error: unknown) => {
    if (error instanceof UsageError) console.error(`${error.message}\n${usage}`)
    else console.error(error instanceof Error ? error.message : String(error))
    process.exitCode = 2
  })
}
