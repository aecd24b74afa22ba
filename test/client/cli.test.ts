import { readFileSync } from 'node:fs'
import { PassThrough, Readable, Writable } from 'node:stream'
import { runCliBytes } from '../helpers/cli.js'
import t, { type Test } from 'tap'
import { runCli } from '../../lib/client/cli.js'
import { closedPort, startFakeNode, type FakeNode } from './fixtures/fake-node.js'

const run = runCliBytes

async function fakeNode(t: Test, options: Parameters<typeof startFakeNode>[0] = {}): Promise<FakeNode> {
  const node = await startFakeNode(options)
  t.teardown(() => node.close())
  return node
}

/** Exactly one line on stderr. */
function oneLine(text: string): boolean {
  return text.endsWith('\n') && !text.slice(0, -1).includes('\n')
}

t.test('usage errors exit 2 with one line pointing to --help', async t => {
  const node = await fakeNode(t)
  const cases: [argv: string[], message: RegExp][] = [
    [[], /no command given/],
    [['frobnicate'], /unknown command "frobnicate"/],
    [['toString'], /unknown command "toString"/],
    [['get', 'k', '--bogus'], /unknown option '--bogus'/],
    [['get'], /missing argument: hearsay get KEY/],
    [['put', 'k'], /missing argument: hearsay put KEY VALUE\|-/],
    [['get', 'a', 'b'], /too many arguments/],
    [['get', 'k', '--ttl', '5'], /option --ttl does not apply to get/],
    [['put', 'k', 'v', '--w', 'most'], /--w must be one, quorum, all or a number/],
    [['put', 'k', 'v', '--ttl=-3'], /--ttl must be a positive whole number/],
    [['put', 'k', 'v', '--ttl', '-3'], /the value of --ttl starts with "-": write --ttl=VALUE/],
    [['scan', '--limit', '0'], /--limit must be a positive whole number/],
    [['status', '--timeout', 'soon'], /--timeout must be a positive duration: a bare number of seconds/],
    [['status', '--timeout', '2000'], /--timeout must be at most 600s \(a bare number is seconds; for milliseconds write 2000ms\)/],
    [['get', ''], /KEY must not be empty/],
    [['get', 'k', '--node'], /argument missing/],
    [['status', '--node', 'localhost:7070'], /no http:\/\/ or https:\/\/ scheme: write it like http:\/\/localhost:7070/],
  ]
  for (const [argv, message] of cases) {
    const result = await run([...argv, ...(argv.includes('--node') ? [] : ['--node', node.url])])
    t.equal(result.code, 2, `exit 2 for ${JSON.stringify(argv)}`)
    t.ok(oneLine(result.stderr), `one stderr line for ${JSON.stringify(argv)}: ${result.stderr}`)
    t.match(result.stderr, /^hearsay: /)
    t.match(result.stderr, message)
    t.match(result.stderr, /see hearsay --help/)
  }
  t.equal(node.requests.length, 0, 'no usage error reached the node')
})

t.test('put then get returns the exact value bytes without a newline on a pipe', async t => {
  const node = await fakeNode(t)
  const put = await run(['put', 'greeting', 'hello world', '--node', node.url])
  t.equal(put.code, 0)
  t.match(put.stdout.toString(), /^stored "greeting" at version \d{16}-[0-9a-f]{16} \(1 acks, 1 needed\)\n$/)
  const get = await run(['get', 'greeting', '--node', node.url])
  t.equal(get.code, 0)
  t.equal(get.stdout.toString('utf8'), 'hello world')
  t.equal(get.stderr, '')
})

t.test('get adds a newline when stdout is a terminal', async t => {
  const node = await fakeNode(t)
  node.store.set('k', { value: Buffer.from('v'), version: '0000000000000001-00000000000000aa' })
  const result = await run(['get', 'k', '--node', node.url], { tty: true })
  t.equal(result.stdout.toString(), 'v\n')
})

