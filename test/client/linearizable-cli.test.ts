import t from 'tap'
import { cliBin, runProgram, startCluster, waitFor, type Daemon } from '../helpers/daemon.js'

/**
 * The linearizable commands against three real daemons (the protocol under faults is
 * test/cluster/linearizable*.test.ts): `cas`, `incr`, `get --linearizable`, `del --if-version`, and a
 * plain write to a strong key refused.
 */

const MEMBERSHIP_TIMEOUT_MS = 30_000
/** Bound on one CLI run; far above replication.timeoutMs so a 503 arrives as a 503. */
const CLI_TIMEOUT_MS = 30_000

t.test('cas, incr and get --linearizable on a three-node cluster', async t => {
  const cluster = await startCluster(3)
  t.teardown(() => cluster.stop())
  const [a, b, c] = cluster.nodes as [Daemon, Daemon, Daemon]
  await waitFor('every node sees three alive members', MEMBERSHIP_TIMEOUT_MS, async () => {
    for (const node of cluster.nodes) {
      const members = await (await fetch(`${node.url}/members`)).json() as { state: string }[]
      if (members.filter((m) => m.state === 'alive').length !== 3) return false
    }
    return true
  })
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
