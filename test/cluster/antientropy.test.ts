import t from 'tap'
import { randomBytes } from 'node:crypto'
import { rmSync } from 'node:fs'
import { cliBin, runProgram, startCluster, startDaemon, waitFor, type Cluster, type Daemon } from '../helpers/daemon.js'

/**
 * Anti-entropy with real daemons: a node that missed writes, deletes and overwrites while down
 * catches up by moving only what differs; a wiped node rebuilds; deletes stay deleted after a
 * tombstone grace and a long absence.
 */

/** No scheduled rounds during the test (Jan 1st, midnight): only triggered syncs run. */
const FAR_SCHEDULE = '0 0 0 1 1 *'
const FAST = { membership: { probeIntervalMs: 500, probeTimeoutMs: 200, gossipIntervalMs: 100, pushPullIntervalMs: 5000 } }
const REQUEST_TIMEOUT_MS = 15_000
const CONVERGE_TIMEOUT_MS = 60_000
const KEY_COUNT = 5000
const VALUE_BYTES = 1024
/** Keys written per batch request while loading. */
const LOAD_BATCH = 500

interface Status { digest: string; keys: number; repairing: boolean; members: { alive: number } }

async function status(node: Daemon): Promise<Status> {
  return await (await fetch(`${node.url}/status`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })).json() as Status
}

async function metric(node: Daemon, pattern: RegExp): Promise<number> {
  const text = await (await fetch(`${node.url}/metrics`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })).text()
  let sum = 0
  for (const line of text.split('\n')) {
    const match = pattern.exec(line)
    if (match !== null) sum += Number(match[1])
  }
  return sum
}

const antiEntropyBytes = (node: Daemon): Promise<number> => metric(node, /^hearsay_antientropy_bytes_total\{direction="(?:sent|received)"\} (\d+(?:\.\d+)?(?:e\+\d+)?)$/)

async function put(node: Daemon, key: string, value: Uint8Array | string): Promise<number> {
  const res = await fetch(`${node.url}/kv/${encodeURIComponent(key)}?w=all`, { method: 'PUT', body: value, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })
  await res.arrayBuffer()
  return res.status
}

async function del(node: Daemon, key: string): Promise<number> {
  const res = await fetch(`${node.url}/kv/${encodeURIComponent(key)}?w=quorum`, { method: 'DELETE', signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })
  await res.arrayBuffer()
  return res.status
}

async function getLocal(node: Daemon, key: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`${node.url}/kv/${encodeURIComponent(key)}?r=1`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })
  return { status: res.status, body: await res.text() }
}

async function batchPut(node: Daemon, entries: readonly [string, Uint8Array][]): Promise<number> {
  const ops = entries.map(([key, value]) => ({ op: 'put', key, value: Buffer.from(value).toString('base64') }))
  const res = await fetch(`${node.url}/batch?w=all`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ops }), signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS * 4) })
  await res.arrayBuffer()
  return res.status
}

/** Load attempts per batch: the load sets the test up, and what it measures starts after it. */
const LOAD_ATTEMPTS = 3

/**
 * batchPut for loading: a batch answered 503 is sent again (the same values; W=all of 500 KiB can
 * outlast replication.timeoutMs when four test files run at once, seen once in 27 runs).
 */
async function loadBatch(node: Daemon, entries: readonly [string, Uint8Array][]): Promise<number> {
  let status = 0
  for (let attempt = 1; attempt <= LOAD_ATTEMPTS && status !== 200; attempt++) status = await batchPut(node, entries)
  return status
}

async function waitAlive(nodes: readonly Daemon[], count: number): Promise<void> {
  await waitFor(`${count} alive members on every node`, CONVERGE_TIMEOUT_MS, async () => {
    for (const node of nodes) if ((await status(node)).members.alive !== count) return false
    return true
  })
}

async function waitSameDigest(nodes: readonly Daemon[]): Promise<string[]> {
  let digests: string[] = []
  await waitFor('equal digests on every node', CONVERGE_TIMEOUT_MS, async () => {
    digests = await Promise.all(nodes.map(async (node) => (await status(node)).digest))
    return digests.every((digest) => digest === digests[0])
  }).catch(() => undefined)
  return digests
}

