import { runCliText } from '../helpers/cli.js'
import type http from 'node:http'
import t, { type Test } from 'tap'
import { startFakeNode, type FakeNode, type SeenRequest } from './fixtures/fake-node.js'

const run = runCliText

function json(response: http.ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'content-type': 'application/json' })
  response.end(JSON.stringify(body))
}

const REMOVAL = { id: '00000000000000c3', name: 'node-3', by: '00000000000000aa', byName: 'node-1', atMs: 1_700_000_000_000 }

/** A fake node that answers the lifecycle routes from `answers` (one per call, the last one repeated). */
async function lifecycleNode(t: Test, answers: Record<string, readonly [number, unknown][]>): Promise<FakeNode> {
  const calls = new Map<string, number>()
  const node = await startFakeNode({
    override: (request: SeenRequest, response) => {
      const path = request.url.split('?')[0] ?? ''
      const list = answers[`${request.method} ${path}`]
      if (list === undefined) return false
      const call = calls.get(path) ?? 0
      calls.set(path, call + 1)
      const [status, body] = list[Math.min(call, list.length - 1)]!
      json(response, status, body)
      return true
    },
  })
  t.teardown(() => node.close())
  return node
}

t.test('members remove and decommission check their arguments', async t => {
  const cases: [string[], RegExp][] = [
    [['members', 'remove'], /missing argument: hearsay members remove NODE/],
    [['members', 'evict', 'node-3'], /members takes no argument or remove NODE, got "evict"/],
    [['members', '--no-wait'], /--no-wait applies to members remove only/],
    [['decommission', '--node', 'http://127.0.0.1:1,http://127.0.0.1:2'], /give exactly one --node URL, the node to retire/],
    [['members', 'remove', 'node-3', '--timeout', '15m'], /--timeout must be at most 600s/],
  ]
  for (const [argv, message] of cases) {
    const result = await run(argv)
    t.equal(result.code, 2, argv.join(' '))
    t.match(result.stderr, message)
  }
})

t.test('members remove --no-wait asks once and says what was removed', async t => {
  const node = await lifecycleNode(t, { 'POST /admin/members/remove': [[200, { removal: REMOVAL, alreadyRemoved: false }]] })
  const result = await run(['members', 'remove', 'node-3', '--no-wait', '--node', node.url])
  t.equal(result.code, 0, result.stderr)
  t.match(result.stdout, /^removed node-3 \(00000000000000c3\); re-replication of its partitions goes on/)
  t.equal(node.requests.length, 1)
  t.equal(node.requests[0]?.url, '/admin/members/remove?node=node-3')
})

t.test('members remove waits, printing the progress until every partition is copied', async t => {
  const progress = (pending: number, unanswered: string[] = []) => [200, { removed: [{ ...REMOVAL, gainedPartitions: 8, underReplicatedPartitions: pending, keysMoved: 100 - pending, bytesMoved: 2500, unanswered, complete: pending === 0 && unanswered.length === 0 }], leaving: [], decommission: null }] as [number, unknown]
  const node = await lifecycleNode(t, {
    'POST /admin/members/remove': [[200, { removal: REMOVAL, alreadyRemoved: false }]],
    'GET /admin/lifecycle': [progress(5, ['node-2']), progress(5), progress(0)],
  })
  const result = await run(['members', 'remove', 'node-3', '--node', node.url])
  t.equal(result.code, 0, result.stderr)
  const lines = result.stdout.trim().split('\n')
  t.match(lines[0], /removed node-3 \(00000000000000c3\) for good/)
  t.match(lines[1], /5 of 8 re-placed partitions still to copy, 95 keys \(2\.5 kB\) moved; no answer yet from node-2/)
  t.match(lines[2], /5 of 8 re-placed partitions still to copy, 95 keys \(2\.5 kB\) moved$/)
  t.match(lines.at(-1), /done: every partition node-3 \(00000000000000c3\) held is re-replicated \(100 keys \(2\.5 kB\) moved\)/)
})

t.test('a refused removal exits 1 with the node\'s sentence', async t => {
  const node = await lifecycleNode(t, { 'POST /admin/members/remove': [[409, { error: 'member node-2 (00000000000000b2) is alive: hearsay members remove is for dead members; retire a live one with hearsay decommission --node <its API URL>', state: 'alive' }]] })
  const result = await run(['members', 'remove', 'node-2', '--node', node.url])
  t.equal(result.code, 1)
  t.match(result.stderr, /is alive: .* \(HTTP 409 from/)
})

t.test('decommission waits until the node has left; --timeout bounds the wait', async t => {
  const phase = (name: string, confirmed: number) => [200, { removed: [], leaving: [], decommission: { phase: name, transfers: 4, confirmed, partitionsPending: 4 - confirmed, keysMoved: 10 * confirmed, bytesMoved: 512 * confirmed, rounds: 1, waitingFor: [] } }] as [number, unknown]
  const node = await lifecycleNode(t, {
    'POST /admin/decommission': [[200, { phase: 'streaming', transfers: 4, confirmed: 0 }]],
    'GET /admin/lifecycle': [phase('streaming', 2), phase('left', 4)],
  })
  const result = await run(['decommission', '--node', node.url])
  t.equal(result.code, 0, result.stderr)
  t.match(result.stdout, /streaming: 2 of 4 partition copies confirmed by their new owners, 20 keys \(1\.0 kB\) moved\n/)
  t.match(result.stdout, /decommissioned http:\/\/127\.0\.0\.1:\d+: its new owners hold every partition and it has left the cluster/)

  const stuck = await lifecycleNode(t, {
    'POST /admin/decommission': [[200, { phase: 'streaming' }]],
    'GET /admin/lifecycle': [[200, { removed: [], leaving: [], decommission: { phase: 'streaming', transfers: 4, confirmed: 0, partitionsPending: 4, keysMoved: 0, rounds: 3, waitingFor: ['00000000000000d4'] } }]],
  })
  const timedOut = await run(['decommission', '--node', stuck.url, '--timeout', '1s'])
  t.equal(timedOut.code, 1)
  t.match(timedOut.stdout, /waiting for 00000000000000d4 to be alive/)
  t.match(timedOut.stderr, /gave up waiting after 1s: the decommission of .* goes on/)
})
