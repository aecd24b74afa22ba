import t from 'tap'
import { startCluster, waitFor, type Daemon } from '../helpers/daemon.js'

const FAST = { membership: { probeIntervalMs: 500, probeTimeoutMs: 200, gossipIntervalMs: 100, pushPullIntervalMs: 5000 } }

interface Page { items: { key: string; value: string; version: string }[]; next: string | null }

async function scanAll(node: Daemon, prefix: string, limit: number, extra = ''): Promise<Page['items']> {
  const items: Page['items'] = []
  let after = ''
  for (let pages = 0; pages < 100; pages++) {
    const res = await fetch(`${node.url}/kv?prefix=${encodeURIComponent(prefix)}&limit=${limit}&after=${encodeURIComponent(after)}${extra}`)
    const page = await res.json() as Page
    items.push(...page.items)
    if (page.next === null) return items
    after = page.next
  }
  throw new Error('scan did not finish within 100 pages')
}

t.test('a prefix scan merges every member when no node holds every partition (N=2 of 4)', async (t) => {
  const cluster = await startCluster(4, () => ({ ...FAST, replication: { factor: 2, writeQuorum: 'all' } }))
  t.teardown(() => cluster.stop())
  const nodes = cluster.nodes
  await waitFor('four alive members everywhere', 30_000, async () => {
    for (const node of nodes) {
      const rows = await (await fetch(`${node.url}/members`)).json() as { state: string }[]
      if (rows.filter((m) => m.state === 'alive').length !== 4) return false
    }
    return true
  })
  const keys = Array.from({ length: 60 }, (_, i) => `scan/${String(i).padStart(3, '0')}`)
  for (const [i, key] of keys.entries()) {
    const res = await fetch(`${nodes[i % nodes.length]!.url}/kv/${encodeURIComponent(key)}`, { method: 'PUT', body: `v${i}` })
    t.equal(res.status, 200, `PUT ${key}`)
  }
  const status = await (await fetch(`${nodes[0]!.url}/status`)).json() as { keys: number }
  t.ok(status.keys < keys.length, `node 1 holds only part of the keys (${status.keys} of ${keys.length})`)

  const seen = await scanAll(nodes[0]!, 'scan/', 7)
  t.same(seen.map((i) => i.key), keys, 'paging through node 1 returns every key once, in order')
  t.equal(Buffer.from(seen[5]!.value, 'base64').toString(), 'v5')

  const ranged = await scanAll(nodes[0]!, 'scan/', 4, '&start=scan%2F013&end=scan%2F031')
  t.same(ranged.map((i) => i.key), keys.slice(13, 31), 'start is inclusive, end exclusive, paged with after')
  const local = await scanAll(nodes[0]!, '', 9, '&local=true')
  t.equal(local.length, status.keys, 'local=true lists only the records node 1 holds itself')
  t.ok(local.every((i) => keys.includes(i.key)))
  t.equal((await fetch(`${nodes[0]!.url}/kv?start=b&end=a`)).status, 400, 'a start after the end is refused')
  t.equal((await fetch(`${nodes[0]!.url}/kv?local=yes`)).status, 400)

  for (const key of keys.slice(0, 10)) await fetch(`${nodes[1]!.url}/kv/${encodeURIComponent(key)}`, { method: 'DELETE' })
  const after = await scanAll(nodes[2]!, 'scan/', 25)
  t.same(after.map((i) => i.key), keys.slice(10), 'deleted keys are gone from the merged scan')
})
