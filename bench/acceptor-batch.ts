/**
 * CPU of the CASPaxos acceptor per accept, in-process on a real LMDB store: batches of B accepts
 * (`Acceptor.acceptMany`, one transaction and one flush each) with the commit notices of the
 * previous batch learned in the same transaction, over 64 keys, 100-byte values and 16-version
 * histories — what a remote acceptor does per `paxosAcceptMany` in the CAS benchmark.
 *
 * Modes (ACCEPTOR_BENCH_MODES, default wire,store+wire):
 * - `wire`: only the frames, both sides of the link: the proposer encodes the paxosAcceptMany
 *   (FrameCodec.encode), the acceptor decodes and validates it, encodes its all-ok
 *   paxosAcceptManyReply, and the proposer decodes that;
 * - `store+wire`: the same with `Acceptor.acceptBatch` on the store between the two;
 * - `store`: `Acceptor.acceptMany` alone, no frames (the session-4 numbers).
 *
 * `node dist/bench/acceptor-batch.js` after `npm run build`. Env: ACCEPTOR_BENCH_ROOTS other
 * builds' repository roots (comma-separated, each with its own dist/), run interleaved so they
 * see the same load; ACCEPTOR_BENCH_BATCHES (default 1,10,40); ACCEPTOR_BENCH_ACCEPTS per run
 * (default 3000); ACCEPTOR_BENCH_ROUNDS (default 3). CPU is process.cpuUsage (every thread: the
 * LMDB commit and its flush included). Numbers go to docs/benchmarks.md.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type { Acceptor as AcceptorClass, AcceptRequest } from '../lib/paxos/acceptor.js'
import type { AcceptManyBody, AcceptManyReplyBody, CommitNotice } from '../lib/paxos/messages.js'
import type { FrameCodec as FrameCodecClass } from '../lib/codec/codec.js'
import type { FrameRegistry } from '../lib/codec/frames.js'
import type { TransportLimits } from '../lib/transport/limits.js'
import type { KvStore as KvStoreClass } from '../lib/store/kv-store.js'
import type { NodeId, Version } from '../lib/clock/version.js'

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
const roots = (process.env['ACCEPTOR_BENCH_ROOTS'] ?? repoRoot).split(',').map((root) => resolve(root.trim()))
const batches = (process.env['ACCEPTOR_BENCH_BATCHES'] ?? '1,10,40').split(',').map((text) => boundedInteger(text, 'ACCEPTOR_BENCH_BATCHES', 1, 1024))
const acceptsPerRun = boundedInteger(process.env['ACCEPTOR_BENCH_ACCEPTS'] ?? '3000', 'ACCEPTOR_BENCH_ACCEPTS', 1, 1_000_000)
const rounds = boundedInteger(process.env['ACCEPTOR_BENCH_ROUNDS'] ?? '3', 'ACCEPTOR_BENCH_ROUNDS', 1, 100)
const MODES = ['wire', 'store+wire', 'store'] as const
type Mode = (typeof MODES)[number]
const modes = (process.env['ACCEPTOR_BENCH_MODES'] ?? 'wire,store+wire').split(',').map((text) => {
  const mode = MODES.find((known) => known === text.trim())
  if (mode === undefined) throw new Error(`ACCEPTOR_BENCH_MODES: ${JSON.stringify(text)} is not one of ${MODES.join(', ')}`)
  return mode
})
const REQUEST_ID = 7
const KEYS = 64
const HISTORY = 16
const WARMUP_BATCHES = 50
const MAP_SIZE_BYTES = 256 * 1024 * 1024
const PROPOSER = 'aaaaaaaaaaaaaaaa' as NodeId
const B = 'bbbbbbbbbbbbbbbb' as NodeId
const C = 'cccccccccccccccc' as NodeId
/**
 * Acceptor sets as a proposer passes them: the placement table's row of the key's partition, so
 * one array per partition, in one of the rank orders of 3 members (every order for 64 keys).
 */
const SETS: readonly (readonly NodeId[])[] = [[PROPOSER, B, C], [PROPOSER, C, B], [B, PROPOSER, C], [B, C, PROPOSER], [C, PROPOSER, B], [C, B, PROPOSER]]

function boundedInteger(text: string, name: string, min: number, max: number): number {
  const value = Number(text)
  if (!Number.isSafeInteger(value) || value < min || value > max) throw new Error(`${name}: ${JSON.stringify(text)} is not an integer from ${min} to ${max}`)
  return value
}

interface Build {
  readonly root: string
  readonly KvStore: typeof KvStoreClass
  readonly Acceptor: typeof AcceptorClass
  /**
   * Builds from the acceptor journal on (session 6) open() on the store's database and journal;
   * earlier ones construct it on the database, and learn committed values within its transaction.
   */
  readonly AcceptorStore: { open?(options: { db: KvStoreClass['paxos']; journal: KvStoreClass['paxosJournal'] }): Promise<unknown> } & (new (db: KvStoreClass['paxos']) => unknown)
  /** This build's frame codec, with its own frame table and protocol. */
  readonly codec: FrameCodecClass
}

async function load(root: string): Promise<Build> {
  const module = (path: string): Promise<Record<string, unknown>> => import(pathToFileURL(join(root, 'dist', path)).href) as Promise<Record<string, unknown>>
  const [store, acceptor, acceptorStore, codec, frames, limits] = await Promise.all([
    module('lib/store/kv-store.js'), module('lib/paxos/acceptor.js'), module('lib/paxos/acceptor-store.js'),
    module('lib/codec/codec.js'), module('lib/codec/frames.js'), module('lib/transport/limits.js'),
  ])
  const FrameCodec = codec['FrameCodec'] as typeof FrameCodecClass
  return {
    root, KvStore: store['KvStore'] as typeof KvStoreClass, Acceptor: acceptor['Acceptor'] as typeof AcceptorClass, AcceptorStore: acceptorStore['AcceptorStore'] as Build['AcceptorStore'],
    codec: new FrameCodec(frames['frameRegistry'] as FrameRegistry, limits['DEFAULT_TRANSPORT_LIMITS'] as TransportLimits),
  }
}

