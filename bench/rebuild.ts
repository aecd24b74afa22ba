/**
 * The Merkle tree rebuild at start with many keys, and the daemon's memory after it: prepares one
 * data dir per build with that build's own store (1M keys of 100 B by default, as
 * bench/antientropy.ts does), then starts each build's `hearsayd` on its data dir again and again,
 * the builds alternated so a burst of load from elsewhere hits them alike. Reports the rebuild time
 * the daemon logs ("rebuilt the Merkle trees from the store"), the CPU and wall time to /health
 * 200, and resident memory split into anonymous (heap, trees) and file-backed (LMDB's mapped pages).
 *
 * `npm run bench:rebuild`; env REBUILD_DISTS (comma-separated dist/ directories of the builds to
 * compare, default dist; e.g. a copy of the previous commit's dist with a node_modules link beside
 * its lib/), REBUILD_KEYS (default 1,000,000), REBUILD_RUNS (default 3). Not a test.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { loadavg, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { freeLoopbackPorts } from './compare/ports.js'
import { healthOk, processCpuMs } from './daemon-probe.js'

const KEYS = wholeNumber('REBUILD_KEYS', 1_000_000, 1, 100_000_000)
const RUNS = wholeNumber('REBUILD_RUNS', 3, 1, 100)
const DISTS = (process.env['REBUILD_DISTS'] ?? 'dist').split(',').map(dist => resolve(dist.trim()))
const VALUE_BYTES = 100
const PARTITIONS = 256
const WRITE_BATCH = 10_000
/** A start that takes this long is broken, not slow. */
const GIVE_UP_MS = 10 * 60_000
const POLL_MS = 20

function wholeNumber(name: string, fallback: number, min: number, max: number): number {
  const text = process.env[name] ?? String(fallback)
  const value = /^[0-9]+$/.test(text) ? Number(text) : NaN
  if (!(value >= min && value <= max)) {
    process.stderr.write(`${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(text)}\n`)
    process.exit(2)
  }
  return value
}

/** The parts of a build's store this bench needs, loaded from that build's dist/lib. */
interface StoreModules {
  readonly KvStore: { open(options: Record<string, unknown>): Promise<{ applyMany(batch: unknown[]): Promise<unknown>; close(): Promise<void> }> }
  readonly loadRecordDigester: () => Promise<unknown>
  readonly segmentIndexOptions: (digester: unknown, partitions: number) => unknown
}

async function storeModules(dist: string): Promise<StoreModules> {
  const load = async (path: string): Promise<Record<string, unknown>> => await import(pathToFileURL(join(dist, 'lib', path)).href) as Record<string, unknown>
  const [store, digest, segments] = await Promise.all([load('store/kv-store.js'), load('merkle/digest.js'), load('antientropy/segments.js')])
  return { KvStore: store['KvStore'] as StoreModules['KvStore'], loadRecordDigester: digest['loadRecordDigester'] as StoreModules['loadRecordDigester'], segmentIndexOptions: segments['segmentIndexOptions'] as StoreModules['segmentIndexOptions'] }
}

/** KEYS records of VALUE_BYTES, one version each, written with the build's own store. */
async function prepare(dist: string, dataDir: string): Promise<void> {
  const { KvStore, loadRecordDigester, segmentIndexOptions } = await storeModules(dist)
  const segments = segmentIndexOptions(await loadRecordDigester(), PARTITIONS)
  const store = await KvStore.open({ dataDir, mapSizeBytes: 4 * 1024 ** 3, segments })
  const value = randomBytes(VALUE_BYTES)
  const baseHlc = Date.now() * 1000 - 10_000_000_000
  let batch: unknown[] = []
  for (let i = 0; i < KEYS; i++) {
    batch.push({ key: `bench/${String(i).padStart(10, '0')}`, record: { value, version: { hlc: baseHlc + i, node: '0123456789abcdef' } } })
    if (batch.length === WRITE_BATCH) {
      await store.applyMany(batch)
      batch = []
    }
  }
  await store.applyMany(batch)
  await store.close()
}



function rssMiB(pid: number, field: 'RssAnon' | 'RssFile'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  return Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN) / 1024
}