async function restart(cluster: Cluster, index: number, config: Record<string, unknown>, options: { wipe?: boolean; waitHealthy?: boolean } = {}): Promise<Daemon> {
  const old = cluster.nodes[index]!
  const seed = cluster.nodes[index === 0 ? 1 : 0]!
  const node = await startDaemon({
    ...(options.wipe === true ? {} : { dataDir: old.dataDir }),
    apiPort: old.apiPort, peerPort: old.peerPort,
    ...(options.waitHealthy === false ? { waitHealthy: false } : {}),
    config: { ...config, node: { name: `node-${index + 1}` }, cluster: { seeds: [`127.0.0.1:${seed.peerPort}`] } },
  })
  cluster.nodes[index] = node
  return node
}

t.test('three nodes, full replication, hints off: a node that was down catches up moving only what differs', async (t) => {
  const config = { ...FAST, replication: { factor: 3, hints: false }, antiEntropy: { schedule: FAR_SCHEDULE } }
  const cluster = await startCluster(3, () => config)
  t.teardown(() => cluster.stop())
  const [first] = cluster.nodes as [Daemon, Daemon, Daemon]
  await waitAlive(cluster.nodes, 3)

  const value = randomBytes(VALUE_BYTES)
  for (let start = 0; start < KEY_COUNT; start += LOAD_BATCH) {
    const entries = Array.from({ length: LOAD_BATCH }, (_, i): [string, Uint8Array] => [`k/${String(start + i).padStart(5, '0')}`, value])
    t.equal(await loadBatch(first, entries), 200, `keys ${start}… written to all three`)
  }
  const loaded = await waitSameDigest(cluster.nodes)
  t.ok(loaded.every((digest) => digest === loaded[0]), 'all three hold the same records after the load')

  await cluster.nodes[2]!.stop('SIGTERM')
  const writes = new Map<string, string>()
  for (let i = 0; i < 100; i++) writes.set(`new/${i}`, `new value ${i}`)
  for (let i = 0; i < 50; i++) writes.set(`k/${String(i * 7).padStart(5, '0')}`, `overwritten ${i}`)
  const deleted = Array.from({ length: 20 }, (_, i) => `k/${String(4000 + i * 3).padStart(5, '0')}`)
  for (const [key, text] of writes) {
    // W=all cannot be met with a replica down: the two live ones still store it (503 or not).
    await put(first, key, text)
  }
  for (const key of deleted) t.equal(await del(first, key), 200, `${key} deleted on the two live nodes`)

  const third = await restart(cluster, 2, config)
  const bytesBefore = await antiEntropyBytes(third)
  const digests = await waitSameDigest(cluster.nodes)
  t.ok(digests.length === 3 && digests.every((digest) => digest === digests[0]), `the restarted node's digest equals the others' (${digests.join(', ')})`)

  for (const [key, text] of writes) {
    const read = await getLocal(third, key)
    if (read.status !== 200 || read.body !== text) t.fail(`${key}: R=1 on the restarted node gave ${read.status} ${read.body.slice(0, 40)}`)
  }
  t.pass('every new and overwritten key reads its newest value with R=1 on the restarted node')
  for (const key of deleted) t.equal((await getLocal(third, key)).status, 404, `${key} is deleted on the restarted node too`)

  const moved = (await antiEntropyBytes(third)) - bytesBefore
  const fullCopy = KEY_COUNT * VALUE_BYTES
  t.ok(moved > 0, `anti-entropy moved ${moved} bytes to and from the restarted node`)
  t.ok(moved < fullCopy / 4, `that is under 25% of a full copy (${moved} < ${fullCopy / 4})`)
  if (moved >= fullCopy / 4) {
    const breakdown = (await (await fetch(`${third.url}/metrics`)).text()).split('\n').filter((line) => /^hearsay_(peer_bytes_total\{direction="\w+",type="sync|antientropy_(records|rounds|partitions))/.test(line))
    t.comment(breakdown.join('\n'))
  }

  await t.test('a wiped node (empty data dir, same config) rejoins as a new member and converges', async (t) => {
    const oldId = (await (await fetch(`${third.url}/health`)).json() as { id: string }).id
    await third.stop('SIGKILL')
    const wiped = await restart(cluster, 2, config, { wipe: true })
    t.teardown(() => rmSync(wiped.dataDir, { recursive: true, force: true }))
    const newId = (await (await fetch(`${wiped.url}/health`)).json() as { id: string }).id
    t.not(newId, oldId, 'an empty data dir means a new node id')
    const after = await waitSameDigest(cluster.nodes)
    t.ok(after.length === 3 && after.every((digest) => digest === after[0]), `the wiped node's digest equals the others' (${after.join(', ')})`)
    if (!after.every((digest) => digest === after[0])) t.comment(wiped.output().split('\n').filter((line) => /"level":"(warn|error)"|anti-entropy round/.test(line)).slice(0, 12).join('\n'))
    t.equal(after[0], digests[0], 'and nothing else changed meanwhile')
    for (const [key, text] of [...writes].slice(0, 20)) t.equal((await getLocal(wiped, key)).body, text, `${key} reads with R=1 on the wiped node`)
    t.equal((await getLocal(wiped, deleted[0]!)).status, 404, 'a deleted key stays deleted there')
  })
})

t.test('deletes stay deleted: tombstones wait for every replica, and a node away longer than the grace repairs before it serves', async (t) => {
  const GRACE_MS = 3000
  const config = {
    ...FAST,
    replication: { factor: 3, hints: false },
    // The sync between the two live nodes right after the kill still counts the killed one as a
    // member and waits out its requests to it: 2 s (5 records here), not the default 10 s.
    antiEntropy: { schedule: FAR_SCHEDULE, requestTimeoutMs: 2000 },
    store: { tombstoneGrace: `${GRACE_MS}ms`, gcIntervalMs: 200 },
  }
  const cluster = await startCluster(3, () => config)
  t.teardown(() => cluster.stop())
  const [first, second] = cluster.nodes as [Daemon, Daemon, Daemon]
  await waitAlive(cluster.nodes, 3)
  const keys = ['gone-1', 'gone-2', 'gone-3', 'kept-1', 'kept-2']
  for (const key of keys) t.equal(await put(first, key, `value of ${key}`), 200, `${key} written to all three`)

  await cluster.nodes[2]!.stop('SIGKILL')
  const killedAtMs = Date.now()
  const gone = keys.slice(0, 3)
  for (const key of gone) t.equal(await del(first, key), 200, `${key} deleted while the third node is down`)
  // The live nodes agree with each other, but the third replica may still hold the values: past
  // the grace, GC must keep the tombstones and say so (hearsay_store_gc_waiting_records).
  const syncLive = await fetch(`${first.url}/admin/sync`, { method: 'POST', signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })
  t.equal(syncLive.status, 200, 'a sync round between the two live nodes')
  await syncLive.arrayBuffer()
  await waitFor('GC on both live nodes keeping the three tombstones past their grace', CONVERGE_TIMEOUT_MS, async () => {
    for (const node of [first, second]) if (await metric(node, /^hearsay_store_gc_waiting_records (\d+)$/) !== 3) return false
    return true
  })
  for (const node of [first, second]) {
    t.equal((await status(node)).keys, 5, `${node.url} still holds the three tombstones while a replica is away`)
    t.equal(await metric(node, /^hearsay_store_gc_collected_total\{kind="tombstone"\} (\d+)$/), 0, 'nothing collected')
  }
  // The premise: the third node away longer than the grace (its last contact was before the kill).
  await waitFor('the third node away longer than the grace', CONVERGE_TIMEOUT_MS, async () => Date.now() - killedAtMs > GRACE_MS + 500)

  // Automatic rounds off on the returning node, so the test sees the repairing state before an
  // operator's sync (POST /admin/sync, which `hearsay sync` calls) repairs it.
  const third = await restart(cluster, 2, { ...config, antiEntropy: { ...config.antiEntropy, enabled: false } }, { waitHealthy: false })
  await waitFor('the returning node answers /health', CONVERGE_TIMEOUT_MS, async () => (await fetch(`${third.url}/health`)).status === 503)
  await waitAlive(cluster.nodes, 3)
  const repairing = await status(third)
  t.equal(repairing.repairing, true, 'away longer than the grace: it repairs before serving')
  t.equal(repairing.keys, 5, 'it came back holding the three deleted values')
  const refused = await fetch(`${third.url}/kv/gone-1?r=1`)
  t.equal(refused.status, 503, 'a read on it is refused while it repairs')
  t.match(await refused.json(), { error: /repairing/ }, 'with the reason')
  t.equal((await getLocal(first, 'gone-1')).status, 404, 'the others still answer, and the deleted key is absent there')
  const sync = await runProgram(cliBin, ['sync', '--node', third.url, '--json'], { timeoutMs: REQUEST_TIMEOUT_MS })
  t.equal(sync.code, 0, `hearsay sync on the returning node (${sync.stderr.trim()})`)
  t.match(JSON.parse(sync.stdout.toString()), { mode: 'repair', repairing: false }, 'the round ran in repair mode and finished the repair')
  t.equal((await fetch(`${third.url}/health`)).status, 200, 'serving again')
  const dropped = await metric(third, /^hearsay_antientropy_dropped_total (\d+)$/)
  t.equal(dropped, 3, 'it dropped the three values whose tombstones, past the grace, the others hold')
  for (const node of cluster.nodes) {
    for (const key of gone) t.equal((await getLocal(node, key)).status, 404, `${key} stays deleted on ${node.url}`)
    for (const key of keys.slice(3)) t.equal((await getLocal(node, key)).status, 200, `${key} is still there on ${node.url}`)
  }
  // A round from every node: nothing may bring the deleted values back.
  for (const node of cluster.nodes) {
    const res = await fetch(`${node.url}/admin/sync`, { method: 'POST', signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })
    t.equal(res.status, 200, `POST /admin/sync on ${node.url}`)
    await res.arrayBuffer()
  }
  // Every replica now agreed with the holders of the tombstones: collection may go ahead.
  await waitFor('the tombstones collected everywhere', CONVERGE_TIMEOUT_MS, async () => {
    for (const node of cluster.nodes) if ((await status(node)).keys !== 2) return false
    return true
  })
  t.pass('every node holds only the two kept records')
  const digests = await waitSameDigest(cluster.nodes)
  t.ok(digests.every((digest) => digest === digests[0]), 'all three agree')

  // The whole cluster off for longer than the grace (a lab powered down over a holiday): every
  // node restarts into repair mode, and with it every replica of every partition. Until repairing
  // replicas answered each other's repair sessions, each waited for one that was not repairing and
  // all three answered 503 forever (simulator seeds 270 and 5, scenario everyone-away).
  t.equal(await put(first, 'written-before-the-outage', 'still here'), 200, 'a last write to all three')
  t.equal(await del(first, 'kept-2'), 200, 'and a last delete')
  await Promise.all(cluster.nodes.map((node) => node.stop('SIGKILL')))
  const outageStartedMs = Date.now()
  await waitFor('every node off longer than the grace', CONVERGE_TIMEOUT_MS, async () => Date.now() - outageStartedMs > GRACE_MS + 500)
  // Scheduled rounds stay off: the repair must come from the rounds a member's return starts.
  for (const index of [0, 1, 2]) await restart(cluster, index, config, { waitHealthy: false })
  await waitFor('every node repaired from the others and serving (/health 200)', CONVERGE_TIMEOUT_MS, async () => {
    for (const node of cluster.nodes) if ((await fetch(`${node.url}/health`)).status !== 200) return false
    return true
  })
  for (const node of cluster.nodes) {
    t.equal((await getLocal(node, 'written-before-the-outage')).body, 'still here', `the last write reads on ${node.url}`)
    t.equal((await getLocal(node, 'kept-2')).status, 404, `the last delete holds on ${node.url}`)
    t.equal((await getLocal(node, 'kept-1')).status, 200, `kept-1 is still there on ${node.url}`)
  }
})
