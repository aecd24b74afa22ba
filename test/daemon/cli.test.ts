import t from 'tap'
import { rmSync } from 'node:fs'
import { cliBin, freePort, runProgram, startDaemon } from '../helpers/daemon.js'

t.test('the CLI against a real daemon', async (t) => {
  const daemon = await startDaemon()
  t.teardown(async () => { await daemon.stop(); rmSync(daemon.dataDir, { recursive: true, force: true }) })
  const env = { HEARSAY_NODE: daemon.url }
  const cli = (args: string[], input?: Buffer | string) => runProgram(cliBin, args, { env, ...(input !== undefined ? { input } : {}) })

  t.test('put then get returns the exact bytes, exit 0', async (t) => {
    const put = await cli(['put', 'greeting', 'hello world'])
    t.equal(put.code, 0, put.stderr)
    const get = await cli(['get', 'greeting'])
    t.equal(get.code, 0)
    t.equal(get.stdout.toString(), 'hello world')
  })

  t.test('put - stores stdin bytes unchanged', async (t) => {
    const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i))
    t.equal((await cli(['put', 'binary/all-bytes', '-'], bytes)).code, 0)
    const get = await cli(['get', 'binary/all-bytes'])
    t.same([...get.stdout], [...bytes])
  })

  t.test('get of an absent key exits 1 with one line on stderr', async (t) => {
    const get = await cli(['get', 'never-written'])
    t.equal(get.code, 1)
    t.equal(get.stderr.trim().split('\n').length, 1)
    t.match(get.stderr, /never-written/)
  })

  t.test('del then get is absent', async (t) => {
    await cli(['put', 'doomed', 'x'])
    t.equal((await cli(['del', 'doomed'])).code, 0)
    t.equal((await cli(['get', 'doomed'])).code, 1)
  })

  t.test('scan lists keys by prefix, status and members answer, --json parses', async (t) => {
    await cli(['put', 'fruit/apple', 'red'])
    await cli(['put', 'fruit/banana', 'yellow'])
    const scan = await cli(['scan', '--prefix', 'fruit/'])
    t.equal(scan.code, 0)
    t.same(scan.stdout.toString().trim().split('\n'), ['fruit/apple\tred', 'fruit/banana\tyellow'])
    const status = await cli(['status', '--json'])
    t.equal(status.code, 0)
    t.type((JSON.parse(status.stdout.toString()) as { keys: number }).keys, 'number')
    const members = await cli(['members', '--json'])
    t.equal((JSON.parse(members.stdout.toString()) as unknown[]).length, 1)
  })

  t.test('a usage error exits 2; an unreachable node exits 1', async (t) => {
    t.equal((await cli(['frobnicate'])).code, 2)
    t.equal((await cli(['get'])).code, 2)
    const down = await runProgram(cliBin, ['get', 'greeting'], { env: { HEARSAY_NODE: `http://127.0.0.1:${await freePort()}` } })
    t.equal(down.code, 1)
    t.match(down.stderr, /no hearsay node answered/)
  })

  t.test('--node tries the next node when the first is down', async (t) => {
    const deadNode = `http://127.0.0.1:${await freePort()}`
    const get = await runProgram(cliBin, ['--node', `${deadNode},${daemon.url}`, 'get', 'greeting'], { env: {} })
    t.equal(get.code, 0, get.stderr)
    t.equal(get.stdout.toString(), 'hello world')
  })
})
