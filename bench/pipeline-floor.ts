/**
 * The process-pipeline floor of a lone CAS: what four Node.js processes cost for the message
 * pattern of CASPaxos's one-round-trip path when they do nothing else. A client process sends a
 * request over a WebSocket to a coordinator, which sends it to two acceptor processes and appends
 * it to its own journal; each acceptor appends it to its journal, syncs (the daemon's own
 * AcceptorJournal and journal files: one fdatasync on the main thread at the end of the turn) and
 * answers; the coordinator answers the client once its own sync and one acceptor's answer are in.
 * Frames are MessagePack over `ws`, as the daemon's. No membership, no clocks, no protocol logic:
 * the difference between this and `bench:lone`'s CAS is what the daemon's code costs.
 *
 *   npm run build && taskset -c 1 node dist/bench/pipeline-floor.js
 *
 * Knobs: PIPELINE_COUNT (operations, 2000), PIPELINE_WARMUP (5000), PIPELINE_SYNC (1; 0 leaves
 * out the journals: the hops alone), PIPELINE_REMOTES (2: acceptors besides the coordinator's).
 * `npm run bench:lone` prints it among its floors. Not a test; docs/benchmarks.md quotes it.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { tmpdir, loadavg } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { pack, unpack } from 'msgpackr'
import { WebSocket, WebSocketServer, type RawData } from 'ws'
import { AcceptorJournal } from '../lib/paxos/acceptor-journal.js'
import { JournalDirectory } from '../lib/store/journal-files.js'
import { scriptCommand } from '../test/helpers/node-command.js'
import { createLatencyHistogram, recordLatencyMs, summarizeLatency } from '../lib/bench/latency.js'
import { sampleProcess } from './compare/proc-stats.js'

const ROLE = process.env.PIPELINE_ROLE ?? 'client'
const COUNT = Number(process.env.PIPELINE_COUNT ?? 2000)
/** Enough for V8 to have compiled the path (with 200 it was still compiling: docs/benchmarks.md). */
const WARMUP = Number(process.env.PIPELINE_WARMUP ?? 5000)
const SYNC = process.env.PIPELINE_SYNC !== '0'
const REMOTES = Number(process.env.PIPELINE_REMOTES ?? 2)
/** A state-sized record: a 100-byte value with its ballot, version and history. */
const RECORD_BYTES = 200

interface Request { readonly id: number; readonly record: Uint8Array }
interface Answer { readonly id: number; readonly ok: boolean }

/** This process's journal in a directory of its own under PIPELINE_DIR (the client removes it), or none (PIPELINE_SYNC=0). */
async function openJournal(): Promise<{ write(record: Uint8Array): Promise<void> }> {
  if (!SYNC) return { write: async () => undefined }
  const files = new JournalDirectory(mkdtempSync(join(process.env.PIPELINE_DIR ?? tmpdir(), `${ROLE}-`)))
  await files.list()
  const journal = new AcceptorJournal(files, files.create(1))
  return {
    write(record) {
      journal.append(record)
      return journal.durable()
    },
  }
}

async function listen(onMessage: (socket: WebSocket, data: RawData) => void): Promise<number> {
  const server = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false })
  await once(server, 'listening')
  server.on('connection', (socket: WebSocket) => {
    (socket as unknown as { _socket: { setNoDelay(on: boolean): void } })._socket.setNoDelay(true)
    socket.on('message', (data) => onMessage(socket, data))
  })
  return (server.address() as { port: number }).port
}

async function connect(port: number): Promise<WebSocket> {
  const socket = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: false })
  await once(socket, 'open')
  return socket
}

async function acceptor(): Promise<void> {
  const journal = await openJournal()
  const port = await listen((socket, data) => {
    const { id, record } = unpack(data as Buffer) as Request
    void journal.write(record).then(() => socket.send(pack({ id, ok: true } satisfies Answer)))
  })
  process.stdout.write(`${port}\n`)
}

async function coordinator(acceptorPorts: readonly number[]): Promise<void> {
  const journal = await openJournal()
  const remotes = await Promise.all(acceptorPorts.map(connect))
  /** Answers still needed per request id, and how to answer the client. */
  const pending = new Map<number, { needed: number; answer: () => void }>()
  const tally = (id: number): void => {
    const entry = pending.get(id)
    if (entry === undefined || --entry.needed > 0) return
    pending.delete(id)
    entry.answer()
  }
  for (const remote of remotes) remote.on('message', (data) => tally((unpack(data as Buffer) as Answer).id))
  const quorum = Math.floor((remotes.length + 1) / 2) + 1
  const port = await listen((socket, data) => {
    const request = unpack(data as Buffer) as Request
    const frame = pack(request)
    pending.set(request.id, { needed: quorum, answer: () => socket.send(pack({ id: request.id, ok: true } satisfies Answer)) })
    for (const remote of remotes) remote.send(frame)
    void journal.write(request.record).then(() => tally(request.id))
  })
  process.stdout.write(`${port}\n`)
}

