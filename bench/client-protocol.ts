/**
 * PUT and GET through HearsayClient over HTTP and over the binary stream protocol, against one
 * node and against a three-node cluster (W=quorum), closed loop. Not a test: run by hand and copy
 * the table into docs/benchmarks.md. Besides throughput and latency it reports CPU time per
 * operation (all daemons together, and this load process), which a busy shared machine distorts
 * far less than ops/s.
 *
 *   npm run build && taskset -c 1 node dist/bench/client-protocol.js
 *
 * With BENCH_PIN_DAEMONS=0 (the default pins them) the daemons run wherever the OS puts them;
 * otherwise every daemon is moved to core 0 right after it starts, so load and server do not
 * share a core. Other knobs: BENCH_DURATION_MS (8000 per row), BENCH_WARMUP_MS (1000),
 * BENCH_IN_FLIGHT (64), BENCH_NODES ("1,3"), BENCH_TRANSPORTS ("http,binary"), BENCH_OPS ("put,get"),
 * BENCH_CPU_PROF_DIR (run the daemons under --cpu-prof, profiles written there on stop).
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { join } from 'node:path'
import * as hdr from 'hdr-histogram-js'
import { open as openLmdb, type RootDatabase } from 'lmdb'
import { HearsayClient, type HearsayClientOptions } from '../lib/client/client.js'
import { startCluster, waitFor, type Cluster } from '../test/helpers/daemon.js'

const DURATION_MS = Number(process.env.BENCH_DURATION_MS ?? 8000)
const WARMUP_MS = Number(process.env.BENCH_WARMUP_MS ?? 1000)
const IN_FLIGHT = Number(process.env.BENCH_IN_FLIGHT ?? 64)
const NODE_COUNTS = (process.env.BENCH_NODES ?? '1,3').split(',').map(Number)
const TRANSPORTS = (process.env.BENCH_TRANSPORTS ?? 'http,binary').split(',')
const OPS = (process.env.BENCH_OPS ?? 'put,get').split(',') as ('put' | 'get')[]
const PIN_DAEMONS = process.env.BENCH_PIN_DAEMONS !== '0'
const CPU_PROF_DIR = process.env.BENCH_CPU_PROF_DIR
const DAEMON_CORE = '0'
const KEY_SPACE = 10_000
const VALUE_BYTES = 100
const FILL_BATCH_OPS = 500
const CLUSTER_FORM_TIMEOUT_MS = 20_000
/** Latencies are recorded in microseconds; nothing here takes longer than a minute. */
const MAX_LATENCY_US = 60_000_000

interface Row {
  readonly nodes: number
  readonly transport: string
  readonly op: 'put' | 'get'
  readonly opsPerSec: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly errors: number
  /** CPU time per operation in the measured window: all daemons together, and the load process. */
  readonly serverCpuUs: number
  readonly clientCpuUs: number
  /**
   * Write and read syscalls per operation, all daemons together (/proc/<pid>/io: socket writes,
   * LMDB's page writes and syncs, socket reads): a count the machine's load does not inflate,
   * so a change that coalesces messages or commits shows here even when CPU time is noisy.
   */
  readonly serverWriteCalls: number
  readonly serverReadCalls: number
  /**
   * LMDB write transactions committed per operation, all daemons together (each environment's
   * last transaction id, read through a read-only handle): how many operations share a commit.
   */
  readonly serverCommits: number
}

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ, 100 on Linux). */
const CLOCK_TICKS_PER_SEC = 100

/** User plus system CPU seconds a process has used so far. */
function processCpuSec(pid: number): number {
  // The command name (field 2) may hold spaces; the fields after its closing parenthesis do not.
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? []
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SEC
}

/** Read and write syscalls a process has made so far (/proc/<pid>/io). */
function processSyscalls(pid: number): { reads: number; writes: number } {
  const io = readFileSync(`/proc/${pid}/io`, 'utf8')
  const field = (name: string): number => Number(new RegExp(`^${name}: (\\d+)$`, 'm').exec(io)?.[1] ?? Number.NaN)
  return { reads: field('syscr'), writes: field('syscw') }
}

