import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { checkCounter, HistoryRecorder } from '../helpers/lin-recorder.js'
import { checkLinearizable, describeOperation } from '../helpers/linearizability.js'
import { runWorkload } from '../helpers/lin-workload.js'
import { cliBin, runProgram, startCluster, startDaemon, waitFor, type Daemon } from '../helpers/daemon.js'

/**
 * Linearizable operations on real daemons while the acceptor sets change (issue 13): a fourth
 * node joins and one of the first three leaves during CAS, increment and linearizable-read
 * traffic; the history must be linearizable and every counter within [K, K+U], and the nodes must
 * have caught up acceptor state for the partitions that moved. The same cluster first runs the
 * linearizable CLI commands (`cas`, `incr`, `get --linearizable`, `del --if-version`, a plain write
 * to a strong key refused), so both share one start-up.
 */

const SEED = Number(process.env.LIN_SEED ?? 21)
const FAST = { membership: { probeIntervalMs: 500, probeTimeoutMs: 200, gossipIntervalMs: 100, pushPullIntervalMs: 5000 } }
const MEMBERSHIP_TIMEOUT_MS = 30_000
/** Bound on one CLI run; far above replication.timeoutMs so a 503 arrives as a 503. */
const CLI_TIMEOUT_MS = 30_000
const REQUEST_TIMEOUT_MS = 5_000
/** Load before the join, between the join and the leave, and after the leave. */
const BEFORE_JOIN_MS = 1_500
const BEFORE_LEAVE_MS = 2_500
const AFTER_LEAVE_MS = 2_500
const CLIENTS = 4
const MAX_OPS_PER_CLIENT = 2_000
const REGISTER_KEYS = ['set-lock', 'set-config']
const COUNTER_KEYS = ['set-hits', 'set-seq']
/** Final reads retried this long while the last catch-ups finish (a read may answer 503 meanwhile). */
const FINAL_READ_TIMEOUT_MS = 20_000

function config(name: string): Record<string, unknown> {
  return { ...FAST, node: { name }, replication: { factor: 3 } }
}

async function aliveEverywhere(nodes: readonly Daemon[], count: number): Promise<void> {
  await waitFor(`${count} alive members on every node`, MEMBERSHIP_TIMEOUT_MS, async () => {
    for (const node of nodes) {
      const members = await (await fetch(`${node.url}/members`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })).json() as { state: string }[]
      if (members.filter((m) => m.state === 'alive').length !== count) return false
    }
    return true
  })
}

async function metric(node: Daemon, name: string): Promise<number> {
  const text = await (await fetch(`${node.url}/metrics`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })).text()
  const line = text.split('\n').find((l) => l.startsWith(`${name} `))
  return line === undefined ? 0 : Number(line.split(' ')[1])
}

