import t from 'tap'
import { rmSync } from 'node:fs'
import { startDaemon } from '../helpers/daemon.js'

const WRITES = 200

t.test('every acknowledged write survives kill -9 and a restart', async (t) => {
  const first = await startDaemon()
  t.teardown(() => rmSync(first.dataDir, { recursive: true, force: true }))
  const acked = new Map<string, string>()
  // Concurrent writes, so several share an LMDB commit: each must still be durable when acked.
  await Promise.all(Array.from({ length: WRITES }, async (_, i) => {
    const key = `durable/${i}`
    const value = `value-${i}-${'x'.repeat(i)}`
    const res = await fetch(`${first.url}/kv/${encodeURIComponent(key)}`, { method: 'PUT', body: value })
    if (res.status === 200) acked.set(key, value)
    else t.comment(`PUT ${key}: ${res.status} ${await res.text()}`)
  }))
  t.equal(acked.size, WRITES, 'all writes acknowledged')
  const digestBefore = ((await (await fetch(`${first.url}/status`)).json()) as { digest: string }).digest

  const exit = await first.stop('SIGKILL')
  t.equal(exit.signal, 'SIGKILL', 'the daemon was killed, not stopped')

  const second = await startDaemon({ dataDir: first.dataDir, apiPort: first.apiPort, peerPort: first.peerPort })
  t.teardown(() => second.stop())
  let readable = 0
  for (const [key, value] of acked) {
    const res = await fetch(`${second.url}/kv/${encodeURIComponent(key)}`)
    if (res.status === 200 && (await res.text()) === value) readable++
  }
  t.equal(readable, WRITES, 'all acknowledged writes are readable after the restart')

  const status = await (await fetch(`${second.url}/status`)).json() as { keys: number; id: string; digest: string }
  t.equal(status.keys, WRITES, 'the store counts exactly the written keys')
  t.match(status.digest, /^[0-9a-f]{16}$/, 'the status has a store digest')
  t.equal(status.digest, digestBefore, 'the digest rebuilt from disk equals the one kept incrementally before the crash')
})

t.test('a restarted node keeps its id and issues versions above those before the restart', async (t) => {
  const first = await startDaemon()
  t.teardown(() => rmSync(first.dataDir, { recursive: true, force: true }))
  const before = await (await fetch(`${first.url}/kv/k`, { method: 'PUT', body: 'a' })).json() as { version: string }
  const idBefore = (await (await fetch(`${first.url}/health`)).json() as { id: string }).id
  await first.stop('SIGKILL')
  const second = await startDaemon({ dataDir: first.dataDir })
  t.teardown(() => second.stop())
  const after = await (await fetch(`${second.url}/kv/k`, { method: 'PUT', body: 'b' })).json() as { version: string }
  const idAfter = (await (await fetch(`${second.url}/health`)).json() as { id: string }).id
  t.equal(idAfter, idBefore, 'same node id')
  t.ok(after.version > before.version, `version after restart (${after.version}) sorts above the one before (${before.version})`)
})