function clientCpuSec(): number {
  const usage = process.cpuUsage()
  return (usage.user + usage.system) / 1e6
}

const value = Buffer.alloc(VALUE_BYTES, 0x61)

/** Read-only handles on the daemons' environments, for their commit counts. */
function lmdbCommitCounter(dataDirs: readonly string[]): { commits(): number; close(): Promise<void> } {
  const envs: RootDatabase[] = dataDirs.map(path => openLmdb({ path, noSubdir: false, readOnly: true }))
  return {
    commits: () => envs.reduce((sum, env) => sum + (env.getStats() as { lastTxnId: number }).lastTxnId, 0),
    close: async () => { await Promise.all(envs.map(env => env.close())) },
  }
}

async function run(client: HearsayClient, op: 'put' | 'get', nodes: number, transport: string, daemonPids: readonly number[], commits: () => number): Promise<Row> {
  const histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: MAX_LATENCY_US, numberOfSignificantValueDigits: 3 })
  let errors = 0
  let recorded = 0
  let counter = 0
  const startedAt = performance.now()
  const measureFrom = startedAt + WARMUP_MS
  const deadline = measureFrom + DURATION_MS
  const serverCpuSec = (): number => daemonPids.reduce((sum, pid) => sum + processCpuSec(pid), 0)
  const serverSyscalls = (): { reads: number; writes: number } => daemonPids.map(processSyscalls)
    .reduce((sum, calls) => ({ reads: sum.reads + calls.reads, writes: sum.writes + calls.writes }), { reads: 0, writes: 0 })
  let cpuAtStart = { server: 0, client: 0, syscalls: { reads: 0, writes: 0 }, commits: 0 }
  const cpuTimer = setTimeout(() => { cpuAtStart = { server: serverCpuSec(), client: clientCpuSec(), syscalls: serverSyscalls(), commits: commits() } }, WARMUP_MS)
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const key = `bench-${counter++ % KEY_SPACE}`
      const started = performance.now()
      try {
        if (op === 'put') await client.put(key, value)
        else await client.get(key)
        if (started >= measureFrom) {
          histogram.recordValue(Math.max(1, Math.round((performance.now() - started) * 1000)))
          recorded++
        }
      } catch {
        if (started >= measureFrom) errors++
      }
    }
  }
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker))
  clearTimeout(cpuTimer)
  const elapsedSec = (performance.now() - measureFrom) / 1000
  const completed = Math.max(1, recorded + errors)
  const syscalls = serverSyscalls()
  const row = {
    nodes, transport, op,
    opsPerSec: Math.round(recorded / elapsedSec),
    p50Ms: histogram.getValueAtPercentile(50) / 1000,
    p99Ms: histogram.getValueAtPercentile(99) / 1000,
    errors,
    serverCpuUs: Math.round((serverCpuSec() - cpuAtStart.server) / completed * 1e6),
    clientCpuUs: Math.round((clientCpuSec() - cpuAtStart.client) / completed * 1e6),
    serverWriteCalls: (syscalls.writes - cpuAtStart.syscalls.writes) / completed,
    serverReadCalls: (syscalls.reads - cpuAtStart.syscalls.reads) / completed,
    serverCommits: (commits() - cpuAtStart.commits) / completed,
  }
  histogram.destroy()
  return row
}

async function startNodes(count: number): Promise<Cluster> {
  const cluster = await startCluster(count, () => ({
    log: { level: 'warn' },
    replication: { factor: 3, writeQuorum: 'quorum', readQuorum: 1 },
  }))
  if (PIN_DAEMONS) {
    for (const node of cluster.nodes) execFileSync('taskset', ['-a', '-p', '-c', DAEMON_CORE, String(node.process.pid)], { stdio: 'ignore' })
  }
  const probe = new HearsayClient({ nodes: [cluster.nodes[0]!.url], transport: 'http' } as HearsayClientOptions)
  try {
    await waitFor(`${count} alive members`, CLUSTER_FORM_TIMEOUT_MS, async () => (await probe.members()).filter(m => m.state === 'alive').length === count)
    for (let i = 0; i < KEY_SPACE; i += FILL_BATCH_OPS) {
      await probe.batch(Array.from({ length: FILL_BATCH_OPS }, (_, j) => ({ op: 'put' as const, key: `bench-${i + j}`, value })))
    }
  } finally {
    probe.close()
  }
  return cluster
}

