import t from 'tap'
import { readFileSync, rmSync } from 'node:fs'
import { join, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import { daemonBin, repoRoot, startDaemon } from '../helpers/daemon.js'

/** Bound on waiting for the daemon's trace to show what a request loaded. */
const TRACE_WAIT_MS = 10_000
const POLL_MS = 50

/** Files of this repository (not its packages) in a list of loaded paths. */
function ownFiles(paths: readonly string[]): string[] {
  return paths.filter(path => path.startsWith(repoRoot + sep) && !path.includes(`${sep}node_modules${sep}`))
}

/**
 * What Node's own trace (NODE_DEBUG=esm,module,http, on stderr, in the order it happened) says
 * was loaded before the HTTP server took its first connection, and after.
 */
function loads(trace: string): { readonly beforeFirstRequest: { esm: string[]; cjs: string[] }; readonly all: string[] } {
  const lines = trace.split('\n')
  const firstRequest = lines.findIndex(line => /^HTTP \d+: SERVER new http connection/.test(line))
  const startUp = firstRequest === -1 ? lines : lines.slice(0, firstRequest)
  const esm = (text: string[]): string[] => text.flatMap(line => /^ESM \d+: Storing (file:\/\/\S+) /.exec(line)?.slice(1).map(url => fileURLToPath(url)) ?? [])
  const cjs = (text: string[]): string[] => text.flatMap(line => /^MODULE \d+: load "([^"]+)"/.exec(line)?.slice(1) ?? [])
  return { beforeFirstRequest: { esm: esm(startUp), cjs: cjs(startUp) }, all: [...esm(lines), ...cjs(lines)] }
}

t.test('npm start runs the bundle, and what the first request does not need loads when a request needs it', async (t) => {
  const manifest = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string>; bin: Record<string, string> }
  t.match(manifest.scripts['start'], /^node dist\/bin\/hearsayd\.js /, 'npm start runs dist/bin/hearsayd.js')
  t.equal(manifest.bin['hearsayd'], 'dist/bin/hearsayd.js', 'so does the installed hearsayd')

  // Anti-entropy every second: its schedule, registered after the node serves, must still run.
  const daemon = await startDaemon({ env: { NODE_DEBUG: 'esm,module,http' }, config: { log: { level: 'warn' }, antiEntropy: { schedule: '* * * * * *' } } })
  t.teardown(async () => {
    await daemon.stop()
    rmSync(daemon.dataDir, { recursive: true, force: true })
  })
  const health = await daemon.fetch('/health')
  t.equal(health.status, 200, 'the bundle serves /health')
  t.equal(((await health.json()) as { status: string }).status, 'ok')

  const metrics = await daemon.fetch('/metrics')
  t.equal(metrics.status, 200)
  t.match(await metrics.text(), /process_cpu_user_seconds_total/, 'the process metrics are there at the first scrape')
  const deadline = Date.now() + TRACE_WAIT_MS
  // stderr is read asynchronously: wait (bounded) until the trace shows the scrape's load.
  while (!loads(daemon.output()).all.some(path => path.endsWith('/prom-client/lib/defaultMetrics.js'))) {
    if (Date.now() > deadline) {
      t.fail(`the trace never showed prom-client's default metrics loading:\n${daemon.output().slice(-2000)}`)
      return
    }
    await new Promise(wake => setTimeout(wake, POLL_MS))
  }

  // A lone node's scheduled rounds find no peer and count as skipped: proof the schedule runs.
  const roundsDeadline = Date.now() + TRACE_WAIT_MS
  for (;;) {
    const text = await (await daemon.fetch('/metrics')).text()
    if (/^hearsay_antientropy_rounds_total\{result="skipped"\} [1-9]/m.test(text)) break
    if (Date.now() > roundsDeadline) {
      t.fail(`no scheduled anti-entropy round within ${TRACE_WAIT_MS} ms`)
      return
    }
    await new Promise(wake => setTimeout(wake, POLL_MS * 4))
  }
  t.pass('the anti-entropy schedule, registered after start, runs')

  const { beforeFirstRequest, all } = loads(daemon.output())
  t.ok(beforeFirstRequest.cjs.some(path => path.includes('/lmdb/')), 'the trace covers start-up (lmdb loaded before the first request)')
  t.same(ownFiles(beforeFirstRequest.esm), [daemonBin], 'one file of ours loaded: the bundle, not dist/lib/**')
  t.same(ownFiles(beforeFirstRequest.cjs), [], 'and no CommonJS file of ours')
  t.notOk(beforeFirstRequest.cjs.some(path => path.includes('/prom-client/lib/defaultMetrics')), 'the process metrics wait for the first scrape')
  t.notOk(beforeFirstRequest.cjs.some(path => path.includes('/@opentelemetry/')), 'nor @opentelemetry/api, which they need')
  t.notOk(all.some(path => path.includes('/@peculiar/x509/')), 'with TLS off the X.509 library never loads')
})
