/**
 * Start-up time of `hearsayd`: from exec to the first `/health` 200, empty data directory, one
 * run after another; `node -e 0` (exec to exit) is the floor no daemon can beat.
 * `npm run bench:startup` (env STARTUP_RUNS, default 15; STARTUP_BIN another daemon entry point,
 * or several separated by commas, e.g. a copy of the previous build's dist/bin/hearsayd.js, run
 * interleaved so both see the same load). Numbers go to docs/benchmarks.md.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { freeLoopbackPorts } from './compare/ports.js'
import { healthOk, processCpuMs } from './daemon-probe.js'

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
/** STARTUP_BIN measures other builds of the daemon (e.g. the one before a change) under the same conditions. */
const daemonBins = (process.env['STARTUP_BIN'] ?? 'dist/bin/hearsayd.js').split(',').map(bin => resolve(repoRoot, bin.trim()))
const DEFAULT_RUNS = 15
const MAX_RUNS = 1000
/** Polling period of /health: small against the 300 ms target, large enough not to slow the daemon down. */
const POLL_MS = 2
/** A start that takes this long is broken, not slow. */
const GIVE_UP_MS = 30_000




interface Sample {
  readonly wallMs: number
  readonly cpuMs: number
}

/** From spawn to the first /health 200: wall time, and the CPU the daemon had used by then. */
async function daemonStart(daemonBin: string): Promise<Sample> {
  const [apiPort, peerPort] = await freeLoopbackPorts(2) as [number, number]
  const dir = mkdtempSync(join(tmpdir(), 'hearsay-startup-'))
  const configFile = join(dir, 'hearsay.json')
  writeFileSync(configFile, JSON.stringify({
    node: { name: 'startup', dataDir: join(dir, 'data') },
    api: { host: '127.0.0.1', port: apiPort },
    peer: { host: '127.0.0.1', port: peerPort },
    log: { level: 'warn' },
  }))
  const startedAt = performance.now()
  const child = spawn(process.execPath, [daemonBin, '--config', configFile], { stdio: ['ignore', 'ignore', 'inherit'] })
  const exited = once(child, 'exit')
  try {
    for (;;) {
      if (await healthOk(apiPort)) return { wallMs: performance.now() - startedAt, cpuMs: processCpuMs(child.pid as number) }
      if (child.exitCode !== null) throw new Error(`hearsayd exited with code ${child.exitCode} before answering /health`)
      if (performance.now() - startedAt > GIVE_UP_MS) throw new Error(`hearsayd did not answer /health within ${GIVE_UP_MS} ms`)
      await new Promise(wake => setTimeout(wake, POLL_MS))
    }
  } finally {
    if (child.exitCode === null) child.kill('SIGTERM')
    await exited
    rmSync(dir, { recursive: true, force: true })
  }
}

/** `node -e 0`, reporting its own CPU use on the way out. */
async function nodeFloor(): Promise<Sample> {
  const startedAt = performance.now()
  const child = spawn(process.execPath, ['-e', 'process.on("exit", () => { const u = process.cpuUsage(); process.stdout.write(String((u.user + u.system) / 1000)) })'], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString() })
  await once(child, 'exit')
  return { wallMs: performance.now() - startedAt, cpuMs: Number(out) }
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(p / 100 * sorted.length) - 1)] as number
}

function summary(values: readonly number[]): string {
  const sorted = [...values].sort((a, b) => a - b)
  const cell = (ms: number): string => ms.toFixed(0).padStart(6)
  return `${cell(percentile(sorted, 50))} ${cell(percentile(sorted, 90))} ${cell(sorted[0] as number)} ${cell(sorted[sorted.length - 1] as number)}`
}

function describe(label: string, samples: readonly Sample[]): string {
  return `${label.padEnd(20)} wall ${summary(samples.map(sample => sample.wallMs))}   cpu ${summary(samples.map(sample => sample.cpuMs))}`
}

const runsText = process.env['STARTUP_RUNS'] ?? String(DEFAULT_RUNS)
const runs = /^[0-9]+$/.test(runsText) ? Number(runsText) : NaN
if (!(runs >= 1 && runs <= MAX_RUNS)) {
  process.stderr.write(`STARTUP_RUNS must be a whole number from 1 to ${MAX_RUNS}, got ${JSON.stringify(runsText)}\n`)
  process.exit(2)
}
const floor: Sample[] = []
const daemons: Sample[][] = daemonBins.map(() => [])
// Interleaved, so a burst of load from other jobs on the machine hits every series alike.
for (let run = 0; run < runs; run++) {
  floor.push(await nodeFloor())
  for (const [index, bin] of daemonBins.entries()) daemons[index]!.push(await daemonStart(bin))
}
process.stdout.write(`${runs} runs, ${new Date().toISOString()}, load average ${(await import('node:os')).loadavg().map(load => load.toFixed(1)).join(' ')}\n`)
process.stdout.write(`${''.padEnd(20)} ms:  median    p90    min    max         median    p90    min    max\n`)
process.stdout.write(describe('node -e 0 (floor)', floor) + '\n')
for (const [index, bin] of daemonBins.entries()) {
  process.stdout.write(describe('hearsayd to /health', daemons[index]!) + `  (${bin.replace(repoRoot + '/', '')})\n`)
}
