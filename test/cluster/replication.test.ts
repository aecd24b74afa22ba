import t from 'tap'
import { randomBytes, randomInt } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { startCluster, startDaemon, waitFor, type Cluster, type Daemon } from '../helpers/daemon.js'
import { checkLastWriteWins, type FinalRead, type WriteOp } from './history.js'

/**
 * Replication with real daemons: W and R against live and killed replicas, the 503 path, hinted
 * handoff, read repair and concurrent last-write-wins (the clock-skew bound: clock-skew.test.ts).
 */

/** Membership timings for tests: the LAN defaults, a little faster so failures show up sooner. */
const FAST = { membership: { probeIntervalMs: 500, probeTimeoutMs: 200, gossipIntervalMs: 100, pushPullIntervalMs: 5000 } }
/** replication.timeoutMs in these clusters (the default, stated so the deadline check reads it). */
const REPLICATION_TIMEOUT_MS = 2000
/**
 * Slack on top of replication.timeoutMs for a 503 to reach the client: HTTP, scheduling on a shared
 * 2-core machine. Generous on purpose: this bounds a protocol deadline, it does not measure speed.
 */
const DEADLINE_MARGIN_MS = 3000
/** Bound on one HTTP request; far above replication.timeoutMs so a 503 arrives as a 503. */
const REQUEST_TIMEOUT_MS = 15_000
const MEMBERSHIP_TIMEOUT_MS = 30_000
/** Bound for hints, read repair and background replica writes to land. */
const CONVERGE_TIMEOUT_MS = 30_000

type Level = 'one' | 'quorum' | 'all' | number

interface WriteAnswer { readonly status: number; readonly body: Record<string, unknown> }
interface ReadAnswer { readonly status: number; readonly value?: string; readonly version?: string }

async function put(node: Daemon, key: string, value: string, w: Level): Promise<WriteAnswer> {
  const res = await fetch(`${node.url}/kv/${encodeURIComponent(key)}?w=${w}`, { method: 'PUT', body: value, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })
  return { status: res.status, body: await res.json() as Record<string, unknown> }
}

async function get(node: Daemon, key: string, r: Level): Promise<ReadAnswer> {
  const res = await fetch(`${node.url}/kv/${encodeURIComponent(key)}?r=${r}`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })
  if (res.status !== 200) {
    await res.arrayBuffer()
    return { status: res.status }
  }
  return { status: 200, value: await res.text(), version: res.headers.get('hearsay-version') ?? '' }
}

function describe(read: ReadAnswer): string {
  return read.status === 200 ? `200 ${JSON.stringify(read.value)} ${read.version ?? ''}` : String(read.status)
}

interface MemberRow { id: string; state: string }

async function members(node: Daemon): Promise<MemberRow[]> {
  return await (await fetch(`${node.url}/members`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })).json() as MemberRow[]
}

async function idOf(node: Daemon): Promise<string> {
  return ((await (await fetch(`${node.url}/health`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })).json()) as { id: string }).id
}

async function waitAllAlive(nodes: readonly Daemon[], count: number): Promise<void> {
  await waitFor(`${count} alive members on every node`, MEMBERSHIP_TIMEOUT_MS, async () => {
    for (const node of nodes) {
      if ((await members(node)).filter((m) => m.state === 'alive').length !== count) return false
    }
    return true
  })
}

/** Waits until every observer sees each of `ids` in one of `states`. */
async function waitStates(observers: readonly Daemon[], ids: readonly string[], states: readonly string[]): Promise<void> {
  await waitFor(`${ids.join(', ')} ${states.join(' or ')} on ${observers.length} nodes`, MEMBERSHIP_TIMEOUT_MS, async () => {
    for (const observer of observers) {
      const rows = await members(observer)
      if (!ids.every((id) => states.includes(rows.find((m) => m.id === id)?.state ?? ''))) return false
    }
    return true
  })
}
const DOWN = ['suspect', 'dead'] as const

/**
 * Polls `probe` (which lists what is still wrong) until it lists nothing or `timeoutMs` passes, and
 * returns the last list, so the assertion that follows says exactly what never converged.
 */
async function untilNoProblems(what: string, timeoutMs: number, probe: () => Promise<string[]>): Promise<string[]> {
  let problems = [`${what}: never checked`]
  await waitFor(what, timeoutMs, async () => {
    problems = await probe()
    return problems.length === 0
  }).catch(() => undefined)
  return problems
}

