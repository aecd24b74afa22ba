/**
 * Anti-entropy at scale: two real daemons, 1M keys of 100 B, one node missing or holding older
 * versions of 1% of them. Measures tree rebuild time at start, RSS, and for one POST /admin/sync:
 * bytes moved (exact, from hearsay_antientropy_bytes_total) against the differing records' size,
 * and wall time; then the same with 0% differing. Not a test: `npm run bench:antientropy`.
 *
 * The data dirs are prepared with the real store (KvStore with the daemon's segment index) in
 * large batches, which is how a node that already holds 1M keys looks at start.
 */
import { cpus } from 'node:os'
import { readFileSync, rmSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { asNodeId } from '../lib/clock/version.js'
import { loadRecordDigester } from '../lib/merkle/digest.js'
import { segmentIndexOptions } from '../lib/antientropy/segments.js'
import { KvStore, type KeyedRecord } from '../lib/store/kv-store.js'
import { startDaemon, tempDir, waitFor, type Daemon } from '../test/helpers/daemon.js'

const KEYS = Number(process.env.BENCH_KEYS ?? 1_000_000)
const DIFFERING_FRACTION = Number(process.env.BENCH_DIFFERING ?? 0.01)
const VALUE_BYTES = 100
const PARTITIONS = 256
const WRITE_BATCH = 10_000
const VERSION_BYTES = 16
const WRITER = asNodeId('0123456789abcdef')
const BASE_HLC = Date.now() * 1000 - 10_000_000_000
const SYNC_TIMEOUT_MS = 30 * 60_000

const keyOf = (i: number): string => `bench/${String(i).padStart(10, '0')}`

/** Writes node A's and node B's records: B lacks half of the differing keys and holds older versions of the rest. */
async function prepare(dirA: string, dirB: string, differing: ReadonlySet<number>): Promise<number> {
  const digester = await loadRecordDigester()
  const segments = segmentIndexOptions(digester, PARTITIONS)
  const value = randomBytes(VALUE_BYTES)
  const newer = randomBytes(VALUE_BYTES)
  let differingBytes = 0
  for (const [dir, side] of [[dirA, 'a'], [dirB, 'b']] as const) {
    const store = await KvStore.open({ dataDir: dir, mapSizeBytes: 4 * 1024 ** 3, segments })
    let batch: KeyedRecord[] = []
    for (let i = 0; i < KEYS; i++) {
      const key = keyOf(i)
      const differs = differing.has(i)
      if (side === 'b' && differs && i % 2 === 0) continue
      const overwritten = side === 'a' && differs
      batch.push({ key, record: { value: overwritten ? newer : value, version: { hlc: BASE_HLC + i * 2 + (overwritten ? 1 : 0), node: WRITER } } })
      if (side === 'a' && differs) differingBytes += Buffer.byteLength(key) + VALUE_BYTES + VERSION_BYTES
      if (batch.length === WRITE_BATCH) {
        await store.applyMany(batch)
        batch = []
      }
    }
    await store.applyMany(batch)
    await store.close()
  }
  return differingBytes
}

async function metric(node: Daemon, name: string): Promise<number> {
  const text = await (await fetch(`${node.url}/metrics`)).text()
  let sum = 0
  for (const line of text.split('\n')) if (line.startsWith(name)) sum += Number(line.slice(line.lastIndexOf(' ') + 1))
  return sum
}

/** Resident memory: anonymous (heap, trees: this process's own) and file-backed (LMDB's mapped pages, page cache shared with the OS). */
function rss(node: Daemon): string {
  const status = readFileSync(`/proc/${node.process.pid}/status`, 'utf8')
  const mib = (field: string): string => (Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN) / 1024).toFixed(0)
  return `${mib('RssAnon')} + ${mib('RssFile')}`
}

function rebuildMs(node: Daemon): number {
  const line = node.output().split('\n').find((l) => l.includes('rebuilt the Merkle trees'))
  return line === undefined ? NaN : (JSON.parse(line) as { ms: number }).ms
}

async function digest(node: Daemon): Promise<string> {
  return ((await (await fetch(`${node.url}/status`)).json()) as { digest: string }).digest
}

/** Bytes of each sync message type, both directions, as node's transport counted them. */
async function bytesByType(node: Daemon): Promise<Map<string, number>> {
  const text = await (await fetch(`${node.url}/metrics`)).text()
  const byType = new Map<string, number>()
  for (const match of text.matchAll(/^hearsay_peer_bytes_total\{direction="\w+",type="(sync\w+)"\} (\S+)$/gm)) {
    byType.set(match[1]!, (byType.get(match[1]!) ?? 0) + Number(match[2]))
  }
  return byType
}