/** A paxosAcceptMany across the link and its answer back, as the transport does it (encode, decode and validate on each side). */
async function overTheWire(codec: FrameCodecClass, body: AcceptManyBody, answer: (body: AcceptManyBody) => Promise<AcceptManyReplyBody>): Promise<AcceptManyReplyBody> {
  const [request] = codec.decodeMessage(codec.encode('paxosAcceptMany', REQUEST_ID, body))
  const reply = await answer(request?.body as AcceptManyBody)
  const [response] = codec.decodeMessage(codec.encodeResponse(REQUEST_ID, { type: 'paxosAcceptManyReply', body: reply }))
  return (response?.body as { body: AcceptManyReplyBody }).body
}

/** CPU µs per accept of one run of `build` at `batch` accepts per transaction. */
async function run(build: Build, batch: number, mode: Mode): Promise<{ cpuUs: number; userUs: number; wallMs: number }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'hearsay-acceptor-bench-'))
  const store = await build.KvStore.open({ dataDir, mapSizeBytes: MAP_SIZE_BYTES })
  try {
    const journalled = build.AcceptorStore.open !== undefined
    const acceptorStore = journalled ? await build.AcceptorStore.open!({ db: store.paxos, journal: store.paxosJournal }) : new build.AcceptorStore(store.paxos)
    const within = (store as unknown as { applyWithin?: unknown }).applyWithin
    const acceptor = new build.Acceptor({
      store: acceptorStore as ConstructorParameters<typeof AcceptorClass>[0]['store'],
      ...(journalled || typeof within !== 'function' ? {} : { learnWithin: (within as (records: unknown) => unknown).bind(store) }),
      stored: (key) => store.get(key),
      refusal: () => undefined,
      observeTick: () => undefined,
      learn: (records) => store.applyMany(records),
    })
    const value = Buffer.alloc(100, 7)
    const histories = new Map<string, Version[]>()
    let counter = 1_796_547_732_000_000
    let previous: AcceptRequest[] = []
    let key = 0
    const oneBatch = async (): Promise<void> => {
      const accepts: AcceptRequest[] = []
      for (let i = 0; i < batch; i++) {
        const keyIndex = key++ % KEYS
        const name = `bench/k${keyIndex}`
        const tick = ++counter
        const history = [...(histories.get(name) ?? []), { hlc: tick, node: PROPOSER }].slice(-HISTORY)
        histories.set(name, history)
        accepts.push({ key: name, ballot: { counter: tick, node: PROPOSER }, record: { value, version: { hlc: tick, node: PROPOSER }, strong: true }, history, set: SETS[keyIndex % SETS.length] })
      }
      const commits: CommitNotice[] = previous.map(({ key: name, ballot }) => ({ key: name, ballot, at: 0 }))
      previous = accepts
      let answers: AcceptManyReplyBody['answers']
      if (mode === 'store') {
        answers = (await acceptor.acceptMany(accepts, commits)).answers
      } else {
        const body: AcceptManyBody = {
          accepts: accepts.map(({ key: name, ballot, record, history, set }) => ({
            ballot, entry: { key: name, value: record.value, hlc: record.version.hlc, node: record.version.node, strong: true }, history, ...(set === undefined ? {} : { set }),
          })),
          commits,
        }
        answers = (await overTheWire(build.codec, body, mode === 'wire'
          ? (sent) => Promise.resolve({ answers: sent.accepts.map(() => ({ ok: true as const })), missing: [] })
          : (sent) => acceptor.acceptBatch(sent))).answers
      }
      if (answers.length !== accepts.length) throw new Error(`${build.root}: ${answers.length} answers to ${accepts.length} accepts`)
      if (answers.some((answer) => !answer.ok)) throw new Error(`${build.root}: an accept was refused: ${JSON.stringify(answers.find((answer) => !answer.ok))}`)
    }
    for (let i = 0; i < WARMUP_BATCHES; i++) await oneBatch()
    const batchCount = Math.max(1, Math.round(acceptsPerRun / batch))
    const cpu = process.cpuUsage()
    const start = process.hrtime.bigint()
    for (let i = 0; i < batchCount; i++) await oneBatch()
    const used = process.cpuUsage(cpu)
    const accepts = batchCount * batch
    return { cpuUs: (used.user + used.system) / accepts, userUs: used.user / accepts, wallMs: Number(process.hrtime.bigint() - start) / 1e6 }
  } finally {
    await store.close()
    rmSync(dataDir, { recursive: true, force: true })
  }
}

const builds = await Promise.all(roots.map(load))
console.log('| round | mode | build | accepts per transaction | CPU µs per accept (user) | wall ms |')
console.log('|---:|---|---|---:|---:|---:|')
for (let round = 1; round <= rounds; round++) {
  for (const mode of modes) {
    for (const batch of batches) {
      for (const build of builds) {
        const result = await run(build, batch, mode)
        console.log(`| ${round} | ${mode} | ${build.root} | ${batch} | ${result.cpuUs.toFixed(1)} (${result.userUs.toFixed(1)}) | ${result.wallMs.toFixed(0)} |`)
      }
    }
  }
}
