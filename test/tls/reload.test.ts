import t from 'tap'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Writable } from 'node:stream'
import { pino } from 'pino'
import { reloadTlsMaterial } from '../../lib/config/reload.js'
import { createMetrics } from '../../lib/metrics/metrics.js'
import { createCa, createCert } from '../../lib/tls/create.js'
import { loadTlsMaterial, TlsMaterialHolder } from '../../lib/tls/material.js'

/** A logger whose JSON lines land in `lines`. */
function capturingLogger(): { log: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = []
  const sink = new Writable({ write(chunk: Buffer, _encoding, done) { lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>); done() } })
  return { log: pino({ level: 'info', formatters: { level: label => ({ level: label }) } }, sink), lines }
}

async function holderWithFiles(t: { teardown(fn: () => void): void }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hearsay-tls-reload-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  await createCa({ dir })
  const first = await createCert({ caDir: dir, name: 'n', ips: ['127.0.0.1'] })
  const paths = { caPath: path.join(dir, 'ca.pem'), certPath: first.certPath, keyPath: first.keyPath }
  return { dir, first, holder: new TlsMaterialHolder(paths, loadTlsMaterial(paths, Date.now()), () => Date.now()) }
}

const settle = (): Promise<void> => new Promise(resolve => setImmediate(resolve))

t.test('a reload logs the new serial and the one it replaces, and counts ok', async t => {
  const { dir, first, holder } = await holderWithFiles(t)
  const { log, lines } = capturingLogger()
  const metrics = createMetrics()
  const second = await createCert({ caDir: dir, name: 'n', ips: ['127.0.0.1'], force: true })
  reloadTlsMaterial({ holder, log, metrics })
  await settle()
  t.match(lines, [{ level: 'info', serial: second.serial, previousSerial: first.serial, msg: `TLS certificate reloaded: serial ${second.serial} for new handshakes` }])
  t.match(await metrics.registry.metrics(), /hearsay_tls_reloads_total\{result="ok"\} 1/)
})

t.test('a refused reload logs why at error level, keeps the serial and counts refused', async t => {
  const { first, holder } = await holderWithFiles(t)
  const { log, lines } = capturingLogger()
  const metrics = createMetrics()
  fs.writeFileSync(first.keyPath, 'garbage\n')
  reloadTlsMaterial({ holder, log, metrics })
  await settle()
  t.match(lines, [{ level: 'error', serial: first.serial, reason: /tls\.key .* is not an unencrypted PEM private key/, msg: /^TLS certificate reload refused, keeping serial / }])
  t.equal(holder.current().serial, first.serial)
  t.match(await metrics.registry.metrics(), /hearsay_tls_reloads_total\{result="refused"\} 1/)
})

t.test('a listener that throws is logged, not thrown at the signal handler', async t => {
  const { dir, holder } = await holderWithFiles(t)
  const { log, lines } = capturingLogger()
  const metrics = createMetrics()
  holder.onChange(() => { throw new Error('setSecureContext failed') })
  await createCert({ caDir: dir, name: 'n', ips: ['127.0.0.1'], force: true })
  t.doesNotThrow(() => reloadTlsMaterial({ holder, log, metrics }))
  await settle()
  t.match(lines, [{ level: 'error', msg: /could not be applied everywhere: setSecureContext failed/ }])
})

t.test('the expiry gauge exists only once a certificate is tracked, and counts down to it', async t => {
  const metrics = createMetrics()
  t.notMatch(await metrics.registry.metrics(), /hearsay_tls_certificate_expiry_seconds/, 'TLS off: no gauge reading 0')
  metrics.trackCertificateExpiry(Date.now() + 10 * 86_400_000)
  const value = Number(/^hearsay_tls_certificate_expiry_seconds (\S+)$/m.exec(await metrics.registry.metrics())?.[1])
  t.ok(value > 10 * 86_400 - 60 && value <= 10 * 86_400, `${value} s`)
})