/** What each node's R=1 read of each key disagrees with in `expected`. */
async function localReadMismatches(nodes: readonly Daemon[], expected: ReadonlyMap<string, FinalRead>): Promise<string[]> {
  const problems: string[] = []
  for (const node of nodes) {
    for (const [key, want] of expected) {
      try {
        const read = await get(node, key, 1)
        if (read.status !== 200 || read.value !== want.value || read.version !== want.version) {
          problems.push(`${node.url} ${key}: got ${describe(read)}, want ${JSON.stringify(want.value)} ${want.version}`)
        }
      } catch (error) {
        problems.push(`${node.url} ${key}: ${(error as Error).message}`)
      }
    }
  }
  return problems
}

/** Restarts a stopped node on its data dir and ports, in its cluster slot so teardown stops it. */
async function restart(cluster: Cluster, index: number, seed: Daemon, config: Record<string, unknown>): Promise<Daemon> {
  const old = cluster.nodes[index]!
  const node = await startDaemon({
    dataDir: old.dataDir, apiPort: old.apiPort, peerPort: old.peerPort,
    config: { ...config, node: { name: `node-${index + 1}` }, cluster: { seeds: [`127.0.0.1:${seed.peerPort}`] } },
  })
  cluster.nodes[index] = node
  return node
}

function replicationConfig(replication: Record<string, unknown>): Record<string, unknown> {
  return { ...FAST, replication: { timeoutMs: REPLICATION_TIMEOUT_MS, ...replication } }
}

function answeredWrite(answer: WriteAnswer, value: string): FinalRead {
  return { value, version: String(answer.body.version) }
}

t.test('five nodes with N=5', async (t) => {
  const config = replicationConfig({ factor: 5, hints: true })
  const cluster = await startCluster(5, () => config)
  t.teardown(() => cluster.stop())
  const nodes = cluster.nodes
  const first = nodes[0]!
  await waitAllAlive(nodes, 5)
  const ids = await Promise.all(nodes.map(idOf))

  await t.test('a W=all write on node 1 is at once readable with R=1 on every other node', async (t) => {
    const answer = await put(first, 'all-replicas', 'written with w=all', 'all')
    t.equal(answer.status, 200)
    t.match(answer.body, { key: 'all-replicas', w: 5, acks: 5, version: String })
    for (const node of nodes.slice(1)) {
      const read = await get(node, 'all-replicas', 1)
      t.equal(read.status, 200, `${node.url} has the key`)
      t.equal(read.value, 'written with w=all')
      t.equal(read.version, answer.body.version, 'the version the coordinator acknowledged')
    }
    const digests = await Promise.all(nodes.map(async (node) => ((await (await fetch(`${node.url}/status`)).json()) as { digest: string }).digest))
    t.equal(new Set(digests).size, 1, `every replica reports the same store digest (${digests.join(', ')})`)
  })

  /** Every write made while nodes were down, 503 included: all must be everywhere at the end. */
  const madeWhileDown = new Map<string, FinalRead>()

  await t.test('with two of five replicas killed, quorum writes still get at least 3 acks', async (t) => {
    await Promise.all([nodes[3]!.stop('SIGKILL'), nodes[4]!.stop('SIGKILL')])
    for (let i = 0; i < 4; i++) {
      const coordinator = nodes[i % 2]!
      const key = `two-down-${i}`
      const value = `value ${i} while two are down`
      const answer = await put(coordinator, key, value, 'quorum')
      t.equal(answer.status, 200, `${key} is acknowledged`)
      t.equal(answer.body.w, 3, 'dead members still count: a quorum of N=5 is 3')
      t.ok(typeof answer.body.acks === 'number' && answer.body.acks >= 3, `acks ${String(answer.body.acks)} ≥ 3`)
      madeWhileDown.set(key, answeredWrite(answer, value))
    }
  })

  await t.test('with three of five killed, a quorum write answers 503 (needed 3, fewer acks) within the replication deadline', async (t) => {
    await nodes[2]!.stop('SIGKILL')
    const started = performance.now()
    const answer = await put(first, 'three-down', 'kept despite the 503', 'quorum')
    const elapsedMs = performance.now() - started
    t.equal(answer.status, 503)
    t.equal(answer.body.needed, 3)
    t.ok(typeof answer.body.acks === 'number' && answer.body.acks < 3, `acks ${String(answer.body.acks)} < 3`)
    t.type(answer.body.error, 'string')
    t.type(answer.body.version, 'string', 'the 503 names the version that was written')
    t.equal(answer.body.outcome, 'unknown', 'a write short of its quorum is not a failure: it may still be applied and win')
    t.ok(elapsedMs <= REPLICATION_TIMEOUT_MS + DEADLINE_MARGIN_MS,
      `answered after ${Math.round(elapsedMs)} ms, within replication.timeoutMs ${REPLICATION_TIMEOUT_MS} + ${DEADLINE_MARGIN_MS} ms`)
    if (typeof answer.body.version === 'string') madeWhileDown.set('three-down', answeredWrite(answer, 'kept despite the 503'))
  })

  await t.test('restarted nodes end up holding every write made while they were down, the 503 one included', async (t) => {
    // Let the survivors notice the failures, so the restart is a real return of down members.
    await waitStates(nodes.slice(0, 2), ids.slice(2), DOWN)
    await Promise.all([2, 3, 4].map((index) => restart(cluster, index, first, config)))
    const problems = await untilNoProblems('every write on every node', CONVERGE_TIMEOUT_MS, () => localReadMismatches(cluster.nodes, madeWhileDown))
    t.same(problems, [], 'every node answers every write at R=1')
    t.equal(madeWhileDown.size, 5, 'four acknowledged writes and the 503 one were checked')
  })
})

