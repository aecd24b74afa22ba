import t from 'tap'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { cliBin, repoRoot, runProgram, startCluster, startDaemon, waitFor, type Daemon } from '../helpers/daemon.js'

/**
 * Node lifecycle with real daemons and the CLI, on one four-node cluster with N = 2 (so each
 * step still moves partitions): decommission node-4 while writes go on — every key keeps at least
 * N copies at every sample — then kill node-3, remove it, and every key has exactly N copies
 * again; node-3 restarted on its old data dir is told it was removed and stops.
 */

const N = 2
const CONFIG = {
  partitions: 64,
  replication: { factor: N },
  membership: { probeIntervalMs: 300, probeTimeoutMs: 150, gossipIntervalMs: 100, pushPullIntervalMs: 3000, suspicionMult: 2, suspicionMaxTimeoutMult: 2 },
}
const PREFIX = 'life/'
/** Chromium for the page check that goes with the screenshot (test/cluster/dashboard.test.ts has the rest of the page). */
const CHROMIUM = process.env.HEARSAY_CHROMIUM ?? '/usr/bin/chromium'
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']
/** HEARSAY_DASHBOARD_SCREENSHOTS=docs/img checks the lifecycle table in Chromium and saves it for docs/operations.md. */
const screenshots = process.env.HEARSAY_DASHBOARD_SCREENSHOTS
declare const document: { querySelector(selector: string): { readonly textContent: string | null } | null }

/** The text of the dashboard's first Node lifecycle row once it shows a removal, in Chromium. */
async function dashboardLifecycleRow(node: Daemon): Promise<string> {
  const { chromium } = await import('playwright-core')
  const userDataDir = mkdtempSync(join(tmpdir(), 'hearsay-chromium-'))
  const context = await chromium.launchPersistentContext(userDataDir, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, viewport: { width: 1360, height: 900 } })
  try {
    const page = await context.newPage()
    await page.goto(`${node.url}/`)
    await page.waitForFunction(() => /removed by/.test(document.querySelector('#lifecycle')?.textContent ?? ''), undefined, { timeout: 15_000 })
    if (screenshots !== undefined) await page.locator('#lifecycle').locator('xpath=ancestor::section').screenshot({ path: resolve(repoRoot, screenshots, 'dashboard-lifecycle.png') })
    return await page.locator('#lifecycle tr').first().innerText()
  } finally {
    await context.close()
    rmSync(userDataDir, { recursive: true, force: true })
  }
}

interface ScanPage { items: { key: string }[]; next: string | null }

/** The keys a node holds itself (GET /kv?local=true), every page. */
async function localKeys(node: Daemon): Promise<string[]> {
  const keys: string[] = []
  let after: string | undefined
  for (let page = 0; page < 100; page++) {
    const query = new URLSearchParams({ local: 'true', prefix: PREFIX, limit: '1000', ...(after === undefined ? {} : { after }) })
    const res = await fetch(`${node.url}/kv?${query}`)
    if (res.status !== 200) throw new Error(`local scan of ${node.url} answered ${res.status}`)
    const body = await res.json() as ScanPage
    keys.push(...body.items.map((item) => item.key))
    if (body.next === null) return keys
    after = body.next
  }
  throw new Error('local scan did not finish within 100 pages')
}

/** Copies of each of `keys` over `nodes`. */
async function copies(nodes: readonly Daemon[], keys: readonly string[]): Promise<Map<string, number>> {
  const counts = new Map(keys.map((key) => [key, 0]))
  for (const held of await Promise.all(nodes.map(localKeys))) {
    for (const key of held) if (counts.has(key)) counts.set(key, counts.get(key)! + 1)
  }
  return counts
}

function fewest(counts: Map<string, number>): { min: number; key: string | undefined } {
  let min = Infinity
  let key: string | undefined
  for (const [k, n] of counts) if (n < min) { min = n; key = k }
  return { min, key }
}

async function putAll(node: Daemon, keys: readonly string[]): Promise<void> {
  const ops = keys.map((key) => ({ op: 'put', key, value: Buffer.from(key).toString('base64') }))
  const res = await fetch(`${node.url}/batch?w=all`, { method: 'POST', body: JSON.stringify({ ops }) })
  if (res.status !== 200) throw new Error(`batch answered ${res.status}: ${await res.text()}`)
}

