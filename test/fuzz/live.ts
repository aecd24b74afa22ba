import { readFileSync } from 'node:fs'
import net from 'node:net'
import { parseArgs } from 'node:util'
import fc from 'fast-check'
import { Packr } from 'msgpackr'
import { WebSocket } from 'ws'
import { FRAME_TYPES } from '../../lib/codec/frames.js'
import { startDaemon, type Daemon } from '../helpers/daemon.js'
import { leaf, msgpackValue } from './arbitraries.js'

/**
 * `npm run fuzz`: drives generated inputs against one live hearsayd (built into dist/) — raw HTTP
 * requests, stream frames, peer-port frames — and reports crashes, answers of 500 and above (but
 * 503), the node's peak RSS, and whether /health still answers. Exit code 1 when the node
 * crashed, answered a 500, or stopped answering /health.
 *
 *   npm run fuzz                       # 10^6 inputs (about a third each), seed from the clock
 *   npm run fuzz -- --inputs 30000 --seed 42
 */

const { values: args } = parseArgs({ options: { inputs: { type: 'string' }, seed: { type: 'string' }, concurrency: { type: 'string' } } })
const totalInputs = Number(args.inputs ?? 1_000_000)
const seed = Number(args.seed ?? Date.now() % 2 ** 31)
const concurrency = Number(args.concurrency ?? 16)
const CHUNK = 500
const packr = new Packr({ useRecords: false })

interface Tally { inputs: number; status: Map<number, number>; serverErrors: string[]; closeCodes: Map<number, number> }
const tally: Tally = { inputs: 0, status: new Map(), serverErrors: [], closeCodes: new Map() }
const count = (map: Map<number, number>, key: number): void => { map.set(key, (map.get(key) ?? 0) + 1) }

function peakRssMiB(daemon: Daemon): number {
  const status = readFileSync(`/proc/${daemon.process.pid}/status`, 'utf8')
  return Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN) / 1024
}

const segment = fc.oneof(fc.constantFrom('kv', 'batch', 'health', 'members', 'status', 'metrics', 'admin', 'sync', '', '%', '%zz', 'k'.repeat(1100)), fc.string({ maxLength: 12 }).map(encodeURIComponent))
const httpRequest = fc.record({
  method: fc.constantFrom('GET', 'HEAD', 'PUT', 'DELETE', 'POST', 'PATCH', 'OPTIONS', 'CONNECT'),
  path: fc.array(segment, { minLength: 1, maxLength: 3 }).map(parts => `/${parts.join('/')}`),
  query: fc.array(fc.tuple(fc.constantFrom('prefix', 'after', 'limit', 'r', 'w', 'ttl', 'x'), fc.oneof(fc.constantFrom('', 'one', 'all', '0', '99999', 'abc'), fc.string({ maxLength: 8 }).map(encodeURIComponent))), { maxLength: 3 })
    .map(pairs => pairs.map(([k, v]) => `${k}=${v}`).join('&')),
  expect: fc.option(fc.constantFrom('100-continue', '200-ok')),
  body: fc.option(fc.oneof(fc.uint8Array({ maxLength: 256 }).map(b => Buffer.from(b)), fc.json({ maxDepth: 3 }).map(s => Buffer.from(s)))),
})

function httpExchange(port: number, request: Buffer): Promise<string> {
  return new Promise(resolve => {
    const socket = net.connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    const timer = setTimeout(() => socket.destroy(), 10_000)
    socket.on('data', chunk => chunks.push(chunk))
    socket.on('error', () => {})
    socket.on('close', () => { clearTimeout(timer); resolve(Buffer.concat(chunks).toString('latin1')) })
    // write, not end: a half-closed request socket lets node:http drop an answer still being made.
    socket.write(request)
  })
}

async function fuzzHttp(daemon: Daemon, inputs: number, runSeed: number): Promise<void> {
  for (let done = 0; done < inputs; done += CHUNK) {
    const batch = fc.sample(httpRequest, { numRuns: Math.min(CHUNK, inputs - done), seed: runSeed + done })
    for (let i = 0; i < batch.length; i += concurrency) {
      await Promise.all(batch.slice(i, i + concurrency).map(async ({ method, path, query, expect, body }) => {
        const target = method === 'CONNECT' ? 'example.com:443' : `${path}${query === '' ? '' : `?${query}`}`
        const head = [`${method} ${target} HTTP/1.1`, 'Host: x', 'Connection: close', ...(expect === null ? [] : [`Expect: ${expect}`]), ...(body === null ? [] : [`Content-Length: ${body.length}`])]
        const answer = await httpExchange(daemon.apiPort, Buffer.concat([Buffer.from(`${head.join('\r\n')}\r\n\r\n`), body ?? Buffer.alloc(0)]))
        // A 100 Continue may come first; the final status is the last status line.
        const status = Number([...answer.matchAll(/^HTTP\/1\.1 (\d{3})/gm)].at(-1)?.[1] ?? 0)
        count(tally.status, status)
        if ((status >= 500 && status !== 503) || status === 0) tally.serverErrors.push(`${method} ${target.slice(0, 80)} -> ${status === 0 ? 'no answer' : status}`)
        tally.inputs++
      }))
    }
  }
}

const streamFrame = fc.tuple(fc.constantFrom(1, 2, 3, 4, 9), fc.array(fc.oneof(leaf, msgpackValue), { maxLength: 5 }))

