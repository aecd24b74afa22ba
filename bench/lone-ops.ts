/**
 * Lone operations: one operation in flight against three local nodes, through the stream
 * protocol (HearsayClient, transport 'binary'). Reports per operation kind the latency (p50,
 * p99), the CPU time all daemons spent per operation, and their write/read syscalls per
 * operation; and, before the load, what the idle cluster costs per second (gossip, clock
 * refills, keepalives), so CPU per lone operation can be read net of it. Not a test: run by hand
 * and copy the table into docs/benchmarks.md ("Lone operations").
 *
 *   npm run build && taskset -c 1 node dist/bench/lone-ops.js
 *
 * The idle measurement starts once the clock's ceiling saves after the fill have stopped
 * (REFILL_AFTER_LAST_TICK_MS + 1 s), so it is the cost of a cluster nobody writes to.
 *
 * Knobs: LONE_OPS ("put,cas,get" — put is W=quorum, cas is PUT ?ifVersion on one key per run,
 * get is R=quorum), LONE_COUNT (operations per kind, 2000), LONE_WARMUP (5000), LONE_IDLE_MS
 * (3000, 0 skips the idle measurement), LONE_PIN ("": the daemons keep the CPU affinity they
 * inherit from this process — under `taskset -c 1`, as above and in `npm run bench:lone`, that is
 * core 1, shared by the three daemons, their threads and this client, so a lone operation's
 * latency is about the CPU all of them spend on it; a core list such as "0,1" or "0" moves every
 * daemon there; the header line prints where they ran), LONE_HOLD_MS (after start-up, print the
 * daemons' pids and wait this long before the load, to attach strace or perf),
 * LONE_GAP_MS (pause between operations, 0; a gap separates operations in a trace), LONE_PERF
 * (1: count the daemons' syscalls, event-loop iterations (epoll_pwait), futex calls and context
 * switches per operation with `perf stat` tracepoints; counts a busy machine does not inflate).
 */
import { execFileSync, spawn } from 'node:child_process'
import { readFileSync, readdirSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import * as hdr from 'hdr-histogram-js'
import { HearsayClient, type HearsayClientOptions } from '../lib/client/client.js'
import { startCluster, waitFor, type Cluster } from '../test/helpers/daemon.js'
import { measureBounds } from './compare/bounds.js'
import { measurePipeline } from './pipeline-floor.js'
import { REFILL_AFTER_LAST_TICK_MS } from '../lib/clock/hlc.js'

type LoneOp = 'put' | 'cas' | 'get'

const OPS = (process.env.LONE_OPS ?? 'put,cas,get').split(',') as LoneOp[]
const COUNT = Number(process.env.LONE_COUNT ?? 2000)
/**
 * Operations before the measured ones: enough for V8 to have compiled the path. A daemon that
 * runs for hours is past it; with 200, TurboFan was still compiling and its threads took ~0.7 ms
 * of CPU per lone CAS (docs/benchmarks.md, session 7).
 */
const WARMUP = Number(process.env.LONE_WARMUP ?? 5000)
const IDLE_MS = Number(process.env.LONE_IDLE_MS ?? 3000)
const PIN = process.env.LONE_PIN ?? ''
const HOLD_MS = Number(process.env.LONE_HOLD_MS ?? 0)
const GAP_MS = Number(process.env.LONE_GAP_MS ?? 0)
const PERF = process.env.LONE_PERF === '1'
/** Beyond the clock's refill period, before the idle cluster is measured. */
const IDLE_SETTLE_MS = 1000
/** perf stat events, as LONE_PERF reports them per operation. */
const PERF_EVENTS: Record<string, string> = {
  'raw_syscalls:sys_enter': 'syscalls',
  'syscalls:sys_enter_epoll_pwait': 'epoll_pwait',
  'syscalls:sys_enter_futex': 'futex',
  'context-switches': 'switches',
  'syscalls:sys_enter_writev': 'writev',
  'syscalls:sys_enter_write': 'write',
  'syscalls:sys_enter_pwrite64': 'pwrite64',
  'syscalls:sys_enter_fdatasync': 'fdatasync',
}

/** Starts `perf stat` on every thread of the daemons; stop() ends it and returns each event's count. */
function perfStat(pids: readonly number[]): { stop(): Promise<Map<string, number>> } {
  const child = spawn('perf', ['stat', '-x', ',', '-e', Object.keys(PERF_EVENTS).join(','), '-p', pids.join(',')], { stdio: ['ignore', 'ignore', 'pipe'] })
  let output = ''
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  const exited = new Promise<void>(resolve => child.on('exit', () => resolve()))
  return {
    async stop() {
      child.kill('SIGINT')
      await exited
      const counts = new Map<string, number>()
      for (const line of output.split('\n')) {
        const [count, , event] = line.split(',')
        const name = event === undefined ? undefined : PERF_EVENTS[event]
        if (name !== undefined) counts.set(name, Number(count))
      }
      return counts
    },
  }
}
const NODES = 3
const KEY_SPACE = 1000
const VALUE_BYTES = 100
const CLUSTER_FORM_TIMEOUT_MS = 20_000
/** Latencies in microseconds; nothing here takes a minute. */
const MAX_LATENCY_US = 60_000_000
/** USER_HZ of /proc/<pid>/stat times. */
const CLOCK_TICKS_PER_SEC = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim())

