import t, { type Test } from 'tap'
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { daemonBin, runProgram, startDaemon } from '../helpers/daemon.js'

function configFile(t: Test, contents: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), 'hearsay-lifecycle-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'hearsay.json')
  writeFileSync(file, typeof contents === 'string' ? contents : JSON.stringify(contents))
  return file
}

t.test('--check accepts a valid config and exits 0', async (t) => {
  const file = configFile(t, { node: { name: 'checked', dataDir: '/tmp/never-created' }, api: { port: 7171 } })
  const result = await runProgram(daemonBin, ['--config', file, '--check'])
  t.equal(result.code, 0)
  t.match(result.stdout.toString(), /configuration ok/)
})

t.test('--check names the bad key and the file, on one line, exit non-zero', async (t) => {
  const file = configFile(t, { api: { port: 99999 } })
  const result = await runProgram(daemonBin, ['--config', file, '--check'])
  t.not(result.code, 0)
  const lines = result.stderr.trim().split('\n')
  t.equal(lines.length, 1, 'one line on stderr')
  t.match(lines[0], /api\.port/)
  t.match(lines[0], file)
})

t.test('an unknown key and malformed JSON are config errors, not crashes', async (t) => {
  const unknown = await runProgram(daemonBin, ['--config', configFile(t, { api: { prot: 1 } }), '--check'])
  t.not(unknown.code, 0)
  t.match(unknown.stderr, /api\.prot/)
  const malformed = await runProgram(daemonBin, ['--config', configFile(t, '{"api": '), '--check'])
  t.not(malformed.code, 0)
  t.equal(malformed.stderr.trim().split('\n').length, 1)
  t.notMatch(malformed.stderr, /at .*\.js:\d+/, 'no stack trace')
})

t.test('an unknown command-line flag is a usage error', async (t) => {
  const result = await runProgram(daemonBin, ['--confg', 'x'])
  t.equal(result.code, 2)
  t.match(result.stderr, /hearsayd: .*--confg/)
})

t.test('--print-config shows the merged config with secrets masked', async (t) => {
  const file = configFile(t, { cluster: { secret: 'hunter2' }, api: { token: 'tok-123' } })
  const result = await runProgram(daemonBin, ['--config', file, '--print-config'], { env: { HEARSAY_API_PORT: '7272' } })
  t.equal(result.code, 0)
  const text = result.stdout.toString()
  t.notMatch(text, /hunter2/)
  t.notMatch(text, /tok-123/)
  const printed = JSON.parse(text) as { cluster: { secret: string }; api: { port: number; token: string } }
  t.equal(printed.cluster.secret, '[masked]')
  t.equal(printed.api.token, '[masked]')
  t.equal(printed.api.port, 7272, 'environment overrides the file')
})

t.test('SIGTERM stops the daemon cleanly with exit code 0', async (t) => {
  const daemon = await startDaemon()
  t.teardown(() => rmSync(daemon.dataDir, { recursive: true, force: true }))
  const exit = await daemon.stop('SIGTERM')
  t.equal(exit.code, 0)
  t.match(daemon.output(), /"msg":"stopped"/)
})

t.test('SIGHUP reloads the log level and logs what changed', async (t) => {
  const daemon = await startDaemon({ config: { log: { level: 'info' } } })
  t.teardown(async () => { await daemon.stop(); rmSync(daemon.dataDir, { recursive: true, force: true }) })
  const current = JSON.parse((await import('node:fs')).readFileSync(daemon.configFile, 'utf8')) as { log: { level: string } }
  current.log.level = 'debug'
  writeFileSync(daemon.configFile, JSON.stringify(current))
  daemon.process.kill('SIGHUP')
  const deadline = Date.now() + 10_000
  while (!/configuration reloaded/.test(daemon.output()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
  t.match(daemon.output(), /"applied":\["log.level"\]/)
  const health = await fetch(`${daemon.url}/health`)
  t.equal(health.status, 200, 'still serving after the reload')
})

t.test('a second daemon on a data dir in use is refused with a clear error', async (t) => {
  const first = await startDaemon()
  t.teardown(async () => { await first.stop(); rmSync(first.dataDir, { recursive: true, force: true }) })
  const second = await startDaemon({ dataDir: first.dataDir, waitHealthy: false })
  const exit = await new Promise<number | null>((resolve) => second.process.on('exit', (code) => resolve(code)))
  t.not(exit, 0)
  t.match(second.output(), /in use by another hearsayd/)
  const health = await fetch(`${first.url}/health`)
  t.equal(health.status, 200, 'the first daemon is unharmed')
  await second.stop()
})

t.test('a busy API port is a clear start-up error', async (t) => {
  const first = await startDaemon()
  t.teardown(async () => { await first.stop(); rmSync(first.dataDir, { recursive: true, force: true }) })
  const second = await startDaemon({ apiPort: first.apiPort, waitHealthy: false })
  const exit = await new Promise<number | null>((resolve) => second.process.on('exit', (code) => resolve(code)))
  t.equal(exit, 1)
  t.match(second.output(), `hearsayd: api port ${first.apiPort} on 127.0.0.1 is already in use; choose another api.port`)
  t.notMatch(second.output(), /"level":"error"/, 'said once, as the fatal start-up error, not also as a server error')
  rmSync(second.dataDir, { recursive: true, force: true })
  await second.stop()
  mkdirSync(first.dataDir, { recursive: true })
})