t.test('linearizable operations on a three-node cluster, then while a node joins and another leaves', async (t) => {
  const cluster = await startCluster(3, (i) => config(`node-${i + 1}`))
  t.teardown(() => cluster.stop())
  await aliveEverywhere(cluster.nodes, 3)

  t.test('cas, incr and get --linearizable through the CLI', async (t) => {
    const [a, b, c] = cluster.nodes as [Daemon, Daemon, Daemon]
    const cli = async (node: Daemon, ...args: string[]) => {
      const result = await runProgram(cliBin, ['--node', node.url, ...args], { env: {}, timeoutMs: CLI_TIMEOUT_MS })
      return { code: result.code, out: result.stdout.toString('utf8'), err: result.stderr }
    }

    const taken = await cli(a, '--json', 'cas', 'lock', 'owner-a', '--if-version', 'absent')
    t.equal(taken.code, 0, taken.err)
    const { version } = JSON.parse(taken.out) as { version: string }
    const lost = await cli(b, 'cas', 'lock', 'owner-b', '--if-version', 'absent')
    t.equal(lost.code, 1, 'the second taker is refused')
    t.match(lost.err, /is not absent.*HTTP 409/)

    const read = await cli(c, 'get', 'lock', '--linearizable')
    t.equal(read.out, 'owner-a', 'any node reads the holder linearizably')

    const plain = await fetch(`${c.url}/kv/lock`, { method: 'PUT', body: 'sneaky' })
    t.equal(plain.status, 409)
    t.match(await plain.json(), { error: /strong/ }, 'a plain write to a strong key is refused')

    const released = await cli(b, 'del', 'lock', '--if-version', version)
    t.equal(released.code, 0, released.err)
    t.equal((await fetch(`${c.url}/kv/lock?consistency=linearizable`)).status, 404, 'released')

    const counts = await Promise.all([a, b, c, a].map((node) => cli(node, 'incr', 'visits')))
    for (const count of counts) t.equal(count.code, 0, count.err)
    t.same(counts.map((count) => Number(count.out)).sort((x, y) => x - y), [1, 2, 3, 4], 'increments from absent, each answered with its own value')
    t.equal((await cli(a, 'incr', 'visits', '--by=-4')).out, '0\n')
    const word = await fetch(`${a.url}/kv/word?ifVersion=absent`, { method: 'PUT', body: 'hello' })
    t.equal(word.status, 200)
    t.match((await cli(b, 'incr', 'word')).err, /decimal integer.*HTTP 409/)
  })

  t.test(`CAS, increments and linearizable reads stay linearizable while node-4 joins and node-2 leaves (seed ${SEED}, LIN_SEED replays the choices)`, async (t) => {
    const recorder = new HistoryRecorder({ requestTimeoutMs: REQUEST_TIMEOUT_MS })
    const serving = [...cluster.nodes]
    let stopped = false
    const load = runWorkload(recorder, {
      nodes: () => serving.map((node) => node.url),
      registerKeys: REGISTER_KEYS, counterKeys: COUNTER_KEYS,
      clients: CLIENTS, opsPerClient: MAX_OPS_PER_CLIENT, stop: () => stopped, seed: SEED,
    })
    let joined: Daemon
    try {
      await sleep(BEFORE_JOIN_MS)
      joined = await startDaemon({ config: { ...config('node-4'), cluster: { seeds: [`127.0.0.1:${cluster.nodes[0]!.peerPort}`] } } })
      cluster.nodes.push(joined)
      await aliveEverywhere(cluster.nodes, 4)
      serving.push(joined)
      await sleep(BEFORE_LEAVE_MS)
      const leaving = cluster.nodes[1]!
      serving.splice(serving.indexOf(leaving), 1)
      // SIGTERM: a graceful stop announces `left`, which takes node-2 out of placement.
      await leaving.stop('SIGTERM')
      await sleep(AFTER_LEAVE_MS)
    } finally {
      stopped = true
    }
    const summary = await load
    t.comment(`${summary.sent} operations sent: ${JSON.stringify(summary.outcomes)}; left out: ${JSON.stringify(Object.fromEntries(recorder.omitted))}`)
    t.ok((summary.outcomes.ok ?? 0) > 20, 'changes were acknowledged')
    t.ok((summary.outcomes.read ?? 0) > 20, 'linearizable reads were answered')

    const finals = new Map<string, string | null>()
    for (const key of [...REGISTER_KEYS, ...COUNTER_KEYS]) {
      for (const node of serving) {
        await waitFor(`a linearizable read of ${key} through ${node.url}`, FINAL_READ_TIMEOUT_MS, async () => {
          const output = await recorder.read(node.url, key, 'final')
          if (output?.kind === 'read') finals.set(key, output.value)
          return output?.kind === 'read'
        })
      }
    }
    const result = checkLinearizable(recorder.ops)
    t.equal(result.verdict, 'linearizable', result.verdict === 'not-linearizable' ? result.explanation : `${result.verdict}: ${JSON.stringify(result.keys)}`)
    for (const key of COUNTER_KEYS) {
      t.equal(checkCounter(recorder.ops, key, finals.get(key) ?? null), undefined, `${key} ends at ${finals.get(key) ?? 'absent'}, within [K, K+U]`)
    }
    t.ok(await metric(joined!, 'hearsay_paxos_catch_ups_total') > 0, 'node-4 caught up acceptor state for the partitions it took over')
    for (const node of serving) t.equal(await metric(node, 'hearsay_paxos_partitions_catching_up'), 0, `${node.url} has no partition left catching up`)
    if (result.verdict !== 'linearizable') {
      t.comment(recorder.ops.filter((op) => op.output.kind === 'unknown').slice(0, 10).map((op) => describeOperation(op)).join('\n'))
    }
  })
})