/** Starts a role and waits for its port; the child goes into `children` at once, so a failed start leaves none behind. */
async function startRole(children: ChildProcess[], role: string, env: Record<string, string>): Promise<{ child: ChildProcess; port: number }> {
  // With this process's loaders (tsx under tap), so the roles run from the .ts file too.
  const { command, args } = scriptCommand([fileURLToPath(import.meta.url)])
  const child = spawn(command, args, { env: { ...process.env, ...env, PIPELINE_ROLE: role }, stdio: ['ignore', 'pipe', 'inherit'] })
  children.push(child)
  const lines = createInterface({ input: child.stdout! })
  const exited = once(child, 'exit').then(([code, signal]) => { throw new Error(`the pipeline's ${role} exited (${String(code ?? signal)}) before it listened`) })
  const [line] = await Promise.race([once(lines, 'line') as Promise<[string]>, exited])
  exited.catch(() => undefined)
  return { child, port: Number(line) }
}

/** CPU seconds of `pids` together so far. */
function cpuSeconds(pids: readonly number[]): number {
  return pids.reduce((sum, pid) => sum + sampleProcess(pid).cpuSeconds, 0)
}

export interface PipelineOptions {
  readonly count: number
  readonly warmup: number
  /** False leaves out the journals: the hops alone. */
  readonly sync: boolean
  /** Acceptors besides the coordinator's own. */
  readonly remotes: number
  /** A CPU list for every process of the pipeline (taskset), or undefined: they inherit this one's. */
  readonly pin?: string
}

export interface PipelineResult {
  readonly p50Ms: number
  readonly p90Ms: number
  readonly p99Ms: number
  readonly opsPerSec: number
  /** CPU of the coordinator and acceptors per operation (not the client's). */
  readonly cpuUs: number
}

/** Runs the bare pipeline (this process is the client) and measures it. */
export async function measurePipeline(options: PipelineOptions): Promise<PipelineResult> {
  const children: ChildProcess[] = []
  const dir = mkdtempSync(join(tmpdir(), 'hearsay-pipeline-'))
  const env = { PIPELINE_SYNC: options.sync ? '1' : '0', PIPELINE_DIR: dir }
  try {
    const acceptors = await Promise.all(Array.from({ length: options.remotes }, () => startRole(children, 'acceptor', env)))
    const coordinatorProcess = await startRole(children, 'coordinator', { ...env, PIPELINE_ACCEPTORS: acceptors.map((a) => a.port).join(',') })
    const pids = children.map((c) => c.pid!)
    if (options.pin !== undefined) for (const pid of pids) execFileSync('taskset', ['-a', '-p', '-c', options.pin, String(pid)], { stdio: 'ignore' })
    const socket = await connect(coordinatorProcess.port)
    const record = Buffer.alloc(RECORD_BYTES, 0x61)
    const latency = createLatencyHistogram()
    let cpuBefore = 0
    let startedAt = 0
    for (let id = 0; id < options.warmup + options.count; id++) {
      if (id === options.warmup) {
        cpuBefore = cpuSeconds(pids)
        startedAt = performance.now()
      }
      const started = performance.now()
      socket.send(pack({ id, record } satisfies Request))
      const [data] = await once(socket, 'message') as [Buffer]
      if ((unpack(data) as Answer).id !== id) throw new Error(`answer out of order at ${id}`)
      if (id >= options.warmup) recordLatencyMs(latency, performance.now() - started)
    }
    const elapsedSec = (performance.now() - startedAt) / 1000
    const cpuUs = (cpuSeconds(pids) - cpuBefore) / options.count * 1e6
    socket.close()
    const { p50, p90, p99 } = summarizeLatency(latency)
    return { p50Ms: p50, p90Ms: p90, p99Ms: p99, opsPerSec: options.count / elapsedSec, cpuUs }
  } finally {
    await Promise.all(children.map(async (child) => {
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = once(child, 'exit')
      child.kill()
      await exited
    }))
    rmSync(dir, { recursive: true, force: true })
  }
}

async function main(): Promise<void> {
  const options = { count: COUNT, warmup: WARMUP, sync: SYNC, remotes: REMOTES }
  const result = await measurePipeline(options)
  const load = loadavg().map((l) => l.toFixed(2)).join(' ')
  console.log(`# ${new Date().toISOString()} node ${process.version}; load ${load}; ${COUNT} ops after ${WARMUP} warm-up; ${REMOTES} remote acceptors; journal syncs ${SYNC ? 'on' : 'off'}`)
  console.log('| pipeline | p50 ms | p90 ms | p99 ms | ops/s | CPU µs/op (coordinator + acceptors) |')
  console.log('|---|---:|---:|---:|---:|---:|')
  console.log(`| client → coordinator → ${REMOTES} acceptors${SYNC ? ' (journal sync)' : ''} | ${result.p50Ms.toFixed(2)} | ${result.p90Ms.toFixed(2)} | ${result.p99Ms.toFixed(2)} | ${Math.round(result.opsPerSec)} | ${Math.round(result.cpuUs)} |`)
}

// Imported (bench/lone-ops.ts), this module only measures; run, it is a role or the CLI.
if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  if (ROLE === 'acceptor') await acceptor()
  else if (ROLE === 'coordinator') await coordinator((process.env.PIPELINE_ACCEPTORS ?? '').split(',').map(Number))
  else await main()
}