/**
 * Node refuses --cpu-prof in NODE_OPTIONS and the daemon helper takes no node flags, so the
 * daemons preload this script instead: it runs the same V8 profiler and writes a .cpuprofile
 * (open it in Chrome DevTools or speedscope) when the daemon exits.
 */
const PROFILER_PRELOAD = `
const { Session } = require('node:inspector')
const { writeFileSync } = require('node:fs')
const session = new Session()
session.connect()
session.post('Profiler.enable')
session.post('Profiler.start')
process.on('exit', () => {
  // An in-thread inspector session answers synchronously, so this completes inside 'exit'.
  session.post('Profiler.stop', (error, result) => {
    if (!error) writeFileSync(${JSON.stringify(`${CPU_PROF_DIR ?? ''}/hearsayd-`)} + process.pid + '.cpuprofile', JSON.stringify(result.profile))
  })
})
`
if (CPU_PROF_DIR !== undefined) {
  mkdirSync(CPU_PROF_DIR, { recursive: true })
  const preload = join(CPU_PROF_DIR, 'profiler-preload.cjs')
  writeFileSync(preload, PROFILER_PRELOAD)
  process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} --require ${preload}`
}

const rows: Row[] = []
const load = loadavg()[0]?.toFixed(2)
for (const count of NODE_COUNTS) {
  const cluster = await startNodes(count)
  const lmdb = lmdbCommitCounter(cluster.nodes.map(node => node.dataDir))
  try {
    for (const transport of TRANSPORTS) {
      // The transport option is new with the stream protocol; an older client ignores it (HTTP).
      const client = new HearsayClient({ nodes: [cluster.nodes[0]!.url], maxSockets: IN_FLIGHT, transport } as HearsayClientOptions)
      try {
        const pids = cluster.nodes.map(node => node.process.pid as number)
        for (const op of OPS) rows.push(await run(client, op, count, transport, pids, lmdb.commits))
      } finally {
        client.close()
      }
    }
  } finally {
    await lmdb.close()
    await cluster.stop()
  }
}

console.log(`# ${new Date().toISOString()} node ${process.version} ${cpus().length}× ${cpus()[0]?.model ?? 'cpu'}; load average ${load} at the start;`
  + ` ${IN_FLIGHT} in flight, ${DURATION_MS / 1000} s per row after ${WARMUP_MS / 1000} s warm-up, ${VALUE_BYTES} B values, ${KEY_SPACE} keys;`
  + ` daemons ${PIN_DAEMONS ? `pinned to core ${DAEMON_CORE}` : 'not pinned'}`)
console.log('| nodes | client transport | op | ops/s | p50 ms | p99 ms | errors | server CPU µs/op | client CPU µs/op | server write / read syscalls per op | LMDB commits per op |')
console.log('|---:|---|---|---:|---:|---:|---:|---:|---:|---|---:|')
for (const r of rows) {
  const op = r.op === 'put' ? (r.nodes > 1 ? 'PUT W=quorum' : 'PUT') : 'GET R=1'
  console.log(`| ${r.nodes} | ${r.transport} | ${op} | ${r.opsPerSec} | ${r.p50Ms.toFixed(2)} | ${r.p99Ms.toFixed(2)} | ${r.errors} | ${r.serverCpuUs} | ${r.clientCpuUs} | ${r.serverWriteCalls.toFixed(2)} / ${r.serverReadCalls.toFixed(2)} | ${r.serverCommits.toFixed(3)} |`)
}