async function fuzzStream(daemon: Daemon, inputs: number, runSeed: number): Promise<void> {
  let nextId = 1
  let socket: WebSocket | undefined
  const open = async (): Promise<WebSocket> => {
    if (socket?.readyState === WebSocket.OPEN) return socket
    const next = new WebSocket(`ws://127.0.0.1:${daemon.apiPort}/v1/stream`)
    next.on('error', () => {})
    next.on('message', (data: Buffer) => packr.unpackMultiple(data, (frame: unknown) => {
      const status = (frame as unknown[])[1] as number
      count(tally.status, status)
      if (status >= 500 && status !== 503) tally.serverErrors.push(`stream answer ${status}: ${JSON.stringify((frame as unknown[])[2]).slice(0, 120)}`)
    }))
    next.on('close', code => {
      count(tally.closeCodes, code)
      if (code === 1011) tally.serverErrors.push('stream connection closed 1011 (internal error)')
    })
    await new Promise<void>((resolve, reject) => { next.once('open', () => resolve()); next.once('error', reject) })
    return (socket = next)
  }
  for (let done = 0; done < inputs; done += CHUNK) {
    const batch = fc.sample(fc.array(streamFrame, { minLength: 1, maxLength: 8 }), { numRuns: Math.min(CHUNK, inputs - done), seed: runSeed + done })
    for (const frames of batch) {
      const ws = await open()
      ws.send(Buffer.concat(frames.map(([op, rest]) => packr.pack([nextId++, op, ...rest]))))
      tally.inputs++
      if (tally.inputs % 64 === 0) await new Promise(resolve => setImmediate(resolve))
    }
  }
  socket?.close()
}

const codes = FRAME_TYPES.map(type => type.code)
const peerFrame = fc.tuple(fc.constantFrom(...codes), fc.nat(2 ** 32), msgpackValue)

async function fuzzPeer(daemon: Daemon, inputs: number, runSeed: number): Promise<void> {
  for (let done = 0; done < inputs; done += CHUNK) {
    const batch = fc.sample(fc.array(peerFrame, { minLength: 1, maxLength: 4 }), { numRuns: Math.min(CHUNK, inputs - done), seed: runSeed + done })
    // One connection per message: a malformed message closes the link, and the handshake
    // slots per address are bounded, so connections go a few at a time.
    for (let i = 0; i < batch.length; i += 8) {
      await Promise.all(batch.slice(i, i + 8).map(frames => new Promise<void>(resolve => {
        const ws = new WebSocket(`ws://127.0.0.1:${daemon.peerPort}/`)
        const timer = setTimeout(() => { ws.terminate(); resolve() }, 5000)
        ws.on('error', () => {})
        ws.on('open', () => ws.send(Buffer.concat(frames.map(frame => packr.pack(frame)))))
        ws.on('close', code => {
          clearTimeout(timer)
          count(tally.closeCodes, code)
          if (code === 1011) tally.serverErrors.push(`peer link closed 1011 after ${JSON.stringify(frames).slice(0, 120)}`)
          resolve()
        })
        ws.on('unexpected-response', () => { clearTimeout(timer); resolve() })
        tally.inputs++
      })))
    }
  }
}

async function main(): Promise<number> {
  const daemon = await startDaemon({ config: { log: { level: 'warn' } } })
  const startedMs = Date.now()
  let crashed = false
  daemon.process.once('exit', () => { crashed = true })
  const share = Math.floor(totalInputs / 3)
  const progress = setInterval(() => process.stderr.write(`fuzz: ${tally.inputs} inputs, peak RSS ${peakRssMiB(daemon).toFixed(0)} MiB\n`), 10_000)
  try {
    await Promise.all([fuzzHttp(daemon, share, seed), fuzzStream(daemon, share, seed + 1), fuzzPeer(daemon, totalInputs - 2 * share, seed + 2)])
  } catch (error) {
    tally.serverErrors.push(`harness: ${(error as Error).message}`)
  } finally {
    clearInterval(progress)
  }
  let healthOk = false
  try {
    healthOk = (await fetch(`${daemon.url}/health`, { signal: AbortSignal.timeout(1000) })).status === 200
  } catch { /* reported below */ }
  const crashedDuringRun = crashed
  const peak = crashed ? NaN : peakRssMiB(daemon)
  await daemon.stop()
  const byStatus = [...tally.status].sort(([a], [b]) => a - b).map(([status, n]) => `${status}: ${n}`).join(', ')
  const byClose = [...tally.closeCodes].sort(([a], [b]) => a - b).map(([code, n]) => `${code}: ${n}`).join(', ')
  console.log(`fuzz: seed ${seed}, ${tally.inputs} inputs in ${((Date.now() - startedMs) / 1000).toFixed(0)} s`)
  console.log(`  answers by status: ${byStatus}`)
  console.log(`  closes by code: ${byClose}`)
  console.log(`  crashed: ${crashedDuringRun ? 'YES' : 'no'}; /health at the end: ${healthOk ? 'ok' : 'NOT OK'}; peak RSS ${peak.toFixed(0)} MiB`)
  console.log(`  server errors: ${tally.serverErrors.length}${tally.serverErrors.slice(0, 10).map(line => `\n    ${line}`).join('')}`)
  return crashedDuringRun || !healthOk || tally.serverErrors.length > 0 ? 1 : 0
}

main().then(code => process.exit(code), error => {
  console.error(`fuzz: ${(error as Error).stack ?? String(error)}`)
  process.exit(2)
})