t.test('three nodes with N=3, hints and anti-entropy off: read repair', async (t) => {
  const config = { ...replicationConfig({ factor: 3, hints: false }), antiEntropy: { enabled: false } }
  const cluster = await startCluster(3, () => config)
  t.teardown(() => cluster.stop())
  const [first, second] = cluster.nodes as [Daemon, Daemon, Daemon]
  await waitAllAlive(cluster.nodes, 3)
  const thirdId = await idOf(cluster.nodes[2]!)

  // Two keys the third node will hold an older version of, two it will not have at all.
  const keys = ['repair-0', 'repair-1', 'repair-2', 'repair-3']
  const old = new Map<string, FinalRead>()
  for (const key of keys.slice(0, 2)) {
    const answer = await put(first, key, `old ${key}`, 'all')
    t.equal(answer.status, 200, `${key}: first version on all three`)
    old.set(key, answeredWrite(answer, `old ${key}`))
  }

  await cluster.nodes[2]!.stop('SIGKILL')
  await waitStates([first, second], [thirdId], DOWN)
  const newest = new Map<string, FinalRead>()
  for (const key of keys) {
    const answer = await put(first, key, `new ${key}`, 'quorum')
    t.equal(answer.status, 200, `${key}: quorum write with one replica down`)
    newest.set(key, answeredWrite(answer, `new ${key}`))
  }
  // Let every replica request of those writes pass its deadline, so none can still reach the
  // third node once it is back: without hints, nothing should.
  await sleep(REPLICATION_TIMEOUT_MS)
  const third = await restart(cluster, 2, first, config)
  await waitAllAlive(cluster.nodes, 3)

  await t.test('a replica that missed writes while down is stale after restart when hints and anti-entropy are off', async (t) => {
    for (const key of keys) {
      const read = await get(third, key, 1)
      const before = old.get(key)
      if (before === undefined) {
        t.equal(read.status, 404, `${key}: never reached the restarted node`)
      } else {
        t.equal(read.status, 200, `${key}: the restarted node still has the old version`)
        t.equal(read.version, before.version)
        t.equal(read.value, before.value)
      }
    }
  })

  await t.test('an R=all read returns the newest version and repairs the stale replica', async (t) => {
    for (const key of keys) {
      const want = newest.get(key)!
      let read: ReadAnswer = { status: 0 }
      // R=all needs the restarted node's answer; retry only while the coordinator cannot reach it yet.
      await waitFor(`an R=all read of ${key}`, MEMBERSHIP_TIMEOUT_MS, async () => {
        read = await get(second, key, 'all')
        return read.status !== 503
      })
      t.equal(read.status, 200, `${key}: R=all through node 2`)
      t.equal(read.value, want.value)
      t.equal(read.version, want.version, 'the newest acknowledged version')
    }
    const problems = await untilNoProblems('read repair of the restarted node', CONVERGE_TIMEOUT_MS, () => localReadMismatches([third], newest))
    t.same(problems, [], 'the restarted node answers the newest version at R=1')
  })
})