/** The first `cluster` event of the dashboard's stream (GET /dashboard/events), parsed. */
async function firstClusterEvent(node: Daemon): Promise<Record<string, unknown>> {
  const abort = new AbortController()
  const timer = setTimeout(() => abort.abort(), 10_000)
  try {
    const res = await fetch(`${node.url}/dashboard/events`, { signal: abort.signal })
    const decoder = new TextDecoder()
    let text = ''
    for await (const chunk of res.body!) {
      text += decoder.decode(chunk as Uint8Array, { stream: true })
      const match = /event: cluster\ndata: (.*)\n\n/.exec(text)
      if (match !== null) return JSON.parse(match[1]!) as Record<string, unknown>
    }
    throw new Error('the event stream ended before a cluster event')
  } finally {
    clearTimeout(timer)
    abort.abort()
  }
}

async function json(node: Daemon, path: string): Promise<Record<string, unknown>> {
  return await (await fetch(`${node.url}${path}`)).json() as Record<string, unknown>
}

t.test('decommission and remove keep N copies of every key', async (t) => {
  const cluster = await startCluster(4, () => CONFIG)
  t.teardown(() => cluster.stop())
  const [first, second, third, fourth] = cluster.nodes as [Daemon, Daemon, Daemon, Daemon]
  await waitFor('four alive members on every node', 30_000, async () => {
    for (const node of cluster.nodes) {
      const rows = await (await fetch(`${node.url}/members`)).json() as { state: string }[]
      if (rows.length !== 4 || rows.some((m) => m.state !== 'alive')) return false
    }
    return true
  })
  const written = Array.from({ length: 300 }, (_, i) => `${PREFIX}before/${i}`)
  await putAll(first, written)
  t.equal(fewest(await copies(cluster.nodes, written)).min, N, 'N copies of every key to begin with')

  await t.test('decommission node-4 with writes going on: never fewer than N copies', async (t) => {
    let writing = true
    const acked: string[] = []
    const writer = (async () => {
      for (let i = 0; writing && i < 5000; i++) {
        const key = `${PREFIX}during/${i}`
        try {
          const res = await fetch(`${first.url}/kv/${encodeURIComponent(key)}?w=all`, { method: 'PUT', body: key })
          if (res.status === 200) acked.push(key)
        } catch {
          // counted below: only acknowledged keys are checked
        }
      }
    })()
    t.teardown(async () => { writing = false; await writer })
    const cli = runProgram(cliBin, ['--node', fourth.url, 'decommission'], { timeoutMs: 60_000 })
    let done = false
    void cli.finally(() => { done = true })
    let samples = 0
    let worst = Infinity
    while (!done) {
      // node-4's copies count while it is still a member; once it has left they do not (and it
      // refuses data requests, local scans included, with 503).
      const phase = ((await json(fourth, '/admin/lifecycle'))['decommission'] as { phase?: string } | null)?.phase
      const keys = [...written, ...acked]
      const leftAlready = phase === 'left'
      let counts: Map<string, number>
      try {
        counts = await copies(leftAlready ? [first, second, third] : cluster.nodes, keys)
      } catch (error) {
        if (!/answered 503/.test(String(error))) throw error
        counts = await copies([first, second, third], keys)
      }
      const { min, key } = fewest(counts)
      if (min < N) t.fail(`key ${key} had ${min} copies during the decommission (phase ${phase})`)
      worst = Math.min(worst, min)
      samples++
    }
    writing = false
    await writer
    const result = await cli
    t.equal(result.code, 0, result.stderr)
    t.match(result.stdout.toString(), /decommissioned .*has left the cluster/)
    t.ok(samples >= 1, `sampled the copies ${samples} times while it ran`)
    t.ok(worst >= N, `at least ${N} copies at every sample (fewest seen: ${worst})`)
    t.ok(acked.length > 0, `${acked.length} writes acknowledged during the decommission`)

    const health = await fourth.fetch('/health')
    t.equal(health.status, 503)
    t.match(await health.json(), { status: 'leaving', reasons: [/decommissioned/] })
    t.equal((await fetch(`${fourth.url}/kv/${encodeURIComponent(written[0]!)}`)).status, 503, 'the decommissioned node refuses data requests')
    const keys = [...written, ...acked]
    t.ok(fewest(await copies([first, second, third], keys)).min >= N, 'the remaining members hold N copies without node-4')
    await fourth.stop()
    await waitFor('exactly N copies on the three remaining members', 30_000, async () => {
      const counts = await copies([first, second, third], keys)
      if ([...counts.values()].every((n) => n === N)) return true
      for (const node of [first, second, third]) await fetch(`${node.url}/admin/sync`, { method: 'POST' })
      return false
    })
    t.pass('exactly N copies of every key after the hand-over')
  })

  const thirdId = ((await json(third, '/health'))['id']) as string
  // The CLI's side of these refusals is in test/client/lifecycle-cli.test.ts; here the node's.
  await t.test('remove refuses a live member and an unknown one', async (t) => {
    const alive = await fetch(`${first.url}/admin/members/remove?node=node-3`, { method: 'POST' })
    t.equal(alive.status, 409)
    t.match(await alive.json(), { error: /node-3 .* is alive: .*hearsay decommission/, state: 'alive' })
    const unknown = await fetch(`${first.url}/admin/members/remove?node=no-such-node`, { method: 'POST' })
    t.equal(unknown.status, 404)
    t.match(await unknown.json(), { error: /no member "no-such-node"/ })
  })

  await t.test('kill node-3, remove it: exactly N copies of every key again', async (t) => {
    await third.stop('SIGKILL')
    await waitFor('node-3 dead on node-1 and node-2', 30_000, async () => {
      for (const node of [first, second]) {
        const rows = await (await fetch(`${node.url}/members`)).json() as { id: string; state: string }[]
        if (rows.find((m) => m.id === thirdId)?.state !== 'dead') return false
      }
      return true
    })
    const removed = await runProgram(cliBin, ['--node', second.url, 'members', 'remove', 'node-3'], { timeoutMs: 60_000 })
    t.equal(removed.code, 0, removed.stderr)
    t.match(removed.stdout.toString(), /removed node-3 .* for good/)
    t.match(removed.stdout.toString(), /done: every partition node-3 .* is re-replicated/)
    const keys = (await localKeys(first)).concat(await localKeys(second))
    const counts = await copies([first, second], [...new Set(keys)])
    t.ok(counts.size >= 300, `${counts.size} keys counted`)
    t.strictSame([...new Set(counts.values())], [N], 'exactly N copies of every key once the removal completes')
    const status = await json(first, '/status')
    t.match(status['lifecycle'], { removed: [{ id: thirdId, name: 'node-3', byName: 'node-2' }] }, 'the removal reached node-1 (gossip) and shows in /status')
    const event = await firstClusterEvent(first)
    t.match(event['lifecycle'], { removed: [{ id: thirdId, name: 'node-3', complete: true, underReplicatedPartitions: 0 }] }, 'the dashboard\'s event stream carries the removal and its progress')
    // The page in Chromium costs seconds on a busy machine: run with the screenshots only.
    if (screenshots !== undefined && existsSync(CHROMIUM)) {
      const row = await dashboardLifecycleRow(first)
      t.match(row, /node-3 .*removed by node-2.*done: \d+ keys \(.*\) moved/, 'the dashboard page shows the removal as done')
    }
    const again = await fetch(`${first.url}/admin/members/remove?node=${thirdId}`, { method: 'POST' })
    t.equal(again.status, 200)
    t.match(await again.json(), { alreadyRemoved: true, removal: { id: thirdId, byName: 'node-2' } }, 'removing again answers the record')
    const refused = await fetch(`${first.url}/admin/decommission`, { method: 'POST' })
    t.equal(refused.status, 409, 'two live members cannot lose one with N = 2')
    t.match(await refused.json(), { error: /would leave 1 live members, fewer than replication\.factor 2/, liveMembers: 2, replicationFactor: 2 })
  })

  await t.test('node-3 restarted on its old data dir is told it was removed and stops', async (t) => {
    const back = await startDaemon({
      dataDir: third.dataDir, apiPort: third.apiPort, peerPort: third.peerPort, waitHealthy: false,
      config: { ...CONFIG, node: { name: 'node-3' }, cluster: { seeds: [`127.0.0.1:${first.peerPort}`] } },
    })
    let bound: NodeJS.Timeout | undefined
    const exit = await Promise.race([
      new Promise<number | null>((resolve) => back.process.once('exit', (code) => resolve(code))),
      new Promise<'running'>((resolve) => { bound = setTimeout(() => resolve('running'), 30_000) }),
    ])
    // Pending, the bound would keep this file's process alive for 30 s after its last test.
    clearTimeout(bound)
    if (exit === 'running') await back.stop('SIGKILL')
    t.equal(exit, 1, 'the removed node exits with an error')
    t.match(back.output(), /this node was removed from the cluster by node-2/)
    const twice = await startDaemon({
      dataDir: third.dataDir, apiPort: third.apiPort, peerPort: third.peerPort, waitHealthy: false,
      config: { ...CONFIG, node: { name: 'node-3' }, cluster: { seeds: [`127.0.0.1:${first.peerPort}`] } },
    })
    const code = await new Promise<number | null>((resolve) => twice.process.once('exit', (c) => resolve(c)))
    t.equal(code, 1)
    t.match(twice.output(), /could not start: this node was removed from the cluster by node-2/, 'refused at start: it remembers')
    await Promise.all([back.stop(), twice.stop()])
    const counts = await copies([first, second], [...written])
    t.strictSame([...new Set(counts.values())], [N], 'still exactly N copies: the removed node took no data')
  })
})
