import { Readable, Writable } from 'node:stream'
import t from 'tap'
import type { BenchReport } from '../../lib/bench/run.js'
import { runCli } from '../../lib/client/cli.js'
import { createCa, createCert } from '../../lib/tls/create.js'
import { loadTlsMaterial } from '../../lib/tls/material.js'
import { fixedTlsMaterial, startApi } from '../api/fixtures/harness.js'

/** `hearsay bench` over https:// with --ca: a short load (400 operations), every one answered. */

t.test('bench runs a short load over https', async t => {
  const dir = t.testdir()
  const ca = await createCa({ dir })
  const node = await createCert({ caDir: dir, name: 'alpha', ips: ['127.0.0.1'] })
  const material = loadTlsMaterial({ caPath: ca.certPath, certPath: node.certPath, keyPath: node.keyPath }, Date.now())
  const api = await startApi(t, { tls: { mode: 'on', minVersion: 'TLSv1.2', material: fixedTlsMaterial(material) } })
  const out: Buffer[] = []
  const err: Buffer[] = []
  const collect = (into: Buffer[]): Writable => new Writable({ write(chunk: Buffer, _encoding, done) { into.push(Buffer.from(chunk)); done() } })
  const code = await runCli(
    ['bench', '--node', `https://${api.host}:${api.port}`, '--ca', ca.certPath, '--ops', '400', '--concurrency', '4', '--json'],
    { stdin: Readable.from([]), stdout: collect(out), stderr: collect(err), env: {} },
  )
  const stderr = Buffer.concat(err).toString('utf8')
  t.equal(code, 0, stderr)
  const report = JSON.parse(Buffer.concat(out).toString('utf8')) as BenchReport
  t.ok(report.result.total.count > 0, `operations ran (${report.result.total.count})`)
  t.same(report.result.total.errors, {}, 'no errors')
  t.ok(api.logLines.some(line => line.msg === 'stream connection opened'), 'the load went over wss:// streams')
})