t.test('three nodes with N=3 and hints on', async (t) => {
  const config = replicationConfig({ factor: 3, hints: true })
  const cluster = await startCluster(3, () => config)
  t.teardown(() => cluster.stop())
  const nodes = cluster.nodes
  await waitAllAlive(nodes, 3)

  await t.test('concurrent writers on different nodes: every replica converges on the newest version and no acknowledged write is lost', async (t) => {
    const keys = Array.from({ length: 10 }, (_, i) => `race-${i}`)
    const writersPerNode = 2
    const writePhaseMs = 3000
    const ops: WriteOp[] = []
    const stopAt = Date.now() + writePhaseMs
    let sequence = 0
    await Promise.all(nodes.flatMap((node, n) => Array.from({ length: writersPerNode }, async (_, w) => {
      while (Date.now() < stopAt) {
        const key = keys[randomInt(keys.length)]!
        const value = `node-${n + 1}/writer-${w}/${sequence++}/${randomBytes(4).toString('hex')}`
        const base = { node: `node-${n + 1}`, key, value }
        try {
          const answer = await put(node, key, value, 'quorum')
          const version = typeof answer.body.version === 'string' ? { version: answer.body.version } : {}
          ops.push({ ...base, outcome: answer.status === 200 ? 'ok' : 'failed', ...version })
        } catch {
          ops.push({ ...base, outcome: 'failed' })
        }
      }
    })))
    const ackedCount = ops.filter((op) => op.outcome === 'ok').length
    t.ok(ackedCount >= keys.length, `${ackedCount} of ${ops.length} writes acknowledged`)

    const finals = new Map<string, FinalRead | null>()
    const problems = await untilNoProblems('every node agrees on every key', CONVERGE_TIMEOUT_MS, async () => {
      const disagreements: string[] = []
      for (const key of keys) {
        const reads = await Promise.all(nodes.map((node) => get(node, key, 1)))
        const shown = reads.map(describe)
        if (new Set(shown).size !== 1) disagreements.push(`${key}: ${shown.join(' | ')}`)
        const read = reads[0]!
        finals.set(key, read.status === 200 ? { value: read.value!, version: read.version! } : null)
      }
      return disagreements
    })
    t.same(problems, [], 'all three replicas hold the same value and version of every key')
    t.same(checkLastWriteWins(ops, finals), [], 'the history is consistent with last write wins')
  })

  await t.test('hinted handoff: a node that was down receives the writes it missed, without any R=all read', async (t) => {
    const [first, second] = nodes as [Daemon, Daemon, Daemon]
    const thirdId = await idOf(nodes[2]!)
    await nodes[2]!.stop('SIGKILL')
    // Dead, not merely suspect: a suspect replica is still sent the write (it may well be alive),
    // which would reach the restarted node directly instead of through a hint.
    await waitStates([first, second], [thirdId], ['dead'])
    const missed = new Map<string, FinalRead>()
    for (let i = 0; i < 6; i++) {
      const key = `handoff-${i}`
      const answer = await put(i % 2 === 0 ? first : second, key, `missed ${i}`, 'quorum')
      t.equal(answer.status, 200, `${key}: quorum write with one replica down`)
      missed.set(key, answeredWrite(answer, `missed ${i}`))
    }
    const third = await restart(cluster, 2, first, config)
    const problems = await untilNoProblems('hinted handoff to the restarted node', CONVERGE_TIMEOUT_MS, () => localReadMismatches([third], missed))
    t.same(problems, [], 'the restarted node answers every missed write at R=1')
    // Anti-entropy (on the member turning alive) may bring the writes over before the next
    // handoff pass: the hints are still delivered, on that pass.
    let metrics = ''
    await waitFor('the coordinator to hand off its hints', CONVERGE_TIMEOUT_MS, async () => {
      metrics = await (await fetch(`${first.url}/metrics`)).text()
      return /hearsay_replication_hints_handed_off_total\{result="delivered"\} [1-9]/.test(metrics)
    }).catch(() => undefined)
    t.match(metrics, /hearsay_replication_hints_stored_total [1-9]/, 'the coordinator counted the hints it stored')
    t.match(metrics, /hearsay_replication_hints_handed_off_total\{result="delivered"\} [1-9]/, 'and the ones it delivered')
  })
})
