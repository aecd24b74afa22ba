import t from 'tap'
import { REFILL_AFTER_LAST_TICK_MS } from '../../lib/clock/hlc.js'
import { setTimeout as sleep } from 'node:timers/promises'
import { hlcWallMs, parseVersion } from '../../lib/clock/version.js'
import { startCluster, startDaemon, waitFor, type Daemon } from '../helpers/daemon.js'

/**
 * Issue 11, scenario 1, on real daemons: one node of three runs 10 s ahead (`clock.offsetMs`, the
 * test hook). Its clock offset monitor finds it skewed; it refuses writes before applying anything
 * (so it keeps no version from the future), /health says so, and once real time has passed the
 * versions it would have written, the W=all writes of the other nodes are still what every node
 * holds. Before the monitor, its writes stayed in its own store and won everywhere ~10 s later.
 */

const CLOCK_OFFSET_MS = 10_000
const MAX_SKEW_MS = 500
const FAST = { membership: { probeIntervalMs: 500, probeTimeoutMs: 200, gossipIntervalMs: 100, pushPullIntervalMs: 5000 } }
const REQUEST_TIMEOUT_MS = 15_000
const MEMBERSHIP_TIMEOUT_MS = 30_000
/** Bound for the skewed node to say so on /health after it started: join, then one probe round (1 s). */
const SKEW_DETECTION_TIMEOUT_MS = 15_000
/** Slack after real time passes the would-be future versions, for read repair and anti-entropy to act. */
const SETTLE_MS = 2_000
const KEYS = Array.from({ length: 20 }, (_, i) => `skew-${i}`)

interface Answer { readonly status: number; readonly body: Record<string, unknown> }
interface Read { readonly status: number; readonly value?: string; readonly version?: string }

async function put(node: Daemon, key: string, value: string, w: string): Promise<Answer> {
  const res = await fetch(`${node.url}/kv/${encodeURIComponent(key)}?w=${w}`, { method: 'PUT', body: value, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })
  return { status: res.status, body: await res.json() as Record<string, unknown> }
}

async function get(node: Daemon, key: string, r: string): Promise<Read> {
  const res = await fetch(`${node.url}/kv/${encodeURIComponent(key)}?r=${r}`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })
  if (res.status !== 200) {
    await res.arrayBuffer()
    return { status: res.status }
  }
  return { status: 200, value: await res.text(), version: res.headers.get('hearsay-version') ?? '' }
}

