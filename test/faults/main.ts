/**
 * `npm run faults`: the fault suite on real daemons (issue 11). Each scenario starts its own
 * cluster of hearsayd processes in network namespaces, runs a bounded client load with every
 * outcome recorded, injects its fault (iptables partitions and loss, kill -9, a skewed clock),
 * heals, reads every node and checks the history. Prints a table per scenario; exits 1 when an
 * oracle failed, 0 when all held or when the machine cannot run it (not root, no netns, no iptables).
 *
 *   npm run faults [-- --only skew,gc1 --daemon /path/to/hearsayd.js --json results.json --out DIR]
 */
import { existsSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { daemonBin as defaultDaemonBin } from '../helpers/daemon.js'
import { deleteNamespaces, namespacesWithPrefix } from '../helpers/netns.js'
import { faultsUnavailableReason } from './cluster.js'
import { renderResult, renderSummary } from './report.js'
import { runScenario, scenarios, type ScenarioResult } from './scenarios.js'

/** Namespaces are named `hf<pid>-<scenario>-1…N` and `…-sw`, so a run finds (and removes) exactly its own. */
const NAMESPACE_PREFIX = `hf${process.pid}-`
/** The suite's private subnets are 10.214.X.0/24, one X per scenario: no other test uses 10.214. */
const SUBNET_BASE = '10.214'

interface Args { only?: string[]; daemon?: string; json?: string; out?: string }

function parseArgs(argv: readonly string[]): Args {
  const args: Args = {}
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]
    const value = argv[i + 1]
    if (value === undefined) throw new Error(`${flag} needs a value`)
    if (flag === '--only') args.only = value.split(',').map(s => s.trim()).filter(s => s !== '')
    else if (flag === '--daemon') args.daemon = resolve(value)
    else if (flag === '--json') args.json = resolve(value)
    else if (flag === '--out') args.out = resolve(value)
    else throw new Error(`unknown argument ${flag} (known: --only NAMES, --daemon FILE, --json FILE, --out DIR)`)
    i++
  }
  return args
}

/**
 * Namespaces of earlier runs whose runner died without its exit handler (SIGKILL): `hf<pid>-…`
 * and the test's `hft<pid>-…` whose pid is gone.
 */
async function removeStaleNamespaces(): Promise<void> {
  const pids = new Set<string>()
  for (const name of await namespacesWithPrefix('hf')) {
    const pid = /^hft?(\d+)-/.exec(name)?.[1]
    if (pid !== undefined && !processExists(Number(pid))) pids.add(name.slice(0, name.indexOf('-') + 1))
  }
  for (const prefix of pids) {
    process.stdout.write(`faults: removing namespaces ${prefix}* left by a runner that no longer exists\n`)
    await deleteNamespaces(prefix)
  }
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2))
  const unavailable = faultsUnavailableReason(NAMESPACE_PREFIX)
  if (unavailable !== undefined) {
    process.stdout.write(`faults: skipped: ${unavailable}\n`)
    process.stdout.write(`faults: 0 passed, 0 failed, ${scenarios.length} skipped\n`)
    return 0
  }
  await removeStaleNamespaces()
  const daemonBin = args.daemon ?? defaultDaemonBin
  if (!existsSync(daemonBin)) throw new Error(`${daemonBin} is missing: run npm run build first (npm run faults does)`)
  const selected = args.only === undefined ? scenarios : scenarios.filter(s => args.only!.includes(s.name))
  if (args.only !== undefined && selected.length !== args.only.length) {
    throw new Error(`unknown scenario in --only ${args.only.join(',')}; known: ${scenarios.map(s => s.name).join(', ')}`)
  }
  const runDir = args.out ?? join(tmpdir(), `hearsay-faults-${new Date().toISOString().replace(/[:.]/g, '-')}`)
  process.stdout.write(`faults: ${selected.length} scenarios against ${daemonBin}; logs and configs in ${runDir}\n`)
  const results: ScenarioResult[] = []
  for (const scenario of selected) {
    process.stdout.write(`\n== ${scenario.name}: ${scenario.title}\n`)
    const result = await runScenario(scenario, {
      daemonBin, runDir, namespacePrefix: NAMESPACE_PREFIX, subnetBase: SUBNET_BASE,
      log: line => process.stdout.write(`   ${new Date().toISOString().slice(11, 23)} ${line}\n`),
    })
    results.push(result)
    process.stdout.write(renderResult(result))
  }
  process.stdout.write(`\n${renderSummary(results)}`)
  if (args.json !== undefined) {
    writeFileSync(args.json, JSON.stringify({ date: new Date().toISOString(), daemonBin, results }, null, 2))
    process.stdout.write(`results written to ${args.json}\n`)
  }
  const failed = results.filter(r => r.oracles.some(o => !o.pass))
  process.stdout.write(failed.length === 0
    ? `faults: all ${results.length} scenarios held\n`
    : `faults: ${failed.length} of ${results.length} scenarios failed an oracle: ${failed.map(r => r.name).join(', ')}\n`)
  // The plain closing line CI reads.
  process.stdout.write(`faults: ${results.length - failed.length} passed, ${failed.length} failed\n`)
  return failed.length === 0 ? 0 : 1
}

// Ctrl-C or a kill: exit through process.exit so cluster.ts's exit handler removes every daemon and namespace.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => process.exit(130))

main().then(code => process.exit(code), (error: unknown) => {
  process.stderr.write(`faults: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`)
  process.exit(2)
})