async function syncOnce(node: Daemon, peer: Daemon): Promise<{ bytes: number; ms: number; pulled: number; partitionsDiffering: number; byType: Map<string, number> }> {
  const typesBefore = await bytesByType(node)
  const bytesBefore = await metric(node, 'hearsay_antientropy_bytes_total')
  const started = performance.now()
  const res = await fetch(`${node.url}/admin/sync`, { method: 'POST', signal: AbortSignal.timeout(SYNC_TIMEOUT_MS) })
  const summary = await res.json() as { pulled: number; partitionsDiffering: number }
  const ms = performance.now() - started
  if (res.status !== 200) throw new Error(`sync answered ${res.status}: ${JSON.stringify(summary)}`)
  const bytes = (await metric(node, 'hearsay_antientropy_bytes_total')) - bytesBefore
  if (await digest(node) !== await digest(peer)) throw new Error('digests differ after the sync')
  const byType = new Map([...await bytesByType(node)].map(([type, total]) => [type, total - (typesBefore.get(type) ?? 0)]))
  return { bytes, ms, pulled: summary.pulled, partitionsDiffering: summary.partitionsDiffering, byType }
}

async function main(): Promise<void> {
  const [dirA, dirB] = [tempDir('hearsay-bench-a-'), tempDir('hearsay-bench-b-')]
  const nodes: Daemon[] = []
  try {
    const differing = new Set<number>()
    const step = Math.round(1 / DIFFERING_FRACTION)
    for (let i = 0; i < KEYS; i += step) differing.add(i)
    const prepStarted = performance.now()
    const differingBytes = await prepare(dirA, dirB, differing)
    console.log(`# prepared 2 × ${KEYS} records (${differing.size} differing) in ${((performance.now() - prepStarted) / 1000).toFixed(1)} s`)

    const config = { partitions: PARTITIONS, antiEntropy: { enabled: false }, log: { level: 'info' } }
    const a = await startDaemon({ dataDir: dirA, config: { ...config, node: { name: 'a' } } })
    nodes.push(a)
    const b = await startDaemon({ dataDir: dirB, config: { ...config, node: { name: 'b' }, cluster: { seeds: [`127.0.0.1:${a.peerPort}`] } } })
    nodes.push(b)
    await waitFor('both members alive', 30_000, async () => {
      const members = await (await fetch(`${b.url}/members`)).json() as { state: string }[]
      return members.filter((m) => m.state === 'alive').length === 2
    })
    const rssBefore = [rss(a), rss(b)]
    const first = await syncOnce(b, a)
    const second = await syncOnce(b, a)
    const rssAfter = [rss(a), rss(b)]

    console.log(`# ${new Date().toISOString()} node ${process.version} ${cpus().length}× ${cpus()[0]?.model ?? 'cpu'}`)
    console.log(`# ${KEYS} keys of ${VALUE_BYTES} B on two nodes, Q=${PARTITIONS}; node b lacks ${differing.size / 2} and holds older versions of ${differing.size / 2}`)
    console.log(`| measure | value |`)
    console.log(`|---|---|`)
    console.log(`| Merkle rebuild at start (a, b) | ${rebuildMs(a)} ms, ${rebuildMs(b)} ms |`)
    console.log(`| RSS anon + file after start (a, b) | ${rssBefore.join(' MiB, ')} MiB |`)
    console.log(`| RSS anon + file after both syncs (a, b) | ${rssAfter.join(' MiB, ')} MiB |`)
    console.log(`| ${(DIFFERING_FRACTION * 100).toFixed(0)}% differing: records pulled | ${first.pulled} in ${first.partitionsDiffering} differing partitions |`)
    console.log(`| ${(DIFFERING_FRACTION * 100).toFixed(0)}% differing: bytes moved / differing records' size | ${first.bytes} / ${differingBytes} = ${(first.bytes / differingBytes).toFixed(2)}× |`)
    console.log(`| ${(DIFFERING_FRACTION * 100).toFixed(0)}% differing: sync time | ${first.ms.toFixed(0)} ms |`)
    console.log(`| ${(DIFFERING_FRACTION * 100).toFixed(0)}% differing: bytes by message (both directions) | ${[...first.byType].filter(([, bytes]) => bytes > 0).map(([type, bytes]) => `${type} ${bytes}`).join(', ')} |`)
    console.log(`| 0% differing: bytes moved | ${second.bytes} (${second.partitionsDiffering} partitions differ) |`)
    console.log(`| 0% differing: sync time | ${second.ms.toFixed(0)} ms |`)
  } finally {
    await Promise.all(nodes.map((node) => node.stop()))
    rmSync(dirA, { recursive: true, force: true })
    rmSync(dirB, { recursive: true, force: true })
  }
}

await main()