t.test('put - reads the value bytes from stdin', async t => {
  const node = await fakeNode(t)
  const bytes = Buffer.from(Uint8Array.from({ length: 256 }, (_, i) => i))
  const stdin = new PassThrough()
  stdin.end(bytes)
  const result = await run(['put', 'bin', '-', '--node', node.url], { stdin })
  t.equal(result.code, 0, result.stderr)
  t.ok(node.store.get('bin')?.value.equals(bytes), 'the node stored the 256 stdin bytes')
})

t.test('get of an absent key exits 1 with one line naming the key', async t => {
  const node = await fakeNode(t)
  const result = await run(['get', 'nope', '--node', node.url])
  t.equal(result.code, 1)
  t.equal(result.stderr, 'hearsay: key "nope" not found\n')
  t.equal(result.stdout.length, 0)
})

t.test('del of an absent key succeeds', async t => {
  const node = await fakeNode(t)
  const result = await run(['del', 'nope', '--node', node.url, '--w', 'all'])
  t.equal(result.code, 0, result.stderr)
  t.match(result.stdout.toString(), /^deleted "nope" at version /)
  t.equal(node.requests.at(-1)?.url, '/kv/nope?w=all')
})

t.test('--json prints replies that parse', async t => {
  const node = await fakeNode(t)
  const put = await run(['put', 'k', 'v', '--json', '--node', node.url, '--ttl', '30'])
  t.equal(put.code, 0)
  t.match(JSON.parse(put.stdout.toString()), { key: 'k', acks: 1, w: 1, version: String })
  t.equal(node.requests.at(-1)?.url, '/kv/k?ttl=30')

  const get = await run(['get', 'k', '--json', '--node', node.url, '--r', 'quorum'])
  t.same(JSON.parse(get.stdout.toString()), { key: 'k', value: Buffer.from('v').toString('base64'), version: node.store.get('k')?.version })

  const members = await run(['members', '--json', '--node', node.url])
  t.equal((JSON.parse(members.stdout.toString()) as unknown[]).length, 2)

  const status = await run(['status', '--json', '--node', node.url])
  t.match(JSON.parse(status.stdout.toString()), { name: 'fake', keys: 1 })

  const sync = await run(['sync', '--json', '--node', node.url])
  t.same(JSON.parse(sync.stdout.toString()), { peers: 1, pushed: 0, pulled: 0 })
})

t.test('scan follows next across pages and --limit caps the items printed', async t => {
  const node = await fakeNode(t, { scanPageSize: 2 })
  for (const key of ['a1', 'a2', 'a3', 'a4', 'a5', 'b1']) node.store.set(key, { value: Buffer.from(`v-${key}`), version: '0000000000000001-00000000000000aa' })

  const all = await run(['scan', '--prefix', 'a', '--node', node.url])
  t.equal(all.code, 0, all.stderr)
  t.equal(all.stdout.toString(), 'a1\tv-a1\na2\tv-a2\na3\tv-a3\na4\tv-a4\na5\tv-a5\n')

  const limited = await run(['scan', '--limit', '3', '--node', node.url])
  t.equal(limited.stdout.toString().split('\n').filter(Boolean).length, 3)

  const json = await run(['scan', '--json', '--prefix', 'b', '--node', node.url])
  t.same(json.stdout.toString().trim().split('\n').map(line => JSON.parse(line) as unknown), [
    { key: 'b1', value: Buffer.from('v-b1').toString('base64'), version: '0000000000000001-00000000000000aa' },
  ])
})

t.test('members prints an aligned table', async t => {
  const node = await fakeNode(t)
  const result = await run(['members', '--node', node.url])
  const lines = result.stdout.toString().trimEnd().split('\n')
  t.equal(lines.length, 3, 'a header and two members')
  t.match(lines[0], /^ID\s+NAME\s+PEER\s+API\s+STATE\s+INCARNATION$/)
  const column = (line: string, word: string): number => line.indexOf(word)
  t.equal(column(lines[1] ?? '', 'alive'), column(lines[0] ?? '', 'STATE'), 'state column lines up')
  t.equal(column(lines[2] ?? '', 'suspect'), column(lines[0] ?? '', 'STATE'))
  t.equal(column(lines[2] ?? '', '12'), column(lines[0] ?? '', 'INCARNATION'), 'incarnation column lines up')
})