interface Sample {
  readonly cpuSec: number
  readonly reads: number
  readonly writes: number
}

function sampleDaemons(pids: readonly number[]): Sample {
  let cpuSec = 0
  let reads = 0
  let writes = 0
  for (const pid of pids) {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? []
    cpuSec += (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SEC
    const io = readFileSync(`/proc/${pid}/io`, 'utf8')
    reads += Number(/^syscr: (\d+)$/m.exec(io)?.[1])
    writes += Number(/^syscw: (\d+)$/m.exec(io)?.[1])
  }
  return { cpuSec, reads, writes }
}

/** CPU seconds and context switches of every thread of the daemons, summed by thread name. */
function sampleThreads(pids: readonly number[]): Map<string, { cpuSec: number; systemSec: number; switches: number }> {
  const byName = new Map<string, { cpuSec: number; systemSec: number; switches: number }>()
  for (const pid of pids) {
    const tids = readdirSync(`/proc/${pid}/task`).map(Number).sort((a, b) => a - b)
    for (const [index, tid] of tids.entries()) {
      try {
        const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')
        const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))
        const fields = stat.slice(stat.lastIndexOf(') ') + 2).split(' ')
        const status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8')
        const switches = Number(/^voluntary_ctxt_switches:\s+(\d+)$/m.exec(status)?.[1]) + Number(/^nonvoluntary_ctxt_switches:\s+(\d+)$/m.exec(status)?.[1])
        // Every thread but the main one is called "node": name them by creation order.
        const key = tid === pid ? 'main' : `${name}#${index}`
        const sum = byName.get(key) ?? { cpuSec: 0, systemSec: 0, switches: 0 }
        sum.cpuSec += (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SEC
        sum.systemSec += Number(fields[12]) / CLOCK_TICKS_PER_SEC
        sum.switches += switches
        byName.set(key, sum)
      } catch {
        // The thread ended between the listing and the read.
      }
    }
  }
  return byName
}

