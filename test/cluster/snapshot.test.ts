import t from 'tap'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { cliBin, daemonBin, runProgram, startCluster, startDaemon, waitFor, type Daemon } from '../helpers/daemon.js'

/**
 * Snapshot and restore of one node of a three-node cluster, with real daemons and the CLI:
 * save node-2's store, kill it, wipe its data dir, restore it from the snapshot and start it
 * again; after a sync its digest equals its peers'.
 */

const FAST = { membership: { probeIntervalMs: 500, probeTimeoutMs: 200, gossipIntervalMs: 100, pushPullIntervalMs: 5000 } }

async function status(node: Daemon): Promise<{ id: string; digest: string; keys: number }> {
  return await (await fetch(`${node.url}/status`)).json() as { id: string; digest: string; keys: number }
}

t.test('save a snapshot of node-2, wipe it, restore, rejoin: digests agree after a sync', async (t) => {
  const cluster = await startCluster(3, () => FAST)
  t.teardown(() => cluster.stop())
  const [first, second, third] = cluster.nodes as [Daemon, Daemon, Daemon]
  const work = mkdtempSync(join(tmpdir(), 'hearsay-snapshot-'))
  t.teardown(() => rmSync(work, { recursive: true, force: true }))
  await waitFor('three alive members on node-1', 30_000, async () => {
    const rows = await (await fetch(`${first.url}/members`)).json() as { state: string }[]
    return rows.length === 3 && rows.every((m) => m.state === 'alive')
  })
  for (const [index, node] of [first, second, third].entries()) {
    const ops = Array.from({ length: 50 }, (_, i) => ({ op: 'put', key: `before/${index}/${i}`, value: Buffer.from(`v${i}`).toString('base64') }))
    t.equal((await fetch(`${node.url}/batch?w=all`, { method: 'POST', body: JSON.stringify({ ops }) })).status, 200)
  }
  const secondId = (await status(second)).id

  const file = join(work, 'node-2.hsnap')
  const saved = await runProgram(cliBin, ['--node', second.url, 'snapshot', 'save', file])
  t.equal(saved.code, 0, saved.stderr)
  t.match(saved.stdout.toString(), new RegExp(`^saved ${file}: node node-2 \\(${secondId}\\), 150 records, 256 partitions`))
  t.notOk(existsSync(`${file}.partial`), 'no partial file is left')

  // Writes after the snapshot: the restored node gets them from its peers.
  const ops = Array.from({ length: 20 }, (_, i) => ({ op: 'put', key: `after/${i}`, value: Buffer.from(`a${i}`).toString('base64') }))
  t.equal((await fetch(`${first.url}/batch?w=all`, { method: 'POST', body: JSON.stringify({ ops }) })).status, 200)

  await second.stop('SIGKILL')
  rmSync(second.dataDir, { recursive: true, force: true })
  const env = { HEARSAY_NODE_DATA_DIR: second.dataDir }
  const refusedPartitions = await runProgram(daemonBin, ['--restore', file], { env: { ...env, HEARSAY_PARTITIONS: '64' } })
  t.equal(refusedPartitions.code, 1)
  t.match(refusedPartitions.stderr, /restore refused: .* 256 partitions, this node is configured with partitions = 64/)
  const restored = await runProgram(daemonBin, ['--restore', file], { env })
  t.equal(restored.code, 0, restored.stderr)
  t.match(restored.stdout.toString(), /restored .* node node-2/)
  const again = await runProgram(daemonBin, ['--restore', file], { env })
  t.equal(again.code, 1, 'a second restore into the now non-empty dir is refused')
  t.match(again.stderr, /is not empty/)

  const back = await startDaemon({
    dataDir: second.dataDir, apiPort: second.apiPort, peerPort: second.peerPort,
    config: { ...FAST, node: { name: 'node-2' }, cluster: { seeds: [`127.0.0.1:${first.peerPort}`] } },
  })
  cluster.nodes[1] = back
  t.equal((await status(back)).id, secondId, 'the restored node is the same member')
  t.equal((await runProgram(cliBin, ['--node', back.url, 'sync'])).code, 0)
  await waitFor('equal digests on all three nodes', 30_000, async () => {
    const digests = await Promise.all([first, back, third].map(async (node) => (await status(node)).digest))
    if (new Set(digests).size === 1) return true
    await runProgram(cliBin, ['--node', back.url, 'sync'])
    return false
  })
  const [a, b, c] = await Promise.all([first, back, third].map(status))
  t.equal(b!.digest, a!.digest)
  t.equal(b!.digest, c!.digest)
  t.equal(b!.keys, 170, 'the snapshot\'s 150 keys and the 20 written since')
})
