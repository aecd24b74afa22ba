import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { MAX_SEEDS, parseSeedArgs, sweepSeeds, UsageError, wholeNumber } from '../../lib/sim/seed-args.js'

const options = { defaultSeeds: 20, scenarios: ['random', 'slow-heal'], defaultScenario: 'random', flags: ['check-determinism'] }
const parse = (...argv: string[]) => parseSeedArgs(argv, options)

t.test('a sweep runs --seeds seeds from --from, by default the program\'s count from 1', async t => {
  t.same(parse().seeds, Array.from({ length: 20 }, (_, i) => i + 1))
  t.same(parse('--seeds', '3', '--from', '500').seeds, [500, 501, 502])
  t.same(parse('--seeds=2').seeds, [1, 2], '--name=value works too')
  t.equal(parse().single, false)
  t.equal(parse().scenario, 'random', 'the default scenario')
  t.same([parse().verbose, parse().help, parse().flags['check-determinism']], [false, false, false])
})

t.test('--seed replays one seed, with the program\'s own flags', async t => {
  const args = parse('--seed', '83', '--verbose', '--check-determinism', '--scenario', 'slow-heal')
  t.same(args.seeds, [83])
  t.equal(args.single, true)
  t.equal(args.scenario, 'slow-heal')
  t.equal(args.verbose, true)
  t.equal(args.flags['check-determinism'], true)
  t.same(parse('--seed', '0').seeds, [0], 'seed 0 is a seed')
})

t.test('--help is reported, whatever else is given', async t => {
  t.equal(parse('--help').help, true)
  t.equal(parse('--seeds', '5', '--help').help, true)
})

t.test('numbers that are not whole decimal numbers in range are refused, naming the flag and the text', async t => {
  for (const [flag, text] of [['--seeds', 'ten'], ['--seeds', '-1'], ['--seeds', '1.5'], ['--seeds', ''], ['--seeds', '1e3'], ['--seeds', '0x10'], ['--seeds', ' 7'],
    ['--seeds', '0'], ['--seeds', String(MAX_SEEDS + 1)], ['--from', 'x'], ['--from', '-3'], ['--seed', '2.0'], ['--seed', '99999999999999999999']] as const) {
    let error: unknown
    // --flag=text: node:util refuses a separate value that starts with a dash itself (below).
    try { parse(`${flag}=${text}`) } catch (caught) { error = caught }
    t.type(error, UsageError, `${flag} ${JSON.stringify(text)} is refused`)
    const message = error instanceof Error ? error.message : ''
    t.ok(message.startsWith(`${flag} needs a whole number from `) && message.endsWith(`, got ${JSON.stringify(text)}`), message)
  }
  t.equal(wholeNumber('007', '--seed', 0), 7, 'leading zeros are still decimal')
})

t.test('a missing value, an unknown option, a stray argument or an unknown scenario is a usage error', async t => {
  t.throws(() => parse('--seeds'), UsageError, '--seeds without its number')
  t.throws(() => parse('--seed', '--verbose'), UsageError, '--seed followed by another option')
  t.throws(() => parse('--seeds', '-1'), UsageError, 'a negative number as a separate argument')
  t.throws(() => parse('--sedes', '10'), UsageError, 'a misspelt option')
  t.throws(() => parse('10'), UsageError, 'a bare number')
  t.throws(() => parse('--verbose=yes'), UsageError, 'a value for a flag')
  t.throws(() => parse('--scenario', 'nope'), { message: 'no scenario nope; one of: random, slow-heal' })
  t.throws(() => parse('--seed', '3', '--seeds', '10'), { message: /either --seed or --seeds\/--from/ })
  t.throws(() => parseSeedArgs(['--check-determinism'], { ...options, flags: [] }), UsageError, 'another program\'s flag')
})

t.test('a sweep reports progress after each seed and returns the failing seeds in order', async t => {
  const progress: Array<[number, number]> = []
  const failing = await sweepSeeds([4, 5, 6, 7], async seed => seed % 2 === 0, (done, failed) => progress.push([done, failed]))
  t.same(failing, [5, 7])
  t.same(progress, [[1, 0], [2, 1], [3, 1], [4, 2]])
})

const root = join(dirname(fileURLToPath(import.meta.url)), '../..')

async function runCli(script: string, args: string[]): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, ['--import=tsx', join(root, script), ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
  const [code] = await once(child, 'exit') as [number | null]
  clearTimeout(timer)
  return { code, stderr }
}

t.test('both simulator programs exit 2 on a bad argument, with one line naming it and their usage', async t => {
  const sim = await runCli('lib/sim/cli.ts', ['--seeds', 'lots'])
  t.equal(sim.code, 2)
  t.match(sim.stderr, /^--seeds needs a whole number from 1 to \d+, got "lots"\nusage: npm run sim -- /)
  const lin = await runCli('lib/sim/linearizable-cli.ts', ['--from'])
  t.equal(lin.code, 2)
  t.match(lin.stderr, /--from.*argument missing.*\nusage: npm run sim:lin -- /)
})