/** The CPUs a process may run on (its affinity), as the kernel lists them. */
function daemonCpus(pid: number): string {
  return /^Cpus_allowed_list:\s+(\S+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '?'
}

const value = Buffer.alloc(VALUE_BYTES, 0x61)
const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

async function startNodes(): Promise<Cluster> {
  const cluster = await startCluster(NODES, () => ({
    log: { level: 'warn' },
    replication: { factor: 3, writeQuorum: 'quorum', readQuorum: 'quorum' },
  }))
  if (PIN !== '') for (const node of cluster.nodes) execFileSync('taskset', ['-a', '-p', '-c', PIN, String(node.process.pid)], { stdio: 'ignore' })
  const probe = new HearsayClient({ nodes: [cluster.nodes[0]!.url], transport: 'http' } as HearsayClientOptions)
  try {
    await waitFor(`${NODES} alive members`, CLUSTER_FORM_TIMEOUT_MS, async () => (await probe.members()).filter(m => m.state === 'alive').length === NODES)
    await probe.batch(Array.from({ length: KEY_SPACE }, (_, i) => ({ op: 'put' as const, key: `lone-${i}`, value })))
  } finally {
    probe.close()
  }
  return cluster
}

interface Row {
  readonly op: string
  readonly p50Ms: number
  readonly p90Ms: number
  readonly p99Ms: number
  readonly opsPerSec: number
  readonly cpuUs: number
  readonly netCpuUs: number
  readonly writes: number
  readonly reads: number
  readonly errors: number
  /** Per thread name (all daemons): CPU µs and context switches per operation. */
  readonly threads: string
  /** LONE_PERF: perf stat counts per operation, all daemons together. */
  readonly perf: string
}

async function runOp(client: HearsayClient, op: LoneOp, pids: readonly number[], idleCpuPerSec: number): Promise<Row> {
  const histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: MAX_LATENCY_US, numberOfSignificantValueDigits: 3 })
  const casKey = `lone-cas-${process.pid}-${Date.now()}`
  let version = 'absent'
  let errors = 0
  let before: Sample | undefined
  let threadsBefore = new Map<string, { cpuSec: number; systemSec: number; switches: number }>()
  let perf: ReturnType<typeof perfStat> | undefined
  let startedAt = 0
  for (let i = 0; i < WARMUP + COUNT; i++) {
    if (i === WARMUP) {
      if (PERF) {
        perf = perfStat(pids)
        // perf needs a moment to attach to every thread before the counted operations start.
        await sleep(500)
      }
      threadsBefore = sampleThreads(pids)
      before = sampleDaemons(pids)
      startedAt = performance.now()
    }
    const key = `lone-${i % KEY_SPACE}`
    const started = performance.now()
    try {
      if (op === 'put') await client.put(key, value)
      else if (op === 'get') await client.get(key)
      else version = (await client.cas(casKey, value, { ifVersion: version })).version
      if (i >= WARMUP) histogram.recordValue(Math.max(1, Math.round((performance.now() - started) * 1000)))
    } catch (error) {
      if (i >= WARMUP) errors++
      if (op === 'cas') version = (await client.get(casKey, { consistency: 'linearizable' }))?.version ?? 'absent'
      if (errors === 1) console.error(`${op}: ${String(error)}`)
    }
    if (GAP_MS > 0) await sleep(GAP_MS)
  }
  const elapsedSec = (performance.now() - startedAt) / 1000
  const perfCounts = await perf?.stop()
  const perfText = perfCounts === undefined ? '' : [...perfCounts].map(([name, count]) => `${name} ${(count / COUNT).toFixed(1)}`).join(', ')
  const after = sampleDaemons(pids)
  const threadsAfter = sampleThreads(pids)
  const threads = [...threadsAfter].map(([name, sum]) => {
    const was = threadsBefore.get(name) ?? { cpuSec: 0, systemSec: 0, switches: 0 }
    return { name, cpuUs: (sum.cpuSec - was.cpuSec) / COUNT * 1e6, systemUs: (sum.systemSec - was.systemSec) / COUNT * 1e6, switches: (sum.switches - was.switches) / COUNT }
  }).filter(t => t.cpuUs >= 1 || t.switches >= 0.1).sort((a, b) => b.cpuUs - a.cpuUs)
    .map(t => `${t.name} ${Math.round(t.cpuUs)} µs (${Math.round(t.systemUs)} system), ${t.switches.toFixed(1)} switches`).join('; ')
  const start = before as Sample
  const cpuUs = (after.cpuSec - start.cpuSec) / COUNT * 1e6
  const row: Row = {
    op: { put: 'PUT W=quorum', cas: 'CAS (PUT ?ifVersion)', get: 'GET R=quorum' }[op],
    p50Ms: histogram.getValueAtPercentile(50) / 1000,
    p90Ms: histogram.getValueAtPercentile(90) / 1000,
    p99Ms: histogram.getValueAtPercentile(99) / 1000,
    opsPerSec: Math.round(COUNT / elapsedSec),
    cpuUs: Math.round(cpuUs),
    netCpuUs: Math.round(cpuUs - idleCpuPerSec * elapsedSec / COUNT * 1e6),
    writes: (after.writes - start.writes) / COUNT,
    reads: (after.reads - start.reads) / COUNT,
    errors,
    threads,
    perf: perfText,
  }
  histogram.destroy()
  return row
}

