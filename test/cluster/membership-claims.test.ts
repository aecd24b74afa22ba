import t from 'tap'
import { pino } from 'pino'
import { asNodeId } from '../../lib/clock/version.js'
import type { MemberRecord } from '../../lib/membership/messages.js'
import { MAX_NEW_MEMBERS_PER_MESSAGE } from '../../lib/membership/swim.js'
import { systemClock } from '../../lib/runtime/clock.js'
import { createRandom } from '../../lib/runtime/random.js'
import { WsTransport } from '../../lib/transport/ws-transport.js'
import { freePort, startCluster, waitFor, type Daemon } from '../helpers/daemon.js'

/**
 * Issue 17, item 4, on real daemons: a process that knows the cluster secret joins as a member
 * ("mallory", our own WsTransport) and tells node 1 lies about the others. Node 1 must keep the
 * real members, with their real addresses, in service, and take in a bounded number of invented
 * members. Before the bounds, one such member evicted a live node for good ("left" at 2^53 − 1),
 * took over another's traffic ("alive" with its own address) and flooded the member list.
 */

const SECRET = 'membership-claims-test-secret'
const FAST = { probeIntervalMs: 500, probeTimeoutMs: 200, gossipIntervalMs: 100, pushPullIntervalMs: 5000 }
const TIMEOUT_MS = 30_000
const REQUEST_TIMEOUT_MS = 10_000
const WRITES = 20

interface MemberRow { id: string; name: string; peer: string; api: string; state: string; incarnation: number }

async function members(node: Daemon): Promise<MemberRow[]> {
  return await (await fetch(`${node.url}/members`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })).json() as MemberRow[]
}

function record(row: MemberRow, changes: Partial<MemberRecord>): MemberRecord {
  return { id: asNodeId(row.id), name: row.name, peer: row.peer, api: row.api, incarnation: row.incarnation, state: 'alive', ...changes }
}

t.test('a member that knows the secret can neither evict nor impersonate the others, and introduces few members at once', async (t) => {
  const cluster = await startCluster(3, () => ({ cluster: { secret: SECRET }, membership: FAST }))
  t.teardown(() => cluster.stop())
  const [first, second, third] = cluster.nodes as [Daemon, Daemon, Daemon]
  await waitFor('3 alive members on node 1', TIMEOUT_MS, async () => (await members(first)).filter((m) => m.state === 'alive').length === 3)
  const real = await members(first)
  const byName = (name: string): MemberRow => real.find((m) => m.name === name) as MemberRow
  const [node2, node3] = [byName('node-2'), byName('node-3')]

  const port = await freePort()
  const self: MemberRecord = { id: asNodeId('00000000000000aa'), name: 'mallory', peer: `127.0.0.1:${port}`, api: `127.0.0.1:${port}`, incarnation: 1, state: 'alive' }
  const mallory = new WsTransport({
    bindHost: '127.0.0.1', bindPort: port, local: self, clusterName: 'hearsay', secret: SECRET,
    log: pino({ level: 'silent' }), clock: systemClock, random: createRandom(1),
  })
  await mallory.start()
  t.teardown(() => mallory.close())
  const to = byName('node-1').peer
  mallory.send(to, { type: 'pushPull', body: { members: [self], join: true } })
  await waitFor('mallory listed by node 1', TIMEOUT_MS, async () => (await members(first)).some((m) => m.name === 'mallory'))

  // Eviction: "node 2 left", said by mallory, far above node 2's incarnation and just above it.
  // (One at 2^53 − 1 is refused by frame validation: test/membership/messages.test.ts.)
  mallory.send(to, { type: 'gossip', body: { gossip: [record(node2, { state: 'left', incarnation: node2.incarnation + 2 ** 30 })] } })
  mallory.send(to, { type: 'gossip', body: { gossip: [record(node2, { state: 'left', incarnation: node2.incarnation + 1 })] } })
  // Impersonation: "node 3 is alive at mallory's address", at a higher incarnation.
  mallory.send(to, { type: 'gossip', body: { gossip: [record(node3, { incarnation: node3.incarnation + 1, peer: self.peer, api: self.api })] } })

  // Observable end of the lies: node 1 has taken in mallory's own news sent after them.
  mallory.send(to, { type: 'gossip', body: { gossip: [{ ...self, incarnation: 2 }] } })
  await waitFor('node 1 to take in the news sent after the lies', TIMEOUT_MS,
    async () => (await members(first)).find((m) => m.name === 'mallory')?.incarnation === 2)
  const after = await members(first)
  const now2 = after.find((m) => m.id === node2.id)
  const now3 = after.find((m) => m.id === node3.id)
  t.ok(now2 !== undefined && now2.state !== 'left', `node 2 is not evicted (${now2?.state})`)
  t.ok(now2 !== undefined && now2.incarnation < 2 ** 20, 'no incarnation beyond the step bound was taken')
  t.same([now3?.peer, now3?.api], [node3.peer, node3.api], 'node 3 keeps its own addresses: relayed address news is ignored')
  await waitFor('node 2 alive on node 1 (refuted, if the relayed left was believed at all)', TIMEOUT_MS,
    async () => (await members(first)).find((m) => m.id === node2.id)?.state === 'alive')

  // Mallory leaves (its own word: believed), so placement is the three real nodes again, and
  // W=all writes through node 1 must reach the real nodes 2 and 3.
  mallory.send(to, { type: 'gossip', body: { gossip: [{ ...self, incarnation: 3, state: 'left' }] } })
  await waitFor('mallory left on node 1', TIMEOUT_MS, async () => (await members(first)).find((m) => m.name === 'mallory')?.state === 'left')
  for (let i = 0; i < WRITES; i++) {
    const res = await fetch(`${first.url}/kv/claims-${i}?w=all`, { method: 'PUT', body: `v${i}`, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })
    const body = await res.json() as { acks?: number }
    t.equal(res.status, 200, `claims-${i}: W=all acknowledged`)
    t.equal(body.acks, 3, 'by the three real replicas')
  }
  for (const node of [second, third]) {
    const res = await fetch(`${node.url}/kv/claims-${WRITES - 1}?r=one`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })
    t.equal(await res.text(), `v${WRITES - 1}`, `${node.url} holds the last write itself`)
  }

  // Flood: a push-pull with 500 invented members.
  const invented = Array.from({ length: 500 }, (_, i): MemberRecord => ({
    id: asNodeId((0x1000 + i).toString(16).padStart(16, '0')), name: `ghost-${i}`, peer: `127.0.0.1:${2 + i}`, api: `127.0.0.1:${2 + i}`, incarnation: 1, state: 'alive',
  }))
  const before = (await members(first)).length
  mallory.send(to, { type: 'pushPull', body: { members: invented, join: false } })
  await waitFor('node 1 to take in the push-pull', TIMEOUT_MS, async () => (await members(first)).some((m) => m.name.startsWith('ghost-')))
  const flooded = await members(first)
  t.ok(flooded.length - before <= MAX_NEW_MEMBERS_PER_MESSAGE, `at most ${MAX_NEW_MEMBERS_PER_MESSAGE} new members from one message (${flooded.length - before})`)
})