t.test('status prints key: value lines, nested keys dotted', async t => {
  const node = await fakeNode(t)
  const result = await run(['status', '--node', node.url])
  t.equal(result.stdout.toString(), 'id: 00000000000000aa\nname: fake\nkeys: 0\nantiEntropy.lastRound: never\nantiEntropy.rounds: 0\n')
})

t.test('an error answer from the node exits 1 with its message on one line', async t => {
  const node = await fakeNode(t, {
    override(_request, response) {
      response.writeHead(503, { 'content-type': 'application/json' })
      response.end(JSON.stringify({ error: 'write needed 2 replica acknowledgements but got 1 in time', needed: 2, acks: 1 }))
      return true
    },
  })
  const result = await run(['put', 'k', 'v', '--node', node.url])
  t.equal(result.code, 1)
  t.ok(oneLine(result.stderr))
  t.equal(result.stderr, `hearsay: write needed 2 replica acknowledgements but got 1 in time (HTTP 503 from ${node.url})\n`)
})

t.test('--node lists fail over; all down exits 1 naming the nodes', async t => {
  const node = await fakeNode(t)
  const dead = `http://127.0.0.1:${await closedPort()}`
  const ok = await run(['put', 'k', 'v', '--node', `${dead}, ${node.url}`])
  t.equal(ok.code, 0, ok.stderr)

  const deadToo = `http://127.0.0.1:${await closedPort()}`
  const down = await run(['status', '--node', `${dead},${deadToo}`])
  t.equal(down.code, 1)
  t.ok(oneLine(down.stderr))
  t.ok(down.stderr.startsWith(`hearsay: no hearsay node answered (tried ${dead}, ${deadToo}): `), down.stderr)
})

t.test('HEARSAY_NODE and HEARSAY_TOKEN are used when no flag is given; flags win', async t => {
  const node = await fakeNode(t)
  const other = await fakeNode(t)
  const fromEnv = await run(['status'], { env: { HEARSAY_NODE: node.url, HEARSAY_TOKEN: 'envtoken' } })
  t.equal(fromEnv.code, 0, fromEnv.stderr)
  t.equal(node.requests.at(-1)?.headers.authorization, 'Bearer envtoken')
  const fromFlag = await run(['status', '--node', other.url, '--token', 'flagtoken'], { env: { HEARSAY_NODE: node.url, HEARSAY_TOKEN: 'envtoken' } })
  t.equal(fromFlag.code, 0)
  t.equal(other.requests.at(-1)?.headers.authorization, 'Bearer flagtoken')
  t.equal(node.requests.length, 1, 'the env node was not asked when --node was given')
})

t.test('--help lists every command and --version prints the package version', async t => {
  const help = await run(['--help'])
  t.equal(help.code, 0)
  for (const command of ['put KEY VALUE|-', 'get KEY', 'del KEY', 'scan', 'members', 'status', 'sync']) {
    t.match(help.stdout.toString(), command)
  }
  t.match(help.stdout.toString(), /--w LEVEL\s+write level: one, quorum, all or a number \(put, del, bench\)/)

  const manifest = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
  const version = await run(['--version'])
  t.equal(version.code, 0)
  t.equal(version.stdout.toString(), `hearsay ${manifest.version}\n`)
})

t.test('a closed stdout stops a scan quietly', async t => {
  const node = await fakeNode(t, { scanPageSize: 1 })
  for (const key of ['a', 'b', 'c']) node.store.set(key, { value: Buffer.from(key), version: '0000000000000001-00000000000000aa' })
  const stdout = new Writable({ write(_chunk, _encoding, done) { done(new Error('EPIPE')) } })
  stdout.on('error', () => {})
  const errors: Buffer[] = []
  const code = await runCli(['scan', '--node', node.url], {
    stdin: Readable.from([]),
    stdout,
    stderr: new Writable({ write(chunk: Buffer, _encoding, done) { errors.push(chunk); done() } }),
    env: {},
  })
  t.equal(code, 0)
  t.equal(Buffer.concat(errors).length, 0, 'nothing on stderr')
  t.ok(node.requests.length < 3, 'scanning stopped before the last page')
})