const load = loadavg().map(l => l.toFixed(2)).join(' ')
const cluster = await startNodes()
const pids = cluster.nodes.map(node => node.process.pid as number)
const client = new HearsayClient({ nodes: [cluster.nodes[0]!.url], transport: 'binary' } as HearsayClientOptions)
try {
  if (HOLD_MS > 0) {
    console.log(`daemon pids: ${pids.join(' ')} (coordinator first); holding ${HOLD_MS} ms`)
    await sleep(HOLD_MS)
  }
  let idleCpuPerSec = 0
  let idle = ''
  let idleThreads = ''
  let idlePerfText = ''
  if (IDLE_MS > 0) {
    // After the fill, each node's clock keeps saving its ceiling for REFILL_AFTER_LAST_TICK_MS
    // (lib/clock/hlc.ts): idle means after that.
    await sleep(REFILL_AFTER_LAST_TICK_MS + IDLE_SETTLE_MS)
    const idlePerf = PERF ? perfStat(pids) : undefined
    if (PERF) await sleep(500)
    const threadsBefore = sampleThreads(pids)
    const before = sampleDaemons(pids)
    await sleep(IDLE_MS)
    const after = sampleDaemons(pids)
    const idleCounts = await idlePerf?.stop()
    if (idleCounts !== undefined) idlePerfText = [...idleCounts].map(([name, count]) => `${name} ${(count / (IDLE_MS / 1000 + 0.5)).toFixed(1)}`).join(', ')
    const threadsAfter = sampleThreads(pids)
    idleThreads = [...threadsAfter].map(([name, sum]) => ({ name, ms: (sum.cpuSec - (threadsBefore.get(name)?.cpuSec ?? 0)) / (IDLE_MS / 1000) * 1000 }))
      .filter(t => t.ms > 0).sort((a, b) => b.ms - a.ms).map(t => `${t.name} ${t.ms.toFixed(1)}`).join(', ')
    idleCpuPerSec = (after.cpuSec - before.cpuSec) / (IDLE_MS / 1000)
    idle = `idle cluster: ${(idleCpuPerSec * 1000).toFixed(1)} ms CPU/s over the 3 daemons, ${((after.writes - before.writes) / (IDLE_MS / 1000)).toFixed(1)} write and ${((after.reads - before.reads) / (IDLE_MS / 1000)).toFixed(1)} read syscalls/s`
  }
  const rows: Row[] = []
  for (const op of OPS) rows.push(await runOp(client, op, pids, idleCpuPerSec))
  // After the rows, so the probes' own processes do not run beside the measured operations.
  const bounds = await measureBounds()
  const pipeline = await measurePipeline({ count: COUNT, warmup: WARMUP, sync: true, remotes: NODES - 1, ...(PIN === '' ? {} : { pin: PIN }) })
  console.log(`# ${new Date().toISOString()} node ${process.version} ${cpus().length}× ${cpus()[0]?.model.trim()}; load ${load} at the start, ${loadavg().map(l => l.toFixed(2)).join(' ')} at the end; ${COUNT} ops per row after ${WARMUP} warm-up, one in flight, ${VALUE_BYTES} B values; daemons on CPUs ${daemonCpus(pids[0] as number)}${PIN === '' ? ' (inherited)' : ` (LONE_PIN=${PIN})`}`)
  if (idle !== '') console.log(`# ${idle}; by thread (ms/s): ${idleThreads}`)
  if (idlePerfText !== '') console.log(`# idle cluster per second (perf stat, all daemons): ${idlePerfText}`)
  console.log(`# floors in this run: issue 13's, 2 round trips in one process (p50 ${bounds.loopbackRoundTripP50Ms.toFixed(3)} ms) + 2 fsyncs (p50 ${bounds.fsyncP50Ms.toFixed(3)} ms) = ${bounds.casFloorMs.toFixed(2)} ms; separate processes', 2 round trips to another process (p50 ${bounds.processRoundTripP50Ms.toFixed(3)} ms) + 1 lone acceptor journal sync (p50 ${bounds.journalSyncP50Ms.toFixed(3)} ms) = ${bounds.loneCasFloorMs.toFixed(2)} ms; a lone lmdb-js commit (a plain write's replica) p50 ${bounds.lmdbCommitP50Ms.toFixed(3)} ms`)
  console.log(`# the bare pipeline (bench/pipeline-floor.ts: a lone CAS's frames through 4 processes that only relay them and sync their journals, on the daemons' CPUs): p50 ${pipeline.p50Ms.toFixed(2)} ms, p99 ${pipeline.p99Ms.toFixed(2)} ms, ${Math.round(pipeline.cpuUs)} µs CPU per op`)
  console.log('| op | p50 ms | p90 ms | p99 ms | ops/s | server CPU µs/op | net of idle | write / read syscalls per op | errors |')
  console.log('|---|---:|---:|---:|---:|---:|---:|---|---:|')
  for (const r of rows) console.log(`# ${r.op} per op by thread: ${r.threads}`)
  for (const r of rows) if (r.perf !== '') console.log(`# ${r.op} per op (perf stat, all daemons): ${r.perf}`)
  for (const r of rows) console.log(`| ${r.op} | ${r.p50Ms.toFixed(2)} | ${r.p90Ms.toFixed(2)} | ${r.p99Ms.toFixed(2)} | ${r.opsPerSec} | ${r.cpuUs} | ${r.netCpuUs} | ${r.writes.toFixed(1)} / ${r.reads.toFixed(1)} | ${r.errors} |`)
} finally {
  client.close()
  await cluster.stop()
}