interface Start {
  readonly rebuildMs: number
  readonly healthWallMs: number
  readonly healthCpuMs: number
  readonly anonMiB: number
  readonly fileMiB: number
}

async function start(dist: string, dataDir: string, workDir: string): Promise<Start> {
  const [apiPort, peerPort] = await freeLoopbackPorts(2) as [number, number]
  const configFile = join(workDir, 'hearsay.json')
  writeFileSync(configFile, JSON.stringify({
    node: { name: 'rebuild', dataDir },
    partitions: PARTITIONS,
    antiEntropy: { enabled: false },
    api: { host: '127.0.0.1', port: apiPort },
    peer: { host: '127.0.0.1', port: peerPort },
    log: { level: 'info' },
  }))
  const startedAt = performance.now()
  const child = spawn(process.execPath, [join(dist, 'bin/hearsayd.js'), '--config', configFile], { stdio: ['ignore', 'pipe', 'inherit'] })
  const exited = once(child, 'exit')
  let output = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  try {
    for (;;) {
      if (await healthOk(apiPort)) break
      if (child.exitCode !== null) throw new Error(`hearsayd exited with code ${child.exitCode} before answering /health:\n${output}`)
      if (performance.now() - startedAt > GIVE_UP_MS) throw new Error(`hearsayd did not answer /health within ${GIVE_UP_MS} ms`)
      await new Promise(wake => setTimeout(wake, POLL_MS))
    }
    const healthWallMs = performance.now() - startedAt
    const pid = child.pid as number
    const sample = { healthWallMs, healthCpuMs: processCpuMs(pid), anonMiB: rssMiB(pid, 'RssAnon'), fileMiB: rssMiB(pid, 'RssFile') }
    const line = output.split('\n').find(text => text.includes('rebuilt the Merkle trees'))
    const rebuildMs = line === undefined ? NaN : (JSON.parse(line) as { ms: number }).ms
    return { rebuildMs, ...sample }
  } finally {
    if (child.exitCode === null) child.kill('SIGTERM')
    await exited
  }
}

const workDir = mkdtempSync(join(tmpdir(), 'hearsay-rebuild-'))
try {
  const dataDirs = DISTS.map((_, index) => join(workDir, `data-${index}`))
  for (const [index, dist] of DISTS.entries()) {
    const prepStarted = performance.now()
    await prepare(dist, dataDirs[index]!)
    process.stdout.write(`# prepared ${KEYS} records for ${dist} in ${((performance.now() - prepStarted) / 1000).toFixed(1)} s\n`)
  }
  const starts: Start[][] = DISTS.map(() => [])
  for (let run = 0; run < RUNS; run++) {
    for (const [index, dist] of DISTS.entries()) {
      const sample = await start(dist, dataDirs[index]!, workDir)
      starts[index]!.push(sample)
      process.stdout.write(`# run ${run + 1} ${dist}: rebuild ${sample.rebuildMs} ms, load average ${loadavg()[0]!.toFixed(1)}\n`)
    }
  }
  process.stdout.write(`${KEYS} keys of ${VALUE_BYTES} B, Q=${PARTITIONS}, ${RUNS} starts per build, ${new Date().toISOString()}, load average ${loadavg().map(load => load.toFixed(1)).join(' ')}\n`)
  process.stdout.write('| build | Merkle rebuild ms | exec to /health 200 ms (wall) | CPU ms by then | RSS anon MiB | RSS file (LMDB map) MiB |\n|---|---|---|---|---|---|\n')
  const list = (samples: readonly Start[], pick: (sample: Start) => number): string => samples.map(sample => pick(sample).toFixed(0)).join(', ')
  for (const [index, dist] of DISTS.entries()) {
    const samples = starts[index]!
    process.stdout.write(`| ${dist} | ${list(samples, s => s.rebuildMs)} | ${list(samples, s => s.healthWallMs)} | ${list(samples, s => s.healthCpuMs)} | ${list(samples, s => s.anonMiB)} | ${list(samples, s => s.fileMiB)} |\n`)
  }
} finally {
  rmSync(workDir, { recursive: true, force: true })
}
