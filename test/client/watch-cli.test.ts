import { once } from 'node:events'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { Readable, Writable } from 'node:stream'
import t, { type Test } from 'tap'
import { runCli } from '../../lib/client/cli.js'

const NODE_ID = '00000000000000aa'
const version = (n: number): string => `${String(1_700_000_000_000_000 + n).padStart(16, '0')}-${NODE_ID}`

function frame(key: string, n: number, value: Buffer | null): string {
  const data = { key, value: value === null ? null : value.toString('base64'), version: version(n), deleted: value === null }
  return `id: ${version(n)}\nevent: change\ndata: ${JSON.stringify(data)}\n\n`
}

async function node(t: Test, answer: (response: http.ServerResponse, url: URL) => void): Promise<{ url: string; urls: URL[] }> {
  const urls: URL[] = []
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x')
    urls.push(url)
    answer(res, url)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(async () => { server.closeAllConnections(); server.close(); await once(server, 'close') })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, urls }
}

interface Run {
  readonly code: Promise<number>
  stdout(): string
  stderr(): string
  /** Ctrl-C as the terminal would send it. */
  interrupt(): void
}

function start(argv: string[]): Run {
  let out = ''
  let err = ''
  const listeners = new Set<() => void>()
  const sink = (append: (text: string) => void): Writable => new Writable({ write(chunk: Buffer, _e, done) { append(chunk.toString('utf8')); done() } })
  const code = runCli(argv, {
    stdin: Readable.from([]),
    stdout: sink(text => { out += text }),
    stderr: sink(text => { err += text }),
    env: {},
    onInterrupt(listener) { listeners.add(listener); return () => listeners.delete(listener) },
  })
  return { code, stdout: () => out, stderr: () => err, interrupt: () => { for (const listener of listeners) listener() } }
}

async function until(what: string, check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise(resolve => setTimeout(resolve, 25))
  if (!check()) throw new Error(`gave up waiting for ${what}`)
}

t.test('bad arguments exit 2 with one line naming the fix', async t => {
  const cases: [string[], RegExp][] = [
    [['watch'], /watch needs --prefix P/],
    [['watch', '--prefix', 'a', '--since', 'yesterday'], /--since must be a version/],
    [['watch', 'a'], /too many arguments: hearsay watch --prefix P/],
    [['watch', '--prefix', 'a', '--w', '1'], /option --w does not apply to watch/],
  ]
  for (const [argv, message] of cases) {
    const run = start(argv)
    t.equal(await run.code, 2, argv.join(' '))
    t.match(run.stderr(), message)
  }
})

t.test('each change is one line until Ctrl-C, which exits 0', async t => {
  const { url, urls } = await node(t, response => {
    response.writeHead(200, { 'content-type': 'text/event-stream' })
    response.write(frame('app/name', 1, Buffer.from('hearsay')) + frame('app/motd', 2, Buffer.from('hello world')) +
      frame('app/bin', 3, Buffer.from([0xff, 0x00])) + frame('app/name', 4, null))
  })
  const run = start(['watch', '--node', url, '--prefix', 'app/', '--since', version(0)])
  await until('four lines', () => run.stdout().split('\n').length > 4)
  run.interrupt()
  t.equal(await run.code, 0)
  t.equal(run.stdout(), [
    `put key=app/name version=${version(1)} value=hearsay`,
    `put key=app/motd version=${version(2)} value="hello world"`,
    `put key=app/bin version=${version(3)} value=base64:/wA=`,
    `del key=app/name version=${version(4)}`,
    '',
  ].join('\n'))
  t.equal(urls[0]?.searchParams.get('since'), version(0))
})

t.test('--json prints one object per line', async t => {
  const { url } = await node(t, response => {
    response.writeHead(200, { 'content-type': 'text/event-stream' })
    response.write(frame('k', 1, Buffer.from('v')) + frame('k', 2, null))
  })
  const run = start(['watch', '--node', url, '--prefix', '', '--json'])
  await until('two lines', () => run.stdout().split('\n').length > 2)
  run.interrupt()
  t.equal(await run.code, 0)
  t.same(run.stdout().trim().split('\n').map(line => JSON.parse(line) as unknown), [
    { key: 'k', value: 'dg==', version: version(1), deleted: false },
    { key: 'k', value: null, version: version(2), deleted: true },
  ])
})

t.test('a --since the node no longer keeps says how to start again, exit 1', async t => {
  const { url } = await node(t, response => {
    response.writeHead(410, { 'content-type': 'application/json' })
    response.end(JSON.stringify({ error: 'gone', oldest: version(50) }))
  })
  const run = start(['watch', '--node', url, '--prefix', 'app/', '--since', version(1)])
  t.equal(await run.code, 1)
  t.match(run.stderr(), new RegExp(`oldest it can resume from is ${version(50)}.*hearsay scan --prefix "app/".*--since ${version(50)}`))
})
