import t from 'tap'
import net from 'node:net'
import { rmSync } from 'node:fs'
import { startDaemon } from '../helpers/daemon.js'

/** Sends raw bytes and returns the first response's status line and body (bounded wait). */
async function rawRequest(port: number, bytes: string | Buffer): Promise<{ statusLine: string; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1')
    let data = ''
    const timer = setTimeout(() => { socket.destroy(); reject(new Error('no answer within 5 s')) }, 5000)
    socket.on('data', (chunk) => { data += chunk.toString('latin1') })
    socket.on('error', () => { /* the server may reset after answering */ })
    socket.on('close', () => {
      clearTimeout(timer)
      const [head = '', body = ''] = data.split('\r\n\r\n')
      resolve({ statusLine: head.split('\r\n')[0] ?? '', body })
    })
    socket.write(bytes)
  })
}

t.test('the HTTP API of a real daemon', async (t) => {
  const daemon = await startDaemon({ config: { api: { maxValueBytes: 65536 } } })
  t.teardown(async () => { await daemon.stop(); rmSync(daemon.dataDir, { recursive: true, force: true }) })
  const url = (path: string) => `${daemon.url}${path}`

  t.test('binary values round-trip byte for byte', async (t) => {
    const bytes = Buffer.from(Array.from({ length: 1024 }, (_, i) => (i * 7) % 256))
    const put = await fetch(url('/kv/bin'), { method: 'PUT', body: bytes })
    t.equal(put.status, 200)
    const body = await put.json() as { key: string; version: string; acks: number; w: number }
    t.equal(body.key, 'bin')
    t.equal(body.acks, 1)
    const get = await fetch(url('/kv/bin'))
    t.equal(get.headers.get('hearsay-version'), body.version)
    t.same(Buffer.from(await get.arrayBuffer()), bytes)
  })

  t.test('odd keys: spaces, slashes, emoji, percent signs', async (t) => {
    for (const key of ['with space', 'a/b/c', '🦜 parrot', '100%', 'q?x=1', '#hash']) {
      const put = await fetch(url(`/kv/${encodeURIComponent(key)}`), { method: 'PUT', body: key })
      t.equal(put.status, 200, `PUT ${key}`)
      const get = await fetch(url(`/kv/${encodeURIComponent(key)}`))
      t.equal(await get.text(), key, `GET ${key}`)
    }
  })

  t.test('errors are JSON with the fitting status', async (t) => {
    const expectError = async (res: Response, status: number, label: string) => {
      t.equal(res.status, status, label)
      const body = await res.json() as { error?: unknown }
      t.type(body.error, 'string', `${label}: JSON error message`)
    }
    await expectError(await fetch(url('/kv/absent')), 404, 'absent key')
    await expectError(await fetch(url('/nope')), 404, 'unknown path')
    await expectError(await fetch(url('/kv/x'), { method: 'PATCH', body: 'x' }), 405, 'wrong method')
    await expectError(await fetch(url('/kv/x?w=most'), { method: 'PUT', body: 'x' }), 400, 'bad w')
    await expectError(await fetch(url('/kv/x?ttl=-1'), { method: 'PUT', body: 'x' }), 400, 'bad ttl')
    await expectError(await fetch(url('/kv/x?w=9'), { method: 'PUT', body: 'x' }), 400, 'w above N')
    await expectError(await fetch(url('/kv/x?w=3'), { method: 'PUT', body: 'x' }), 503, 'w the one-node cluster cannot meet')
    await expectError(await fetch(url(`/kv/${'k'.repeat(2000)}`), { method: 'PUT', body: 'x' }), 414, 'key too long')
    await expectError(await fetch(url('/kv/big'), { method: 'PUT', body: Buffer.alloc(70_000) }), 413, 'value too large')
    await expectError(await fetch(url('/batch'), { method: 'POST', body: '{"ops": [' }), 400, 'malformed batch JSON')
  })

  t.test('a 503 for an unmeetable w still keeps the write (never half-lost)', async (t) => {
    const res = await fetch(url('/kv/kept?w=3'), { method: 'PUT', body: 'kept' })
    const body = await res.json() as { needed: number; acks: number; version: string }
    t.equal(res.status, 503)
    t.equal(body.needed, 3)
    t.equal(body.acks, 1)
    t.type(body.version, 'string')
    t.equal(await (await fetch(url('/kv/kept'))).text(), 'kept')
  })

  t.test('requests the HTTP parser rejects get a JSON answer and the node stays healthy', async (t) => {
    const longKey = await rawRequest(daemon.apiPort, `GET /kv/${'k'.repeat(100_000)} HTTP/1.1\r\nHost: x\r\n\r\n`)
    t.match(longKey.statusLine, /^HTTP\/1\.1 (431|414) /)
    t.match(longKey.body, /"error"/)
    const garbage = await rawRequest(daemon.apiPort, 'NOT HTTP AT ALL\r\n\r\n')
    t.match(garbage.statusLine, /^HTTP\/1\.1 400 /)
    const badHeader = await rawRequest(daemon.apiPort, 'GET /health HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n')
    t.match(badHeader.statusLine, /^HTTP\/1\.1 400 /)
    const health = await fetch(url('/health'))
    t.equal(health.status, 200)
    const body = await health.json() as { reasons: string[]; storage: { keys: number; bytesUsed: number; mapBytes: number; mapFreeBytes: number; diskFreeBytes: number } }
    t.same(body.reasons, [], 'an ok node has no reasons')
    t.ok(body.storage.keys >= 0 && body.storage.bytesUsed > 0 && body.storage.mapBytes >= body.storage.bytesUsed, 'storage: keys, bytes used, map size')
    t.equal(body.storage.mapFreeBytes, body.storage.mapBytes - body.storage.bytesUsed)
    t.ok(body.storage.diskFreeBytes > 0, 'free disk space under the data dir')
  })

  t.test('scan pages with prefix, after and limit', async (t) => {
    for (let i = 0; i < 5; i++) await fetch(url(`/kv/page%2F${i}`), { method: 'PUT', body: `v${i}` })
    const first = await (await fetch(url('/kv?prefix=page/&limit=3'))).json() as { items: { key: string; value: string }[]; next: string | null }
    t.same(first.items.map((i) => i.key), ['page/0', 'page/1', 'page/2'])
    t.equal(Buffer.from(first.items[0]!.value, 'base64').toString(), 'v0')
    t.equal(first.next, 'page/2')
    const second = await (await fetch(url(`/kv?prefix=page/&limit=3&after=${encodeURIComponent(first.next!)}`))).json() as { items: { key: string }[]; next: string | null }
    t.same(second.items.map((i) => i.key), ['page/3', 'page/4'])
  })

  t.test('batch writes and deletes; ttl expires', async (t) => {
    const res = await fetch(url('/batch'), {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ops: [{ op: 'put', key: 'b1', value: Buffer.from('one').toString('base64') }, { op: 'delete', key: 'bin' }] }),
    })
    t.equal(res.status, 200)
    t.equal((await (await fetch(url('/kv/b1'))).text()), 'one')
    t.equal((await fetch(url('/kv/bin'))).status, 404)
    t.equal((await fetch(url('/kv/ephemeral?ttl=1'), { method: 'PUT', body: 'x' })).status, 200)
    const deadline = Date.now() + 5000
    let status = 200
    while (status === 200 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200))
      status = (await fetch(url('/kv/ephemeral'))).status
    }
    t.equal(status, 404, 'a key past its TTL reads as absent')
  })

  t.test('metrics, dashboard and members', async (t) => {
    const metrics = await (await fetch(url('/metrics'))).text()
    t.match(metrics, /^hearsay_http_requests_total\{/m)
    t.match(metrics, /hearsay_process_cpu_seconds_total/)
    const page = await fetch(url('/'))
    t.match(page.headers.get('content-type') ?? '', /text\/html/)
    t.match(await page.text(), /<script src="dashboard.js">/)
    const abort = new AbortController()
    const events = await fetch(url('/dashboard/events'), { signal: abort.signal })
    t.match(events.headers.get('content-type') ?? '', /text\/event-stream/)
    const reader = events.body!.pipeThrough(new TextDecoderStream()).getReader()
    let text = ''
    const complete = (): boolean => text.includes('event: cluster') && text.includes('\n\n', text.indexOf('event: cluster'))
    for (let reads = 0; reads < 100 && !complete(); reads++) text += (await reader.read()).value ?? ''
    abort.abort()
    t.match(text, /event: cluster\ndata: \{.*"name":"test-\d+"/, 'the dashboard stream carries this node\'s summary')
    const members = await (await fetch(url('/members'))).json() as { state: string }[]
    t.equal(members.length, 1)
    t.equal(members[0]!.state, 'alive')
  })
})