async function json(node: Daemon, path: string, init: RequestInit = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${node.url}${path}`, { ...init, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })
  return { status: res.status, body: await res.json() as Record<string, unknown> }
}

async function metric(node: Daemon, line: RegExp): Promise<number | undefined> {
  const text = await (await fetch(`${node.url}/metrics`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })).text()
  const match = text.split('\n').map((l) => line.exec(l)).find((m) => m !== null)
  return match === undefined || match === null ? undefined : Number(match[1])
}

function describe(read: Read): string {
  return read.status === 200 ? `200 ${JSON.stringify(read.value)} ${read.version ?? ''}` : String(read.status)
}

t.test('a node whose clock runs 10 s ahead refuses to coordinate writes and keeps nothing from the future', async (t) => {
  const config = (name: string, offsetMs = 0) => ({
    ...FAST,
    node: { name },
    replication: { factor: 3 },
    clock: { maxSkewMs: MAX_SKEW_MS, ...(offsetMs !== 0 ? { offsetMs } : {}) },
  })
  const cluster = await startCluster(2, (i) => config(`node-${i + 1}`))
  t.teardown(() => cluster.stop())
  const [first, second] = cluster.nodes as [Daemon, Daemon]
  // Not waiting for /health 200: the skewed node may say "skewed" before the first poll.
  const startedMs = Date.now()
  const skewed = await startDaemon({
    config: { ...config('node-3', CLOCK_OFFSET_MS), cluster: { seeds: [`127.0.0.1:${first.peerPort}`] } },
    waitHealthy: false,
  })
  cluster.nodes.push(skewed)
  const nodes = [first, second, skewed]

  let health = { status: 0, body: {} as Record<string, unknown> }
  await waitFor('/health skewed on node 3', SKEW_DETECTION_TIMEOUT_MS, async () => {
    health = await json(skewed, '/health')
    return health.status === 503 && health.body.status === 'skewed'
  })
  t.comment(`node 3 reported skewed ${Date.now() - startedMs} ms after its start`)
  const clock = health.body.clock as Record<string, number>
  t.ok(Math.abs(clock.aheadMs! - CLOCK_OFFSET_MS) < 1000, `/health names the offset: ${clock.aheadMs} ms ahead`)
  t.match(clock, { maxSkewMs: MAX_SKEW_MS, peersBeyond: clock.peersMeasured })

  await waitFor('3 alive members on every node', MEMBERSHIP_TIMEOUT_MS, async () => {
    for (const node of nodes) {
      const members = (await json(node, '/members')).body as unknown as { state: string }[]
      if (members.filter((m) => m.state === 'alive').length !== 3) return false
    }
    return true
  })
  for (const node of [first, second]) {
    const ok = await json(node, '/health')
    t.same([ok.status, ok.body.status], [200, 'ok'], `${node.url}: the nodes with a good clock stay healthy`)
  }

  // The skewed node's writes: refused up front, answered 503 with the reason and outcome refused.
  const attemptedAtMs = Date.now()
  const refusals = new Set<string>()
  for (const key of KEYS) {
    const answer = await put(skewed, key, `${key} from the future`, 'quorum')
    if (answer.status !== 503 || answer.body.outcome !== 'refused' || typeof answer.body.error !== 'string' || !/clock is \d+ ms ahead of its peers/.test(answer.body.error)) {
      refusals.add(`${key}: ${answer.status} ${JSON.stringify(answer.body)}`)
    }
    if (answer.body.version !== undefined) refusals.add(`${key}: the refusal names a version, so one was created: ${String(answer.body.version)}`)
  }
  t.same([...refusals], [], 'every write on the skewed node is refused with 503 "clock is N ms ahead", outcome refused')
  const one = await put(skewed, 'skew-one', 'from the future', 'one')
  t.equal(one.status, 503, 'even W=one, which the local store alone would satisfy')

  const appliedLocally: string[] = []
  for (const key of [...KEYS, 'skew-one']) {
    const local = await get(skewed, key, 'one')
    if (local.status !== 404) appliedLocally.push(`${key}: ${describe(local)}`)
  }
  t.same(appliedLocally, [], 'nothing was applied in the skewed node\'s own store')
  t.equal((await get(skewed, 'skew-one', 'all')).status, 404, 'and reads are still served there')

  // The other nodes write the same keys with W=all: acknowledged by all three.
  const expected = new Map<string, { value: string; version: string }>()
  const unacked: string[] = []
  for (const [i, key] of KEYS.entries()) {
    const writer = i % 2 === 0 ? first : second
    const value = `${key} from the present`
    const answer = await put(writer, key, value, 'all')
    if (answer.status !== 200 || answer.body.acks !== 3) unacked.push(`${key}: ${answer.status} ${JSON.stringify(answer.body)}`)
    else expected.set(key, { value, version: String(answer.body.version) })
    if (answer.status === 200 && hlcWallMs(parseVersion(String(answer.body.version)).hlc) > Date.now() + CLOCK_OFFSET_MS / 2) {
      unacked.push(`${key}: node ${writer.url} was dragged into the future: ${String(answer.body.version)}`)
    }
  }
  t.same(unacked, [], 'every W=all write of nodes 1 and 2 is acknowledged 3/3, with a present version')

  t.equal(await metric(skewed, /^hearsay_clock_skewed (\S+)$/), 1, 'node 3: hearsay_clock_skewed 1')
  t.equal(await metric(first, /^hearsay_clock_skewed (\S+)$/), 0, 'node 1: hearsay_clock_skewed 0')
  const offsetSeconds = await metric(first, /^hearsay_clock_offset_seconds\{peer="node-3"\} (\S+)$/)
  t.ok(offsetSeconds !== undefined && Math.abs(offsetSeconds - CLOCK_OFFSET_MS / 1000) < 1, `node 1 measures node 3 ${offsetSeconds} s ahead`)
  const ownOffset = await metric(skewed, /^hearsay_clock_offset_seconds\{peer="node-1"\} (\S+)$/)
  t.ok(ownOffset !== undefined && Math.abs(ownOffset + CLOCK_OFFSET_MS / 1000) < 1, `node 3 measures node 1 ${ownOffset} s behind`)
  const status = (await json(skewed, '/status')).body.clock as { skewed: boolean; peers: { name: string; offsetMs: number }[] }
  t.equal(status.skewed, true, '/status clock.skewed')
  t.same(status.peers.map((p) => p.name), ['node-1', 'node-2'], '/status lists the offset of each peer')

  // Wait (bounded) until real time is past any version the skewed node could have created, then
  // give read repair and anti-entropy every chance to spread one.
  const futureUntilMs = attemptedAtMs + CLOCK_OFFSET_MS + SETTLE_MS
  while (Date.now() < futureUntilMs) await sleep(Math.min(1000, futureUntilMs - Date.now()))
  for (const node of nodes) t.equal((await fetch(`${node.url}/admin/sync`, { method: 'POST', signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })).status, 200, `${node.url}: anti-entropy round`)
  for (const key of KEYS) await get(first, key, 'all')
  await sleep(500)

  const mismatches: string[] = []
  for (const node of nodes) {
    for (const [key, want] of expected) {
      const read = await get(node, key, 'one')
      if (read.status !== 200 || read.value !== want.value || read.version !== want.version) {
        mismatches.push(`${node.url} ${key}: got ${describe(read)}, want ${JSON.stringify(want.value)} ${want.version}`)
      }
    }
    const stray = await get(node, 'skew-one', 'one')
    if (stray.status !== 404) mismatches.push(`${node.url} skew-one: ${describe(stray)}`)
  }
  t.same(mismatches, [], 'after real time passed the would-be future versions, every node still holds the acknowledged W=all values')

  // NTP fixes the clock: node 3 restarts without the offset, onto the clock ceiling it persisted
  // while 10 s ahead. It is healthy at once, but issues no timestamp from that future: its writes
  // wait (503) until the wall clock has caught up, then carry present versions.
  const stoppedAtMs = Date.now()
  await skewed.stop()
  const corrected = await startDaemon({
    dataDir: skewed.dataDir, apiPort: skewed.apiPort, peerPort: skewed.peerPort,
    config: { ...config('node-3'), cluster: { seeds: [`127.0.0.1:${first.peerPort}`] } },
  })
  cluster.nodes[2] = corrected
  const early = await put(corrected, 'after-fix', 'from node 3, corrected', 'one')
  t.equal(early.status, 503, 'right after the restart its writes are refused')
  t.match(early.body, { outcome: 'refused', error: /has issued timestamps \d+ ms ahead of its wall clock/ })
  let late: Answer = early
  await waitFor('node 3 to take writes again', CLOCK_OFFSET_MS + 5000, async () => {
    late = await put(corrected, 'after-fix', 'from node 3, corrected', 'all')
    return late.status === 200
  })
  const resumedAfterMs = Date.now() - stoppedAtMs
  t.comment(`node 3 took writes again ${resumedAfterMs} ms after it was stopped`)
  // Its every write was refused, so it issued no tick while skewed: its clock kept reserving
  // ceilings only for REFILL_AFTER_LAST_TICK_MS after its start, CLOCK_OFFSET_MS ahead. It must
  // not write before the wall clock is within the bound of the last of them.
  const resumedAfterStartMs = Date.now() - startedMs
  t.ok(resumedAfterStartMs >= CLOCK_OFFSET_MS + REFILL_AFTER_LAST_TICK_MS - 2 * MAX_SKEW_MS, `not before the timestamps it reserved were within the bound (${resumedAfterStartMs} ms after its first start)`)
  const wallMs = hlcWallMs(parseVersion(String(late.body.version)).hlc)
  t.ok(wallMs <= Date.now() + MAX_SKEW_MS, `its first version after the fix is not from the future (${wallMs - Date.now()} ms ahead)`)
  t.equal(late.body.acks, 3, 'and every replica takes it')
})
