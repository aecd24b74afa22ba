/**
 * One node's durable PUT and GET throughput and latency at 1 and 64 requests in flight.
 * Not a test: run by hand (`npm run bench:node`) and copy the table into docs/benchmarks.md.
 *
 * Starts a real hearsayd on free loopback ports with a temp data dir, drives it through the
 * client library (keep-alive HTTP), prints one row per (op, concurrency), then stops it.
 */
import { cpus } from 'node:os'
import { rmSync } from 'node:fs'
import { HearsayClient } from '../lib/client/client.js'
import { startDaemon } from '../test/helpers/daemon.js'

const DURATION_MS = Number(process.env.BENCH_DURATION_MS ?? 10_000)
const KEY_SPACE = 10_000
const VALUE_BYTES = 100
const CONCURRENCIES = [1, 64]

interface Row { op: string; inFlight: number; ops: number; opsPerSec: number; p50Ms: number; p99Ms: number; errors: number }

function percentile(sortedMs: Float64Array, p: number): number {
  if (sortedMs.length === 0) return NaN
  return sortedMs[Math.min(sortedMs.length - 1, Math.floor(p * sortedMs.length))]!
}

async function run(client: HearsayClient, op: 'put' | 'get', inFlight: number): Promise<Row> {
  const value = Buffer.alloc(VALUE_BYTES, 0x61)
  const latencies: number[] = []
  let errors = 0
  const deadline = performance.now() + DURATION_MS
  let counter = 0
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const key = `bench-${counter++ % KEY_SPACE}`
      const started = performance.now()
      try {
        if (op === 'put') await client.put(key, value)
        else await client.get(key)
        latencies.push(performance.now() - started)
      } catch {
        errors++
      }
    }
  }
  const started = performance.now()
  await Promise.all(Array.from({ length: inFlight }, worker))
  const elapsedSec = (performance.now() - started) / 1000
  const sorted = Float64Array.from(latencies).sort()
  return { op, inFlight, ops: latencies.length, opsPerSec: Math.round(latencies.length / elapsedSec), p50Ms: percentile(sorted, 0.5), p99Ms: percentile(sorted, 0.99), errors }
}

const daemon = await startDaemon({ config: { log: { level: 'warn' } } })
const client = new HearsayClient({ nodes: [daemon.url], maxSockets: 64 })
try {
  // Fill the key space so GETs find values.
  for (let i = 0; i < KEY_SPACE; i += 500) {
    await client.batch(Array.from({ length: 500 }, (_, j) => ({ op: 'put' as const, key: `bench-${i + j}`, value: Buffer.alloc(VALUE_BYTES, 0x61) })))
  }
  const rows: Row[] = []
  for (const inFlight of CONCURRENCIES) {
    for (const op of ['put', 'get'] as const) rows.push(await run(client, op, inFlight))
  }
  console.log(`# ${new Date().toISOString()} node ${process.version} ${cpus().length}× ${cpus()[0]?.model ?? 'cpu'}; ${DURATION_MS / 1000} s per row, ${VALUE_BYTES} B values, durable (W=1 local commit + flush)`)
  console.log('| op | in flight | ops/s | p50 ms | p99 ms | errors |')
  console.log('|---|---:|---:|---:|---:|---:|')
  for (const r of rows) console.log(`| ${r.op} | ${r.inFlight} | ${r.opsPerSec} | ${r.p50Ms.toFixed(2)} | ${r.p99Ms.toFixed(2)} | ${r.errors} |`)
} finally {
  client.close()
  await daemon.stop()
  rmSync(daemon.dataDir, { recursive: true, force: true })
}
